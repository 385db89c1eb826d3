import Foundation
import GRDB
import Testing
@testable import FerryCore

/// The bulk writers' statements bound through SQLite's C API store what GRDB's arguments stored, and fail as GRDB fails.
@Suite struct BulkStatementTests {
    @Test func valuesAreStoredAsGRDBWouldStoreThemEmptyTextIncluded() throws {
        let queue = try DatabaseQueue()
        let rows = try queue.write { db in
            try db.execute(sql: "CREATE TABLE t (n INTEGER, r REAL, s TEXT)")
            let statement = try db.makeStatement(sql: "INSERT INTO t VALUES (?, ?, ?), (?, ?, ?)")
            try BulkStatement.execute(statement, values: [.integer(Int64.min), .real(-0.5), .text(""),
                                                          .integer(42), .real(1e300), .text("Zoë ✓ \"quoted\"\n")], db: db)
            try db.execute(sql: "INSERT INTO t VALUES (?, ?, ?)", arguments: [7, 2.25, "grdb"])
            return try Row.fetchAll(db, sql: "SELECT n, typeof(n), r, typeof(r), s, typeof(s) FROM t ORDER BY rowid")
        }
        #expect(rows.count == 3)
        #expect(rows[0][0] as Int64 == Int64.min && rows[0][2] as Double == -0.5 && rows[0][4] as String == "")
        #expect(rows[0][5] as String == "text", "an empty string is text, not NULL")
        #expect(rows[1][0] as Int64 == 42 && rows[1][2] as Double == 1e300 && rows[1][4] as String == "Zoë ✓ \"quoted\"\n")
        for row in rows { #expect([row[1], row[3], row[5]] as [String] == ["integer", "real", "text"]) }
    }

    @Test func aFailingStatementThrowsItsCodeAndSQLAndCanRunAgain() throws {
        let queue = try DatabaseQueue()
        try queue.write { db in
            try db.execute(sql: "CREATE TABLE t (k TEXT PRIMARY KEY)")
            let statement = try db.makeStatement(sql: "INSERT OR FAIL INTO t VALUES (?)")
            try BulkStatement.execute(statement, values: [.text("a")], db: db)
            let error = #expect(throws: DatabaseError.self) {
                try BulkStatement.execute(statement, values: [.text("a")], db: db)
            }
            #expect(error?.resultCode == .SQLITE_CONSTRAINT)
            #expect(error?.sql == "INSERT OR FAIL INTO t VALUES (?)")
            #expect(error?.message?.contains("UNIQUE") == true)
            try BulkStatement.execute(statement, values: [.text("b")], db: db)
            #expect(try String.fetchAll(db, sql: "SELECT k FROM t ORDER BY k") == ["a", "b"])
        }
    }
}
