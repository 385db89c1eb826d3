import Foundation
import GRDB

/// The run history: start a run, record progress and touched profiles, finish it with a status.
public struct RunLedger: Sendable {
    public let database: AppDatabase

    /// How many touched profiles a run keeps (the newest).
    public static let touchedKept = 5
    /// How many row errors a run keeps in full; the count keeps counting past it.
    public static let maximumRowErrors = 100

    public init(database: AppDatabase) {
        self.database = database
    }

    /// Records a new run as `running` and returns its id.
    public func start(connection: String, goal: String, trigger: RunTrigger, scheduledAt: Date?,
                      startedAt: Date = Date(), pid: Int32 = ProcessInfo.processInfo.processIdentifier) throws -> Int64 {
        try database.writer.write { db in
            try db.execute(sql: """
                INSERT INTO run (connection, goal, trigger, scheduled_at, started_at, status, pid)
                VALUES (?, ?, ?, ?, ?, 'running', ?)
                """, arguments: [connection, goal, trigger.rawValue, scheduledAt?.timeIntervalSince1970,
                                 startedAt.timeIntervalSince1970, pid])
            return db.lastInsertedRowID
        }
    }

    /// Records a run that never started (an overlap, a missed fire) with status `skipped` and why.
    @discardableResult
    public func recordSkipped(connection: String, goal: String, trigger: RunTrigger, scheduledAt: Date?, reason: String,
                              at now: Date = Date()) throws -> Int64 {
        try database.writer.write { db in
            try db.execute(sql: """
                INSERT INTO run (connection, goal, trigger, scheduled_at, started_at, ended_at, status, error)
                VALUES (?, ?, ?, ?, ?, ?, 'skipped', ?)
                """, arguments: [connection, goal, trigger.rawValue, scheduledAt?.timeIntervalSince1970,
                                 now.timeIntervalSince1970, now.timeIntervalSince1970, reason])
            return db.lastInsertedRowID
        }
    }

    /// Saves a running run's counters, row errors and touched profiles.
    public func update(runID: Int64, counts: RunCounts, rowErrors: [RunRowError], touched: [TouchedProfile], notes: [String] = []) throws {
        try database.writer.write { db in
            try Self.update(runID: runID, counts: counts, rowErrors: rowErrors, touched: touched, db: db)
            if !notes.isEmpty {
                try db.execute(sql: "UPDATE run SET notes = ? WHERE id = ?", arguments: [Self.encode(notes), runID])
            }
        }
    }

    /// The same, inside a caller's transaction (so progress commits with the data it describes).
    public static func update(runID: Int64, counts: RunCounts, rowErrors: [RunRowError], touched: [TouchedProfile], db: Database) throws {
        try db.execute(sql: """
            UPDATE run SET read = ?, created = ?, updated = ?, unchanged = ?, exported = ?, removed = ?,
                skipped = ?, failed = ?, row_errors = ?, touched = ? WHERE id = ?
            """, arguments: [counts.read, counts.created, counts.updated, counts.unchanged, counts.exported,
                             counts.removed, counts.skipped, counts.failed, encode(Array(rowErrors.prefix(maximumRowErrors))),
                             encode(Array(touched.suffix(touchedKept))), runID])
    }

    /// Ends a run with its final status.
    public func finish(runID: Int64, status: RunStatus, error: String?, endedAt: Date = Date()) throws {
        try database.writer.write { db in
            try db.execute(sql: "UPDATE run SET status = ?, error = ?, ended_at = ? WHERE id = ?",
                           arguments: [status.rawValue, error, endedAt.timeIntervalSince1970, runID])
        }
    }

    /// Adds a line to a run's notes after it finished (how its notification went).
    public func appendNote(runID: Int64, _ note: String) throws {
        try database.writer.write { db in
            let current: String = try String.fetchOne(db, sql: "SELECT notes FROM run WHERE id = ?", arguments: [runID]) ?? "[]"
            let notes: [String] = Self.decode(current) + [note]
            try db.execute(sql: "UPDATE run SET notes = ? WHERE id = ?", arguments: [Self.encode(notes), runID])
        }
    }

    /// Marks `running` runs whose process is gone as `interrupted`; returns how many.
    @discardableResult
    public func recoverInterrupted(isAlive: (Int32) -> Bool, now: Date = Date()) throws -> Int {
        try database.writer.write { db in
            let rows = try Row.fetchAll(db, sql: "SELECT id, pid FROM run WHERE status = 'running'")
            var count = 0
            for row in rows {
                let pid: Int32? = row["pid"]
                if let pid, isAlive(pid) { continue }
                try db.execute(sql: """
                    UPDATE run SET status = 'interrupted', ended_at = ?,
                        error = COALESCE(error, 'the process running it stopped before it finished')
                    WHERE id = ?
                    """, arguments: [now.timeIntervalSince1970, row["id"] as Int64])
                count += 1
            }
            return count
        }
    }

    /// Runs, newest first, optionally of one connection.
    public func runs(connection: String? = nil, limit: Int = 20) throws -> [RunRecord] {
        try database.writer.read { db in
            let filter = connection == nil ? "" : "WHERE connection = ?"
            let arguments: StatementArguments = connection.map { [$0, limit] } ?? [limit]
            return try Row.fetchAll(db, sql: "SELECT * FROM run \(filter) ORDER BY started_at DESC, id DESC LIMIT ?",
                                    arguments: arguments).map(Self.record)
        }
    }

    /// One run by id.
    public func run(id: Int64) throws -> RunRecord? {
        try database.writer.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM run WHERE id = ?", arguments: [id]).map(Self.record)
        }
    }

    static func record(_ row: Row) -> RunRecord {
        var counts = RunCounts()
        counts.read = row["read"]
        counts.created = row["created"]
        counts.updated = row["updated"]
        counts.unchanged = row["unchanged"]
        counts.exported = row["exported"]
        counts.removed = row["removed"]
        counts.skipped = row["skipped"]
        counts.failed = row["failed"]
        let scheduled: Double? = row["scheduled_at"]
        let ended: Double? = row["ended_at"]
        return RunRecord(
            id: row["id"], connection: row["connection"], goal: row["goal"],
            trigger: RunTrigger(rawValue: row["trigger"]) ?? .manual,
            scheduledAt: scheduled.map(Date.init(timeIntervalSince1970:)),
            startedAt: Date(timeIntervalSince1970: row["started_at"]),
            endedAt: ended.map(Date.init(timeIntervalSince1970:)),
            status: RunStatus(rawValue: row["status"]) ?? .failed,
            counts: counts, error: row["error"],
            rowErrors: decode(row["row_errors"]), touched: decode(row["touched"]), notes: decode(row["notes"]))
    }

    private static func encode<T: Encodable>(_ value: T) -> String {
        (try? String(decoding: JSONEncoder().encode(value), as: UTF8.self)) ?? "[]"
    }

    private static func decode<T: Decodable>(_ text: String) -> [T] {
        (try? JSONDecoder().decode([T].self, from: Data(text.utf8))) ?? []
    }
}

/// Collects one run's progress in memory and writes it to the ledger, so goals just count and report.
public actor RunRecorder {
    public let ledger: RunLedger
    public let runID: Int64
    public private(set) var counts = RunCounts()
    public private(set) var rowErrors: [RunRowError] = []
    public private(set) var touched: [TouchedProfile] = []
    public private(set) var notes: [String] = []

    public init(ledger: RunLedger, runID: Int64) {
        self.ledger = ledger
        self.runID = runID
    }

    /// The counters, row errors and touched profiles as they stand, in one call.
    public var progress: (counts: RunCounts, rowErrors: [RunRowError], touched: [TouchedProfile]) { (counts, rowErrors, touched) }

    /// Adds what a batch did in one call (a goal writing thousands of batches crossed to the actor for each part):
    /// `counts` but its `failed`, which `failures` count, as ``fail(_:)`` does, and the profiles it touched.
    public func add(_ counts: RunCounts, failures: [RunRowError], touched profiles: [TouchedProfile]) {
        self.counts = self.counts.adding(counts, includingFailed: false)
        for error in failures { fail(error) }
        for profile in profiles { touch(profile) }
    }

    /// Changes the counters.
    public func count(_ change: @Sendable (inout RunCounts) -> Void) {
        change(&counts)
    }

    /// Remembers a touched profile (only the newest five are kept).
    public func touch(_ profile: TouchedProfile) {
        touched.append(profile)
        if touched.count > RunLedger.touchedKept { touched.removeFirst(touched.count - RunLedger.touchedKept) }
    }

    /// Records a row that failed; counted in `failed`.
    public func fail(_ error: RunRowError) {
        counts.failed += 1
        if rowErrors.count < RunLedger.maximumRowErrors { rowErrors.append(error) }
    }

    /// Adds a line for people to the run's notes (a file written, a plan).
    public func note(_ text: String) {
        notes.append(text)
    }

    /// Records why rows were left out without failing them (e.g. skipped); shown with the row errors, not counted in `failed`.
    public func noteSkipped(_ error: RunRowError) {
        if rowErrors.count < RunLedger.maximumRowErrors { rowErrors.append(error) }
    }

    /// Writes the current progress to the ledger.
    public func flush() throws {
        try ledger.update(runID: runID, counts: counts, rowErrors: rowErrors, touched: touched, notes: notes)
    }

    /// Writes the final progress and status.
    public func finish(status: RunStatus, error: String?, endedAt: Date = Date()) throws {
        try flush()
        try ledger.finish(runID: runID, status: status, error: error, endedAt: endedAt)
    }
}
