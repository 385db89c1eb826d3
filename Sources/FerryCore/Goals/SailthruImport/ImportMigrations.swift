import GRDB

/// The import goal's tables, registered after the store's own migrations.
public enum ImportMigrations {
    /// Adds `import_checkpoint`: one row per (connection, list) whose kept export is being applied.
    public static func register(in migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v3-import: import checkpoints") { db in
            try db.execute(sql: """
                CREATE TABLE import_checkpoint (
                    connection TEXT NOT NULL,
                    list TEXT NOT NULL,
                    file TEXT NOT NULL,
                    digest TEXT NOT NULL,
                    records_applied INTEGER NOT NULL DEFAULT 0,
                    completed INTEGER NOT NULL DEFAULT 0,
                    run_id INTEGER,
                    started_at REAL NOT NULL,
                    updated_at REAL NOT NULL,
                    PRIMARY KEY (connection, list)
                ) WITHOUT ROWID;
                """)
        }
    }
}
