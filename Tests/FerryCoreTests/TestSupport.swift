import Foundation
import Logging
import FerryTestSupport
import Testing
@testable import FerryCore

/// A fresh temporary folder per test (shared with the integration tests).
typealias TemporaryDirectory = TemporaryFolder

/// An import goal of list L matched by email, creating profiles, summing `order_total` into `lifetime_spend`.
let sumOrderTotalByEmail = """
    lists: [L]
    match: { email: email }
    create_profiles: true
    fields:
      - { from: order_total, to: lifetime_spend, mode: sum }
    """

/// Writes connection `c` (Sailthru, base URL that nothing answers) with `importGoal` as its one goal,
/// loads it, and returns the connection and its import goal.
func loadSailthruImportConnection(_ importGoal: String, in dir: TemporaryDirectory) throws -> (Connection, SailthruImportGoal) {
    dir.write("schedules/c.yaml", """
    name: c
    timezone: UTC
    schedule: { at: ["02:30"] }
    destination: { type: sailthru, api_key: "${K}", api_secret: "${S}", base_url: "http://127.0.0.1:9" }
    goals:
      - import:
    """ + "\n" + importGoal.split(separator: "\n", omittingEmptySubsequences: false).map { "        " + $0 }.joined(separator: "\n") + "\n")
    let config = ConfigLoader(environment: ["K": "k", "S": "s"]).load(directory: dir.path + "/schedules")
    let connection = try #require(config.connection(named: "c"), "\(config.errors)")
    guard case .sailthruImport(let goal) = connection.goals.first else { throw NoImportGoal() }
    return (connection, goal)
}

/// The loaded connection has no import goal first.
struct NoImportGoal: Error {}

/// Writes `csv` as connection `c`'s kept export of list L and records its checkpoint, nothing applied yet; returns its path.
@discardableResult
func keepImportExport(_ csv: String, in dir: TemporaryDirectory, database: AppDatabase) throws -> String {
    let kept = dir.write("kept.csv", csv)
    try ImportCheckpoint.begin(connection: "c", list: "L", file: kept, digest: KeptExportDigest.of(URL(fileURLWithPath: kept)),
                               runID: 0, at: Date(), db: database)
    return kept
}

/// Runs `goal` once over its kept export (nothing to download), in batches of `batchSize`; returns the run's recorder.
/// `log`, when given, keeps what the run logs.
func runKeptImport(_ goal: SailthruImportGoal, of connection: Connection, database: AppDatabase, in dir: TemporaryDirectory,
                   batchSize: Int, segments: [SegmentDefinition] = [], log: CapturedLog? = nil,
                   progress: any ProgressSink = SilentProgress()) async throws -> RunRecorder {
    let ledger = RunLedger(database: database)
    let runID = try ledger.start(connection: "c", goal: "import L", trigger: .manual, scheduledAt: nil)
    let recorder = RunRecorder(ledger: ledger, runID: runID)
    let logger = log.map { log in Logger(label: "test") { _ in CapturedLog.Handler(sink: log) } } ?? Logger(label: "test")
    let context = GoalContext(connection: connection, segments: segments, database: database, recorder: recorder,
                              progress: progress, logger: logger)
    let executor = SailthruImportExecutor(goal: goal, api: SailthruImportResumeTests.NoExportAPI(), batchSize: batchSize,
                                          stateDirectory: URL(fileURLWithPath: dir.path + "/state"))
    try await executor.run(in: context)
    return recorder
}

/// What a run logged, every level, message and metadata (a lock guards `entries`).
final class CapturedLog: @unchecked Sendable {
    private let lock = NSLock()
    private var kept: [(message: String, metadata: [String: String])] = []

    var entries: [(message: String, metadata: [String: String])] { lock.withLock { kept } }

    /// The metadata of the first entry saying `message`.
    func metadata(of message: String) -> [String: String]? { entries.first { $0.message == message }?.metadata }

    /// Hands every entry, at every level, to a `CapturedLog`.
    struct Handler: LogHandler {
        let sink: CapturedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String,
                 function: String, line: UInt) {
            let merged = self.metadata.merging(metadata ?? [:]) { $1 }.mapValues { "\($0)" }
            sink.lock.withLock { sink.kept.append((message.description, merged)) }
        }
    }
}
