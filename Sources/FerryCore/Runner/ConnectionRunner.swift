import Foundation
import Logging

/// Runs a connection's goals once, imports before exports, each recorded as its own run in the ledger.
public struct ConnectionRunner: Sendable {
    public var database: AppDatabase
    public var factory: any GoalExecutorFactory
    public var logger: Logger
    public var lock: ConnectionLock

    public init(database: AppDatabase, factory: any GoalExecutorFactory, logger: Logger) {
        self.database = database
        self.factory = factory
        self.logger = logger
        self.lock = ConnectionLock(database: database)
    }

    /// How one run of a connection ended.
    public enum Result: Sendable {
        /// The goals ran; one record per goal.
        case ran([RunRecord])
        /// Another run of the connection was still running; the fire was recorded as skipped.
        case skippedOverlap(RunRecord)
    }

    /// Runs every goal of `connection` now, unless another run of it holds the connection's lock.
    public func run(_ connection: Connection, segments: [SegmentDefinition], trigger: RunTrigger, scheduledAt: Date?,
                    progress: any ProgressSink = SilentProgress(), isDryRun: Bool = false, allowsMassRemoval: Bool = false,
                    now: @Sendable () -> Date = Date.init) async throws -> Result {
        let ledger = RunLedger(database: database)
        guard try lock.acquire(connection.name) else {
            let id = try ledger.recordSkipped(connection: connection.name, goal: "all goals", trigger: trigger,
                                              scheduledAt: scheduledAt, reason: "skipped (overlap): the previous run is still running")
            logger.info("skipped: previous run still running", metadata: ["connection": "\(connection.name)"])
            return .skippedOverlap(try ledger.run(id: id)!)
        }
        defer { try? lock.release(connection.name) }

        var records: [RunRecord] = []
        var segmentsAreCurrent = false
        for goal in connection.goals {
            if !goal.isImport && !segmentsAreCurrent {
                // Once per run, after the imports: every export then reads the same, current membership.
                // If it fails, each export tries again itself and its run records the error.
                do {
                    try ProfileStore(database: database).refreshSegmentsIfNeeded(segments, now: scheduledAt ?? now())
                    segmentsAreCurrent = true
                } catch {
                    logger.warning("segment membership could not be refreshed before the exports; each export tries again",
                                   metadata: ["connection": "\(connection.name)", "error": "\(error)"])
                }
            }
            let runID = try ledger.start(connection: connection.name, goal: goal.label + (isDryRun ? " (dry run)" : ""),
                                         trigger: trigger, scheduledAt: scheduledAt, startedAt: now())
            let recorder = RunRecorder(ledger: ledger, runID: runID)
            var goalLogger = logger
            goalLogger[metadataKey: "connection"] = "\(connection.name)"
            goalLogger[metadataKey: "run"] = "\(runID)"
            goalLogger.info("run started", metadata: ["goal": "\(goal.label)", "trigger": "\(trigger.rawValue)"])
            var context = GoalContext(connection: connection, segments: segments, database: database, recorder: recorder,
                                      progress: progress, logger: goalLogger, isDryRun: isDryRun,
                                      allowsMassRemoval: allowsMassRemoval, now: scheduledAt ?? now())
            context.segmentsAreCurrent = segmentsAreCurrent
            let status: RunStatus
            var message: String?
            do {
                let executor = try factory.executor(for: goal, of: connection)
                try await executor.run(in: context)
                status = await recorder.counts.failed > 0 ? .partial : .succeeded
            } catch is CancellationError {
                status = .interrupted
                message = "stopped before it finished (shutdown)"
            } catch where Task.isCancelled {
                // Whatever error the cancelled work surfaced, the cause was the shutdown.
                status = .interrupted
                message = "stopped before it finished (shutdown): \(error)"
            } catch {
                status = .failed
                message = String(describing: error)
            }
            try await recorder.finish(status: status, error: message, endedAt: now())
            let summary = await recorder.counts.summary
            goalLogger.info("run finished", metadata: ["status": "\(status.rawValue)", "counts": "\(summary)"])
            if var record = try ledger.run(id: runID) {
                // Mail never changes the run: a failed send is only a note on it.
                if !isDryRun, let settings = connection.notify,
                   let note = await factory.notifier.notify(record, settings: settings, logger: goalLogger) {
                    try ledger.appendNote(runID: runID, note)
                    record.notes.append(note)
                }
                records.append(record)
            }
            if status == .interrupted { break }
        }
        return .ran(records)
    }
}
