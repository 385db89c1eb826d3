import Foundation
import GRDB

/// Copies a WAL store's log into its database file on a thread and connection of its own, while a load writes.
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

    private let connection: DatabaseQueue
    private let condition = NSCondition()
    private var pendingRows = 0
    private var isStopped = false
    private var isRunning = true
    /// The first checkpoint error, reported by `stop`.
    private var failure: (any Error)?

    /// Opens a second connection to the store at `path` and starts the checkpointing thread.
    init(path: String) throws {
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
        if pendingRows >= Self.rowsPerCheckpoint { condition.broadcast() }
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
            while pendingRows < Self.rowsPerCheckpoint && !isStopped { condition.wait() }
            // A checkpoint that is due still runs when stopping; rows short of one are left to SQLite's own.
            if pendingRows < Self.rowsPerCheckpoint { break }
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
