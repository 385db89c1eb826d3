import Foundation
import GRDB

/// One list's import in progress: the kept export file and how many of its records are applied.
///
/// See ``SailthruImportExecutor`` for why this makes a killed import resume exactly once.
public struct ImportCheckpoint: Hashable, Sendable {
    public var connection: String
    public var list: String
    /// The kept export file the records are counted in.
    public var file: String
    /// `file`'s ``KeptExportDigest``, checked before resuming so the count refers to the same bytes.
    public var digest: String
    /// Data records (after the header) committed, bad rows included.
    public var recordsApplied: Int
    /// The run that last advanced it.
    public var runID: Int64?
    /// The whole file was applied by a run that was then stopped before its other lists were done.
    public var isCompleted: Bool

    /// The checkpoint of `list`, if an import of it has not finished.
    public static func load(connection: String, list: String, db database: AppDatabase) throws -> ImportCheckpoint? {
        try database.writer.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM import_checkpoint WHERE connection = ? AND list = ?", arguments: [connection, list])
                .map { ImportCheckpoint(connection: $0["connection"], list: $0["list"], file: $0["file"], digest: $0["digest"],
                                        recordsApplied: $0["records_applied"], runID: $0["run_id"],
                                        isCompleted: $0["completed"]) }
        }
    }

    /// Records a freshly kept export with nothing applied yet.
    static func begin(connection: String, list: String, file: String, digest: String, runID: Int64, at now: Date, db database: AppDatabase) throws {
        try database.writer.write { db in
            try begin(connection: connection, list: list, file: file, digest: digest, runID: runID, at: now, db: db)
        }
    }

    /// `begin`, inside the caller's transaction.
    static func begin(connection: String, list: String, file: String, digest: String, runID: Int64, at now: Date, db: Database) throws {
        try db.execute(sql: """
            INSERT OR REPLACE INTO import_checkpoint (connection, list, file, digest, records_applied, completed, run_id, started_at, updated_at)
            VALUES (?, ?, ?, ?, 0, 0, ?, ?, ?)
            """, arguments: [connection, list, file, digest, runID, now.timeIntervalSince1970, Date().timeIntervalSince1970])
    }

    /// Moves the checkpoint forward, inside the transaction that applied the records.
    static func advance(connection: String, list: String, recordsApplied: Int, runID: Int64, at now: Date, db: Database) throws {
        try db.execute(sql: """
            UPDATE import_checkpoint SET records_applied = ?, run_id = ?, updated_at = ? WHERE connection = ? AND list = ?
            """, arguments: [recordsApplied, runID, Date().timeIntervalSince1970, connection, list])
        guard db.changesCount == 1 else {
            throw GoalFailure("list \(list): its import checkpoint disappeared while the import ran")
        }
    }

    /// Marks the list fully applied; kept until every list of the goal is done, so a rerun after a kill skips it.
    static func complete(connection: String, list: String, db database: AppDatabase) throws {
        try database.writer.write { db in
            try db.execute(sql: "UPDATE import_checkpoint SET completed = 1, updated_at = ? WHERE connection = ? AND list = ?",
                           arguments: [Date().timeIntervalSince1970, connection, list])
        }
    }

    /// Forgets the connection's checkpoints: all of them when the goal finished, or only the completed
    /// ones when it failed (a failed run is not resumed; rows applied from an unfinished file still are not re-applied).
    static func clear(connection: String, onlyCompleted: Bool, db database: AppDatabase) throws {
        try database.writer.write { db in
            try db.execute(sql: "DELETE FROM import_checkpoint WHERE connection = ?\(onlyCompleted ? " AND completed = 1" : "")",
                           arguments: [connection])
        }
    }

    /// Forgets the checkpoint (the file is fully applied, or cannot be trusted).
    static func delete(connection: String, list: String, db database: AppDatabase) throws {
        try database.writer.write { db in
            try db.execute(sql: "DELETE FROM import_checkpoint WHERE connection = ? AND list = ?", arguments: [connection, list])
        }
    }
}
