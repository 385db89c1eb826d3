import Foundation
import Logging

/// Where a goal reports how far it got, for progress bars and periodic log lines.
public protocol ProgressSink: Sendable {
    /// `done` of `total` (nil when unknown yet) units of `label`, e.g. rows or profiles.
    func progress(label: String, done: Int, total: Int?) async
}

/// A progress sink that shows nothing.
public struct SilentProgress: ProgressSink {
    public init() {}
    public func progress(label: String, done: Int, total: Int?) async {}
}

/// Everything a goal needs while it runs.
public struct GoalContext: Sendable {
    public var connection: Connection
    public var segments: [SegmentDefinition]
    public var database: AppDatabase
    public var recorder: RunRecorder
    public var progress: any ProgressSink
    public var logger: Logger
    /// Plan only: count what would happen and send nothing.
    public var isDryRun: Bool
    /// Set by `--allow-mass-removal`.
    public var allowsMassRemoval: Bool
    /// The instant the run counts as happening at (a scheduled fire, or now).
    public var now: Date
    /// Set when the runner has already brought segment membership up to date for this run: goals then trust it.
    public var segmentsAreCurrent = false

    public init(connection: Connection, segments: [SegmentDefinition], database: AppDatabase, recorder: RunRecorder,
                progress: any ProgressSink, logger: Logger, isDryRun: Bool = false, allowsMassRemoval: Bool = false, now: Date = Date()) {
        self.connection = connection
        self.segments = segments
        self.database = database
        self.recorder = recorder
        self.progress = progress
        self.logger = logger
        self.isDryRun = isDryRun
        self.allowsMassRemoval = allowsMassRemoval
        self.now = now
    }
}

/// One goal, ready to run: the single protocol every import and export plugs into the runner through.
///
/// A goal counts its work on `context.recorder` (rows that fail go to `recorder.fail`, making the run
/// `partial`) and throws only when the whole goal cannot go on (the run is then `failed`).
public protocol GoalExecutor: Sendable {
    func run(in context: GoalContext) async throws
}

/// Makes the executor for a configured goal; the `ferry` executable wires in the real transports.
public protocol GoalExecutorFactory: Sendable {
    func executor(for goal: Goal, of connection: Connection) throws -> any GoalExecutor
    /// Mails the `notify` recipients about finished runs; the default has no mail server.
    var notifier: RunNotifier { get }
}

extension GoalExecutorFactory {
    public var notifier: RunNotifier { .unconfigured }
}

/// A goal whose whole run failed, with a message for the history and the person reading it.
public struct GoalFailure: Error, Hashable, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension GoalContext {
    /// Makes segment membership current unless the runner already did for this run (once per run, not per goal).
    public func ensureSegmentsCurrent() throws {
        guard !segmentsAreCurrent else { return }
        try ProfileStore(database: database).refreshSegmentsIfNeeded(segments, now: now)
    }
}
