import Foundation
import GRDB
import Testing
@testable import FerryCore

/// `Database.withoutForeignKeyChecks`: unchecked only inside, checked again after, whatever the body does.
@Suite struct ForeignKeyChecksTests {
    /// An identifier naming a profile that does not exist: committed only when the keys are unchecked.
    func writeOrphanIdentifier(_ value: String, _ db: Database) throws {
        try db.inTransaction {
            try db.execute(sql: "INSERT INTO identifier (property, value, profile_pk) VALUES ('email', ?, 999)", arguments: [value])
            return .commit
        }
    }

    @Test func keysAreUncheckedOnlyInsideAndCheckedAgainAfterABodyThatReturnsOrThrows() throws {
        let dir = TemporaryDirectory()
        let database = try AppDatabase.open(path: dir.path + "/store.sqlite")
        try database.writer.writeWithoutTransaction { db in
            try db.withoutForeignKeyChecks { try writeOrphanIdentifier("inside@x.com", db) }
            #expect(throws: DatabaseError.self) { try writeOrphanIdentifier("after@x.com", db) }

            struct Stop: Error {}
            #expect(throws: Stop.self) { try db.withoutForeignKeyChecks { throw Stop() } }
            #expect(try Bool.fetchOne(db, sql: "PRAGMA foreign_keys") == true)
            #expect(throws: DatabaseError.self) { try writeOrphanIdentifier("after-a-throw@x.com", db) }
        }
        #expect(try database.writer.read { try String.fetchAll($0, sql: "SELECT value FROM identifier") } == ["inside@x.com"])
    }

    @Test func insideATransactionTheKeysStayChecked() throws {
        let database = try AppDatabase.inMemory()
        let commit = database.writer.writeWithoutTransaction { db in
            Result {
                try db.inTransaction {
                    try db.withoutForeignKeyChecks {
                        try db.execute(sql: "INSERT INTO identifier (property, value, profile_pk) VALUES ('email', 'x@x.com', 999)")
                    }
                    return .commit
                }
            }
        }
        #expect(throws: DatabaseError.self) { try commit.get() }
        #expect(try database.writer.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM identifier") } == 0)
    }
}
