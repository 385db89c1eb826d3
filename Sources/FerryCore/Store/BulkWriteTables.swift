import GRDB

/// The tables loads, imports and exports fill many rows per statement, declared so SQLite needs no statement journal.
///
/// A statement that writes several rows and may stop half-way (an immediate foreign key, or a unique key that
/// aborts) makes SQLite copy every page it touches into a statement journal first, so it can undo just that
/// statement. The identifier index is written all over (emails are random), so a 100-row `INSERT` copied about
/// 100 pages: a load of 100,000 profiles wrote 450 MB of statement journal beside 100 MB of WAL. With the foreign
/// keys deferred (checked at commit: a missing profile still fails the whole transaction) and the multi-row inserts
/// written `INSERT OR FAIL` (a duplicate still fails the statement and, through it, the transaction), nothing
/// needs undoing statement by statement. An import's batches go further and write with the checks off
/// (`Database.withoutForeignKeyChecks`): every row they write names a profile their own transaction created or read.
enum BulkWriteTables {
    /// Recreates `identifier`, `segment_member` and `data_exchange` with `DEFERRABLE INITIALLY DEFERRED` foreign keys,
    /// keeping their rows and indexes. SQLite cannot change a foreign key in place: each table is copied.
    static func rebuildWithDeferredKeys(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE identifier_new (
                property TEXT NOT NULL,
                value TEXT NOT NULL,
                profile_pk INTEGER NOT NULL REFERENCES profile(pk) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
                PRIMARY KEY (property, value)
            ) WITHOUT ROWID;
            INSERT INTO identifier_new (property, value, profile_pk) SELECT property, value, profile_pk FROM identifier;
            DROP TABLE identifier;
            ALTER TABLE identifier_new RENAME TO identifier;

            CREATE TABLE segment_member_new (
                segment TEXT NOT NULL,
                profile_pk INTEGER NOT NULL REFERENCES profile(pk) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
                entered_at REAL NOT NULL,
                PRIMARY KEY (segment, profile_pk)
            ) WITHOUT ROWID;
            INSERT INTO segment_member_new (segment, profile_pk, entered_at) SELECT segment, profile_pk, entered_at FROM segment_member;
            DROP TABLE segment_member;
            ALTER TABLE segment_member_new RENAME TO segment_member;
            CREATE INDEX segment_member_by_profile ON segment_member(profile_pk);

            CREATE TABLE data_exchange_new (
                connection TEXT NOT NULL,
                profile_pk INTEGER NOT NULL REFERENCES profile(pk) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
                first_at REAL NOT NULL,
                PRIMARY KEY (connection, profile_pk)
            ) WITHOUT ROWID;
            INSERT INTO data_exchange_new (connection, profile_pk, first_at) SELECT connection, profile_pk, first_at FROM data_exchange;
            DROP TABLE data_exchange;
            ALTER TABLE data_exchange_new RENAME TO data_exchange;
            """)
    }
}
