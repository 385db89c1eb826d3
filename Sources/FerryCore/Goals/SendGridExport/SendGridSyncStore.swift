import Foundation
import GRDB

/// Per-connection SendGrid state: what each profile's contact last got (email and membership), and the outbox
/// of profiles whose last send failed, retried first on the next run.
public struct SendGridSyncStore: Sendable {
    /// What ferry last sent for one profile, after SendGrid's import job accepted it.
    public struct Synced: Sendable, Hashable {
        public var email: String
        public var membership: String
    }

    public let database: AppDatabase
    public let connection: String

    public init(database: AppDatabase, connection: String) {
        self.database = database
        self.connection = connection
    }

    /// The tables; called with one line from `AppDatabase.migrator`.
    static func register(in migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v3-sendgrid: sync state and outbox") { db in
            try db.execute(sql: """
                CREATE TABLE sendgrid_sync (
                    connection TEXT NOT NULL,
                    profile_pk INTEGER NOT NULL REFERENCES profile(pk) ON DELETE CASCADE,
                    email TEXT NOT NULL,
                    membership TEXT NOT NULL,
                    synced_at REAL NOT NULL,
                    PRIMARY KEY (connection, profile_pk)
                ) WITHOUT ROWID;
                CREATE TABLE sendgrid_outbox (
                    connection TEXT NOT NULL,
                    profile_pk INTEGER NOT NULL REFERENCES profile(pk) ON DELETE CASCADE,
                    reason TEXT NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 1,
                    queued_at REAL NOT NULL,
                    PRIMARY KEY (connection, profile_pk)
                ) WITHOUT ROWID;
                """)
        }
    }

    /// Every synced profile of the connection.
    public func synced() throws -> [Int64: Synced] {
        try database.writer.read { db in
            var result: [Int64: Synced] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT profile_pk, email, membership FROM sendgrid_sync WHERE connection = ?",
                                        arguments: [connection]) {
                result[row["profile_pk"]] = Synced(email: row["email"], membership: row["membership"])
            }
            return result
        }
    }

    /// The profiles waiting in the outbox, oldest first.
    public func outbox() throws -> [(pk: Int64, reason: String, attempts: Int)] {
        try database.writer.read { db in
            try Row.fetchAll(db, sql: "SELECT profile_pk, reason, attempts FROM sendgrid_outbox WHERE connection = ? ORDER BY queued_at, profile_pk",
                             arguments: [connection]).map { ($0["profile_pk"], $0["reason"], $0["attempts"]) }
        }
    }

    /// Records accepted contacts (sync advances, outbox entries cleared, data exchange counted) in one transaction.
    public func accept(_ accepted: [(pk: Int64, synced: Synced)], at now: Date) throws {
        guard !accepted.isEmpty else { return }
        try database.writer.write { db in
            let upsert = try db.cachedStatement(sql: """
                INSERT INTO sendgrid_sync (connection, profile_pk, email, membership, synced_at) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (connection, profile_pk) DO UPDATE SET email = excluded.email, membership = excluded.membership,
                    synced_at = excluded.synced_at
                """)
            for item in accepted {
                try upsert.execute(arguments: [connection, item.pk, item.synced.email, item.synced.membership, now.timeIntervalSince1970])
            }
            try Self.clearOutbox(of: accepted.map(\.pk), connection: connection, db: db)
            try DataExchange.record(connection: connection, profiles: accepted.map(\.pk), at: now, db: db)
        }
    }

    /// Puts failed profiles in the outbox (or counts another attempt).
    public func enqueue(_ failed: [(pk: Int64, reason: String)], at now: Date) throws {
        guard !failed.isEmpty else { return }
        try database.writer.write { db in
            let statement = try db.cachedStatement(sql: """
                INSERT INTO sendgrid_outbox (connection, profile_pk, reason, attempts, queued_at) VALUES (?, ?, ?, 1, ?)
                ON CONFLICT (connection, profile_pk) DO UPDATE SET reason = excluded.reason, attempts = attempts + 1
                """)
            for item in failed { try statement.execute(arguments: [connection, item.pk, item.reason, now.timeIntervalSince1970]) }
        }
    }

    /// Drops outbox entries that no longer need sending (the profile left and was never synced, or lost its email).
    public func dequeue(_ pks: [Int64]) throws {
        guard !pks.isEmpty else { return }
        try database.writer.write { db in try Self.clearOutbox(of: pks, connection: connection, db: db) }
    }

    /// Deletes the outbox entries of `pks`, a few hundred per statement (one statement per profile was a tenth
    /// of a large export's writes, even with the outbox empty).
    private static func clearOutbox(of pks: [Int64], connection: String, db: Database) throws {
        try InListQuery.forEachChunk(of: pks) { chunk in
            try InListQuery.statement("DELETE FROM sendgrid_outbox WHERE connection = ? AND profile_pk IN", count: chunk.count, db: db)
                .execute(arguments: StatementArguments([connection as any DatabaseValueConvertible] + chunk.map { $0 as any DatabaseValueConvertible }))
        }
    }
}
