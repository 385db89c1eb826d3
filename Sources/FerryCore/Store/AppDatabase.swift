import Foundation
import GRDB

/// The ferry store: one SQLite database, opened with its migrations applied.
///
/// Follows GRDB's `AppDatabase` pattern: a `Sendable` value holding the writer;
/// `DatabasePool` (WAL) on disk in production, `DatabaseQueue()` in memory for tests.
public struct AppDatabase: Sendable {
    /// The connection every read and write goes through.
    public let writer: any DatabaseWriter

    /// Wraps `writer` and migrates it to the current schema.
    public init(_ writer: any DatabaseWriter) throws {
        self.writer = writer
        try Self.migrator.migrate(writer)
    }

    /// Opens (creating if needed) the store at `path` in WAL mode.
    public static func open(path: String) throws -> AppDatabase {
        var config = Configuration()
        config.busyMode = .timeout(10)
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            // 32 MiB of page cache: loads and imports touch the identifier index all over.
            try db.execute(sql: "PRAGMA cache_size = -32768")
        }
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        return try AppDatabase(DatabasePool(path: path, configuration: config))
    }

    /// An empty in-memory store, for tests.
    public static func inMemory() throws -> AppDatabase {
        try AppDatabase(DatabaseQueue())
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: profiles, identifiers, segments, runs") { db in
            try db.execute(sql: """
                CREATE TABLE profile (
                    pk INTEGER PRIMARY KEY,
                    id TEXT NOT NULL UNIQUE,
                    properties TEXT NOT NULL,
                    created_at REAL NOT NULL,
                    updated_at REAL NOT NULL
                );
                CREATE TABLE identifier (
                    property TEXT NOT NULL,
                    value TEXT NOT NULL,
                    profile_pk INTEGER NOT NULL REFERENCES profile(pk) ON DELETE CASCADE,
                    PRIMARY KEY (property, value)
                ) WITHOUT ROWID;
                CREATE INDEX identifier_by_profile ON identifier(profile_pk);
                CREATE TABLE segment_member (
                    segment TEXT NOT NULL,
                    profile_pk INTEGER NOT NULL REFERENCES profile(pk) ON DELETE CASCADE,
                    entered_at REAL NOT NULL,
                    PRIMARY KEY (segment, profile_pk)
                ) WITHOUT ROWID;
                CREATE INDEX segment_member_by_profile ON segment_member(profile_pk);
                CREATE TABLE run (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    connection TEXT NOT NULL,
                    goal TEXT NOT NULL,
                    trigger TEXT NOT NULL,
                    scheduled_at REAL,
                    started_at REAL NOT NULL,
                    ended_at REAL,
                    status TEXT NOT NULL,
                    read INTEGER NOT NULL DEFAULT 0,
                    created INTEGER NOT NULL DEFAULT 0,
                    updated INTEGER NOT NULL DEFAULT 0,
                    unchanged INTEGER NOT NULL DEFAULT 0,
                    exported INTEGER NOT NULL DEFAULT 0,
                    removed INTEGER NOT NULL DEFAULT 0,
                    skipped INTEGER NOT NULL DEFAULT 0,
                    failed INTEGER NOT NULL DEFAULT 0,
                    error TEXT,
                    row_errors TEXT NOT NULL DEFAULT '[]',
                    touched TEXT NOT NULL DEFAULT '[]',
                    pid INTEGER
                );
                CREATE INDEX run_by_connection ON run(connection, started_at);
                CREATE INDEX run_by_status ON run(status);
                """)
        }
        migrator.registerMigration("v2: runner state (locks, claimed fires, data exchange, daemon state)") { db in
            try db.execute(sql: """
                CREATE TABLE connection_lock (
                    connection TEXT PRIMARY KEY,
                    pid INTEGER NOT NULL,
                    acquired_at REAL NOT NULL
                );
                CREATE TABLE fire (
                    connection TEXT NOT NULL,
                    scheduled_at REAL NOT NULL,
                    trigger TEXT NOT NULL,
                    claimed_at REAL NOT NULL,
                    outcome TEXT,
                    PRIMARY KEY (connection, scheduled_at)
                ) WITHOUT ROWID;
                CREATE TABLE data_exchange (
                    connection TEXT NOT NULL,
                    profile_pk INTEGER NOT NULL REFERENCES profile(pk) ON DELETE CASCADE,
                    first_at REAL NOT NULL,
                    PRIMARY KEY (connection, profile_pk)
                ) WITHOUT ROWID;
                CREATE TABLE daemon_state (
                    key TEXT PRIMARY KEY,
                    value TEXT NOT NULL
                );
                """)
        }
        migrator.registerMigration("v3: run notes (files written, plans)") { db in
            try db.execute(sql: "ALTER TABLE run ADD COLUMN notes TEXT NOT NULL DEFAULT '[]'")
        }
        SendGridSyncStore.register(in: &migrator)
        ImportMigrations.register(in: &migrator)
        ExportMigrations.register(in: &migrator)
        SegmentRefreshState.register(in: &migrator)
        migrator.registerMigration("v5-load: drop identifier_by_profile (no query reads identifiers by profile)") { db in
            // Every identifier read goes through the (property, value) primary key; this index only cost a B-tree
            // write per identifier on every load. A profile delete (none exists) would scan instead, as data_exchange does.
            try db.execute(sql: "DROP INDEX IF EXISTS identifier_by_profile")
        }
        migrator.registerMigration("v6-deferred-keys: rows written in bulk check their profile at commit") { db in
            try BulkWriteTables.rebuildWithDeferredKeys(db)
        }
        return migrator
    }
}

extension AppDatabase {
    /// Copies the whole store to a new file at `path` with SQLite's online backup, while others keep writing.
    public func backup(to path: String) throws {
        let destination = try DatabaseQueue(path: path)
        try writer.backup(to: destination)
        try destination.close()
    }
}

extension Database {
    /// Runs `body` with this connection's foreign keys unchecked, and checks them again after, whether `body` throws or
    /// not. Call it outside a transaction: SQLite ignores the setting inside one (the keys then stay checked).
    ///
    /// For bulk writes whose every row names a profile its own transaction created or read, such as an import's
    /// batches: each `identifier`, `segment_member` and `data_exchange` row otherwise costs a search of `profile` for
    /// its row key, two million of them a million-row import. Tests check that such writes leave no row without its
    /// profile (`PRAGMA foreign_key_check`). No other write runs on this connection while `body` does, so none goes
    /// unchecked.
    func withoutForeignKeyChecks<T>(_ body: () throws -> T) throws -> T {
        guard try Bool.fetchOne(self, sql: "PRAGMA foreign_keys") ?? false else { return try body() }
        try execute(sql: "PRAGMA foreign_keys = OFF")
        let outcome = Result { try body() }
        try execute(sql: "PRAGMA foreign_keys = ON")
        return try outcome.get()
    }

    /// Runs `body` with a page cache of at most `kibibytes`, then gives the connection its own size back. For reads
    /// on a reading connection that touch each page about once (an import's key filter, a Mapp page): they would
    /// fill its 32 MiB cache, which it drops at the next commit by another connection anyway.
    func withPageCache<T>(kibibytes: Int, _ body: () throws -> T) throws -> T {
        let usual = try Int.fetchOne(self, sql: "PRAGMA cache_size") ?? -2000
        try execute(sql: "PRAGMA cache_size = \(-kibibytes)")
        defer { try? execute(sql: "PRAGMA cache_size = \(usual)") }
        return try body()
    }
}
