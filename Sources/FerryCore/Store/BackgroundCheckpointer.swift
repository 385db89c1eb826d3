import Foundation
import GRDB

/// Copies a WAL store's log into its database file on a thread and connection of its own, while a load or an import
/// writes.
///
/// SQLite's automatic checkpoint runs inside the commit that crosses its threshold, on the writing thread: the
/// copy, and the `fdatasync` of the WAL and of the database file, stopped the load's writes for 2 s of every
/// 300,000 profiles. A `PASSIVE` checkpoint from another connection takes no write lock, so the writer goes on
/// committing while the pages are copied and synced; the WAL starts over once a checkpoint has caught up.
/// Committed batches are as safe either way: until checkpointed they are in the WAL, which SQLite replays.
///
/// `@unchecked Sendable`: `pendingRows`, `isStopped` and `isRunning` are only touched with `condition` locked;
/// `connection` only by the checkpointing thread.
final class BackgroundCheckpointer: @unchecked Sendable {
    /// Rows committed between two checkpoints: about 64 MiB of WAL for a load of generated profiles.
    static let rowsPerCheckpoint = 40_000

    /// Rows committed between two checkpoints of this checkpointer.
    private let rowsPerCheckpoint: Int

    private let connection: DatabaseQueue
    private let condition = NSCondition()
    private var pendingRows = 0
    private var isStopped = false
    private var isRunning = true
    /// The first checkpoint error, reported by `stop`.
    private var failure: (any Error)?

    /// Opens a second connection to the store at `path` and starts the checkpointing thread, which checkpoints
    /// whenever `rowsPerCheckpoint` more rows have been committed.
    init(path: String, rowsPerCheckpoint: Int = BackgroundCheckpointer.rowsPerCheckpoint) throws {
        self.rowsPerCheckpoint = rowsPerCheckpoint
        var configuration = Configuration()
        configuration.label = "ferry.checkpointer"
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        connection = try DatabaseQueue(path: path, configuration: configuration)
        let thread = Thread { [self] in run() }
        thread.name = "ferry.checkpointer"
        thread.start()
    }

    /// Tells the checkpointer that `rows` more rows were committed.
    func committed(rows: Int) {
        condition.lock()
        pendingRows += rows
        if pendingRows >= rowsPerCheckpoint { condition.broadcast() }
        condition.unlock()
    }

    /// Waits for a checkpoint in progress or due and ends the thread; throws the first checkpoint error, if any.
    func stop() throws {
        condition.lock()
        isStopped = true
        condition.broadcast()
        while isRunning { condition.wait() }
        let failure = self.failure
        condition.unlock()
        if let failure { throw failure }
    }

    private func run() {
        condition.lock()
        while true {
            while pendingRows < rowsPerCheckpoint && !isStopped { condition.wait() }
            // A checkpoint that is due still runs when stopping; rows short of one are left to SQLite's own.
            if pendingRows < rowsPerCheckpoint { break }
            pendingRows = 0
            condition.unlock()
            do {
                // PASSIVE: copies what no reader still needs, never waits for the writer, never blocks it.
                try connection.writeWithoutTransaction { _ = try $0.checkpoint(.passive) }
            } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY {
                // Another checkpoint is running (a second process): this one is not needed.
            } catch {
                condition.lock()
                if failure == nil { failure = error }
                condition.unlock()
            }
            condition.lock()
        }
        isRunning = false
        condition.broadcast()
        condition.unlock()
    }
}

extension BackgroundCheckpointer {
    /// Rows an import commits between two checkpoints of its own checkpointer: about 3.5 MiB of WAL, two batches.
    static let importRowsPerCheckpoint = 8_000
    /// The writer's own checkpoint threshold while an import runs, in WAL pages (16 MiB; SQLite's default is 1,000).
    static let importWriterCheckpointPages = 4_000

    /// Runs `body` (an import's batches, which tell the checkpointer of each commit) with most of the WAL's copying off
    /// the writer: a checkpointer on its own connection copies the log every ``importRowsPerCheckpoint`` rows while the
    /// writer commits, and the writer's own checkpoint, every ``importWriterCheckpointPages`` pages instead of 1,000,
    /// finds most of it copied and starts the log over. A passive checkpoint from another connection never catches up
    /// with a writer committing every few milliseconds, so without the writer's the log would grow to the size of
    /// everything written (474 MB for a million-row import); with only the writer's, its checkpoints took a second of
    /// its time a million rows, on the thread every batch waits for. The writer's threshold is put back after. An
    /// in-memory store has no WAL: `body` gets nil.
    static func whileImporting<T>(into database: AppDatabase, _ body: (BackgroundCheckpointer?) async throws -> T) async throws -> T {
        guard database.writer is DatabasePool else { return try await body(nil) }
        let usual = try await database.writer.writeWithoutTransaction { db in
            let usual = try Int.fetchOne(db, sql: "PRAGMA wal_autocheckpoint") ?? 1000
            try db.execute(sql: "PRAGMA wal_autocheckpoint = \(importWriterCheckpointPages)")
            return usual
        }
        func restore() async throws {
            try await database.writer.writeWithoutTransaction { try $0.execute(sql: "PRAGMA wal_autocheckpoint = \(usual)") }
        }
        let checkpointer: BackgroundCheckpointer
        do {
            checkpointer = try BackgroundCheckpointer(path: database.writer.path, rowsPerCheckpoint: importRowsPerCheckpoint)
        } catch {
            try? await restore()
            throw error
        }
        let result: T
        do {
            result = try await body(checkpointer)
        } catch {
            // The import's own error is the one to report.
            try? await stopWaiting(checkpointer)
            try? await restore()
            throw error
        }
        try await stopWaiting(checkpointer)
        try await restore()
        return result
    }

    /// ``stop()``, waited for on a dispatch thread: a blocking wait, kept off Swift's cooperative threads.
    private static func stopWaiting(_ checkpointer: BackgroundCheckpointer) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            DispatchQueue.global().async { continuation.resume(with: Result { try checkpointer.stop() }) }
        }
    }
}
