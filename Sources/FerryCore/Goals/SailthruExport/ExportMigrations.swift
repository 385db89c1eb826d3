import GRDB

/// The Sailthru export's own tables, registered after the store's core migrations.
public enum ExportMigrations {
    /// Adds the export tables to `migrator` (called once, at the end of `AppDatabase.migrator`).
    public static func register(in migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v3-export: membership ledger, outbox, known users, baseline, plans") { db in
            // No foreign keys to profile: a deleted profile must still be taken off the lists ferry put it on,
            // so rows keep the identifier they were sent with.
            try db.execute(sql: """
                CREATE TABLE export_membership (
                    connection TEXT NOT NULL,
                    list TEXT NOT NULL,
                    profile_pk INTEGER NOT NULL,
                    profile_id TEXT NOT NULL,
                    identifier TEXT NOT NULL,
                    since REAL NOT NULL,
                    PRIMARY KEY (connection, list, profile_pk)
                ) WITHOUT ROWID;
                CREATE TABLE export_outbox (
                    connection TEXT NOT NULL,
                    profile_pk INTEGER NOT NULL,
                    profile_id TEXT NOT NULL,
                    identifier TEXT NOT NULL,
                    operation TEXT NOT NULL,
                    reason TEXT,
                    queued_at REAL NOT NULL,
                    PRIMARY KEY (connection, profile_pk, identifier)
                ) WITHOUT ROWID;
                CREATE TABLE export_known_user (
                    connection TEXT NOT NULL,
                    key TEXT NOT NULL,
                    identifier TEXT NOT NULL,
                    found INTEGER NOT NULL,
                    checked_at REAL NOT NULL,
                    PRIMARY KEY (connection, key, identifier)
                ) WITHOUT ROWID;
                CREATE TABLE export_baseline (
                    connection TEXT NOT NULL,
                    segment TEXT NOT NULL,
                    profile_pk INTEGER NOT NULL,
                    PRIMARY KEY (connection, segment, profile_pk)
                ) WITHOUT ROWID;
                CREATE TABLE export_baseline_taken (
                    connection TEXT NOT NULL,
                    segment TEXT NOT NULL,
                    taken_at REAL NOT NULL,
                    PRIMARY KEY (connection, segment)
                ) WITHOUT ROWID;
                """)
        }
        migrator.registerMigration("v3-export-intents: one row per batch in flight") { db in
            // A batch's users as `[[pk, "profile id", "identifier", "operation"], …]`, written before it is sent and
            // deleted with its outcomes; rows left by a killed run become outbox rows at the next run's start.
            try db.execute(sql: """
                CREATE TABLE export_intent (
                    id INTEGER PRIMARY KEY,
                    connection TEXT NOT NULL,
                    queued_at REAL NOT NULL,
                    users TEXT NOT NULL
                );
                CREATE INDEX export_intent_by_connection ON export_intent(connection);
                """)
        }
    }
}
