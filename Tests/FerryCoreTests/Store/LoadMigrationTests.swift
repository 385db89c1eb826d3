import Foundation
import GRDB
import Testing
@testable import FerryCore

/// The load's schema changes keep every identifier, membership and lookup of a store made before them.
@Suite struct LoadMigrationTests {
    /// A store migrated up to `migration` only, holding p1 (email a@x.com) and p2 (customer_id C2, in vip and big).
    func storeWithTwoProfiles(migratedUpTo migration: String) throws -> DatabaseQueue {
        let queue = try DatabaseQueue()
        try AppDatabase.migrator.migrate(queue, upTo: migration)
        try queue.write { db in
            try db.execute(sql: """
                INSERT INTO profile (pk, id, properties, created_at, updated_at) VALUES (1, 'p1', '{}', 0, 0), (2, 'p2', '{}', 0, 0);
                INSERT INTO identifier (property, value, profile_pk) VALUES ('email', 'a@x.com', 1), ('customer_id', 'C2', 2);
                INSERT INTO segment_member (segment, profile_pk, entered_at) VALUES ('vip', 2, 5), ('big', 2, 6);
                """)
        }
        return queue
    }

    @Test func droppingTheIdentifierByProfileIndexKeepsDataAndLookups() throws {
        let queue = try storeWithTwoProfiles(migratedUpTo: "v4-segments: fingerprint of the definitions membership was evaluated with")
        let store = ProfileStore(database: try AppDatabase(queue))
        let indexes = try queue.read { try String.fetchAll($0, sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'identifier'") }
        #expect(!indexes.contains("identifier_by_profile"))
        #expect(try queue.read { try ProfileStore.owner(property: "email", value: "A@x.com", db: $0) } == 1)
        #expect(try store.find("C2")?.profile.id == "p2")
        #expect(try store.memberships(pk: 2).map(\.segment) == ["big", "vip"])
        // `profiles show` and the exports still read memberships by profile through an index.
        let plan = try queue.read { db in
            try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN SELECT segment, entered_at FROM segment_member WHERE profile_pk = 2 ORDER BY segment")
                .map { $0["detail"] as String }.joined(separator: "; ")
        }
        #expect(plan.contains("segment_member_by_profile"), "\(plan)")
    }

    @Test func deferringTheProfileKeysKeepsRowsIndexesAndCascades() throws {
        let queue = try storeWithTwoProfiles(migratedUpTo: "v5-load: drop identifier_by_profile (no query reads identifiers by profile)")
        try queue.write { try $0.execute(sql: "INSERT INTO data_exchange (connection, profile_pk, first_at) VALUES ('st', 1, 7)") }
        let store = ProfileStore(database: try AppDatabase(queue))
        #expect(try queue.read { try ProfileStore.owner(property: "email", value: "a@x.com", db: $0) } == 1)
        #expect(try store.memberships(pk: 2).map(\.segment) == ["big", "vip"])
        #expect(try queue.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM data_exchange WHERE connection = 'st'") } == 1)
        let tables = try queue.read { db in
            try String.fetchAll(db, sql: "SELECT sql FROM sqlite_master WHERE name IN ('identifier', 'segment_member', 'data_exchange')")
        }
        #expect(tables.count == 3)
        #expect(tables.allSatisfy { $0.contains("DEFERRABLE INITIALLY DEFERRED") }, "\(tables)")
        let plan = try queue.read { db in
            try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN SELECT segment FROM segment_member WHERE profile_pk = 2")
                .map { $0["detail"] as String }.joined(separator: "; ")
        }
        #expect(plan.contains("segment_member_by_profile"), "\(plan)")

        // A row naming a missing profile still fails: at commit, taking the whole transaction with it.
        #expect(throws: DatabaseError.self) {
            try queue.write { db in
                try db.execute(sql: "INSERT INTO identifier (property, value, profile_pk) VALUES ('email', 'b@x.com', 1)")
                try db.execute(sql: "INSERT OR FAIL INTO identifier (property, value, profile_pk) VALUES ('email', 'z@x.com', 99), ('email', 'y@x.com', 2)")
            }
        }
        #expect(try queue.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM identifier") } == 2)
        // Deleting a profile still removes its rows.
        try queue.write { try $0.execute(sql: "DELETE FROM profile WHERE pk = 2") }
        #expect(try queue.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM segment_member") } == 0)
        #expect(try queue.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM identifier") } == 1)
    }

    @Test func aLoadPutsTheWriterSettingsBack() throws {
        let dir = TemporaryDirectory()
        let database = try AppDatabase.open(path: dir.path + "/ferry.sqlite")
        let path = dir.write("p.jsonl", "{\"id\": \"p1\", \"email\": \"a@x.com\"}\n{\"id\": \"p2\"}\n")
        func settings() throws -> [Int] {
            try database.writer.writeWithoutTransaction { db in
                [try Int.fetchOne(db, sql: "PRAGMA wal_autocheckpoint") ?? 0, try Int.fetchOne(db, sql: "PRAGMA cache_size") ?? 0]
            }
        }
        let before = try settings()
        let report = try ProfileLoader(store: ProfileStore(database: database), segments: [], batchSize: 1).load(path: path)
        #expect(report.created == 2)
        #expect(try settings() == before)
        #expect(before == [1000, -32768])
    }
}

/// A load's checkpoints run on their own thread and connection, and still copy the log into the database file.
@Suite struct BackgroundCheckpointerTests {
    @Test func committedRowsAreCopiedIntoTheDatabaseFileByTheCheckpointer() throws {
        let dir = TemporaryDirectory()
        let path = dir.path + "/ferry.sqlite"
        let database = try AppDatabase.open(path: path)
        try database.writer.writeWithoutTransaction { try $0.execute(sql: "PRAGMA wal_autocheckpoint = 0") }
        try database.writer.writeWithoutTransaction { try $0.checkpoint(.truncate) }
        let before = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
        try database.writer.write { db in
            for i in 0..<2000 {
                try db.execute(sql: "INSERT INTO profile (id, properties, created_at, updated_at) VALUES (?, ?, 0, 0)",
                               arguments: ["p\(i)", String(repeating: "x", count: 200)])
            }
        }
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int == before, "only the WAL holds the rows")

        let checkpointer = try BackgroundCheckpointer(path: path)
        checkpointer.committed(rows: BackgroundCheckpointer.rowsPerCheckpoint)
        try checkpointer.stop()
        // The rows' pages are now in the file itself.
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int > before + 400_000)
        #expect(try database.writer.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM profile") } == 2000)
    }

    /// An import's batches run beside a checkpointer of their own, with the writer's threshold raised so that its own
    /// checkpoints find the log mostly copied; the threshold is put back after, also when the import fails.
    @Test func anImportCheckpointsBesideTheWriterAndPutsTheWritersThresholdBack() async throws {
        struct Failed: Error {}
        let dir = TemporaryDirectory()
        let path = dir.path + "/ferry.sqlite"
        let database = try AppDatabase.open(path: path)
        func threshold() async throws -> Int? {
            try await database.writer.writeWithoutTransaction { try Int.fetchOne($0, sql: "PRAGMA wal_autocheckpoint") }
        }
        try await database.writer.writeWithoutTransaction { try $0.checkpoint(.truncate) }
        let before = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
        let usual = try await threshold()
        try await BackgroundCheckpointer.whileImporting(into: database) { checkpointer in
            #expect(checkpointer != nil)
            #expect(try await threshold() == BackgroundCheckpointer.importWriterCheckpointPages)
            try await database.writer.write { db in
                for i in 0..<2000 {
                    try db.execute(sql: "INSERT INTO profile (id, properties, created_at, updated_at) VALUES (?, ?, 0, 0)",
                                   arguments: ["p\(i)", String(repeating: "x", count: 200)])
                }
            }
            checkpointer?.committed(rows: BackgroundCheckpointer.importRowsPerCheckpoint)
        }
        // The checkpointer copied the rows' pages into the file (stopping waits for a checkpoint that is due).
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int > before + 400_000)
        #expect(try await threshold() == usual)
        await #expect(throws: Failed.self) {
            try await BackgroundCheckpointer.whileImporting(into: database) { _ in throw Failed() }
        }
        #expect(try await threshold() == usual)
        // An in-memory store has no log to copy.
        let memory = try AppDatabase.inMemory()
        #expect(try await BackgroundCheckpointer.whileImporting(into: memory) { $0 == nil })
    }
}
