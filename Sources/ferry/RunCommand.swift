import ArgumentParser
import FerryCore
import FerryTransport
import Foundation
import Logging

/// `ferry run NAME --now`: one connection's goals, once, in the foreground.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run one connection's goals once, now.")

    @OptionGroup var options: StoreOptions

    @Argument(help: "The connection's name.")
    var name: String

    @Flag(help: "Run now (scheduled runs are the daemon's job).")
    var now = false

    @Flag(help: "Plan only: count what would happen, send nothing.")
    var dryRun = false

    @Flag(help: "Allow an export to remove more of a list than max_removal_fraction.")
    var allowMassRemoval = false

    func validate() throws {
        guard now else { throw ValidationError("add --now: `ferry run NAME --now` runs a connection once; scheduled runs happen in `ferry daemon`") }
    }

    func run() async throws {
        try await reportingErrors {
            let config = options.loadConfig()
            guard let connection = config.connection(named: name) else {
                if let file = config.file(declaring: name) {
                    for error in file.errors { printError(error.description) }
                    throw CLIError.badInput("connection '\(name)' has configuration errors; nothing was run")
                }
                let known = config.files.compactMap(\.name).sorted()
                throw CLIError.badInput("no connection named '\(name)' in \(options.schedules)" + (known.isEmpty ? "" : "; known: \(known.joined(separator: ", "))"))
            }
            let database = try options.openDatabase()
            try RunLedger(database: database).recoverInterrupted(isAlive: ConnectionLock.processIsAlive)
            let logger = Logging.Logger(label: "ferry")
            let runner = ConnectionRunner(database: database, factory: LiveGoalFactory(logger: logger), logger: logger)
            let progress = ConsoleProgress(isTerminal: isStandardErrorTerminal)
            let result = try await runner.run(connection, segments: config.segments, trigger: .manual, scheduledAt: nil,
                                              progress: progress, isDryRun: dryRun, allowsMassRemoval: allowMassRemoval)
            await progress.finish()
            switch result {
            case .skippedOverlap(let record):
                print("run \(record.id) \(connection.name): skipped, the previous run is still running")
                throw ExitCode(1)
            case .ran(let records):
                for record in records {
                    var line = "run \(record.id) \(record.goal): \(record.status.rawValue) — \(record.counts.summary)"
                    line += " (\(ReportFormat.duration(record.endedAt.map { $0.timeIntervalSince(record.startedAt) })))"
                    if let error = record.error { line += "\n  error: \(error)" }
                    print(line)
                    // What the goal noted for people: files written, a dry run's plan.
                    for note in record.notes { print("  " + note) }
                }
                print("details: ferry history show RUN_ID")
                if records.contains(where: { $0.status != .succeeded }) { throw ExitCode(1) }
            }
        }
    }
}

/// Live progress on stderr: a redrawn bar on a terminal, a plain line every few seconds otherwise.
actor ConsoleProgress: ProgressSink {
    let isTerminal: Bool
    private var started = Date()
    private var lastPrinted = Date.distantPast
    private var drewBar = false

    init(isTerminal: Bool) { self.isTerminal = isTerminal }

    func progress(label: String, done: Int, total: Int?) {
        let now = Date()
        guard now.timeIntervalSince(lastPrinted) >= (isTerminal ? 0.1 : 5) || done == total else { return }
        lastPrinted = now
        let elapsed = max(now.timeIntervalSince(started), 0.001)
        let rate = Double(done) / elapsed
        var text = "\(label): \(done)"
        if let total, total > 0 {
            let fraction = min(1, Double(done) / Double(total))
            let width = 24
            let filled = Int(fraction * Double(width))
            let eta = rate > 0 ? ReportFormat.duration(Double(total - done) / rate) : "—"
            text = "\(label) [\(String(repeating: "#", count: filled))\(String(repeating: " ", count: width - filled))] \(done)/\(total) \(Int(rate))/s ETA \(eta)"
        } else {
            text += " (\(Int(rate))/s)"
        }
        if isTerminal {
            FileHandle.standardError.write("\r\u{1B}[K" + text)
            drewBar = true
        } else {
            FileHandle.standardError.write(text + "\n")
        }
    }

    func finish() {
        if drewBar { FileHandle.standardError.write("\n") }
    }
}

/// The goals this build can run, wired to the real transports.
struct LiveGoalFactory: GoalExecutorFactory {
    let logger: Logging.Logger
    /// Mail through `FERRY_SMTP_URL`; made once per process, so the "not configured" warning is logged once.
    var notifier: RunNotifier = LiveGoalFactory.notifier(environment: ProcessInfo.processInfo.environment)

    /// The notifier the `FERRY_SMTP_*` variables describe.
    static func notifier(environment: [String: String]) -> RunNotifier {
        let from = environment["FERRY_SMTP_FROM"].flatMap { $0.isEmpty ? nil : $0 } ?? "ferry@\(hostName())"
        guard let configuration = CurlMailSender.Configuration.fromEnvironment(environment) else {
            return RunNotifier(sender: nil, from: from)
        }
        return RunNotifier(sender: CurlMailSender(configuration: configuration), from: from)
    }

    /// This machine's name, for the default sender address.
    private static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "localhost" : name
    }

    func executor(for goal: Goal, of connection: Connection) throws -> any GoalExecutor {
        switch (goal, connection.destination) {
        case (.sailthruImport(let importGoal), .sailthru(let destination)):
            // FERRY_IMPORT_BATCH_SIZE: rows per transaction and checkpoint (tests make it small to land a kill mid-list).
            let batchSize = ProcessInfo.processInfo.environment["FERRY_IMPORT_BATCH_SIZE"].flatMap(Int.init)
                ?? SailthruImportExecutor.defaultBatchSize
            return SailthruImportExecutor(goal: importGoal, api: sailthruClient(destination), batchSize: batchSize)
        case (.sailthruExport(let export), .sailthru(let destination)):
            return SailthruExportExecutor(goal: export, api: sailthruClient(destination))
        case (.mappExport(let export), .mapp(let destination)):
            // A tuning knob for file splitting (and for tests that split small files); Mapp's limit is 50 MB.
            let limit = ProcessInfo.processInfo.environment["FERRY_MAPP_MAX_FILE_BYTES"].flatMap(Int.init) ?? 50_000_000
            return MappExport(goal: export, destination: destination, connector: SFTPClient(logger: logger), maximumFileBytes: limit)
        case (.sendgridExport(let export), .sendgrid(let destination)):
            return SendGridExportExecutor.live(goal: export, destination: destination, transport: CurlHTTPClient(logger: logger))
        case (.sailthruImport, _), (.sailthruExport, _), (.sendgridExport, _), (.mappExport, _):
            // The config parser pairs goals with their destination type; this guards hand-built connections.
            throw GoalFailure("the goal '\(goal.label)' does not fit a \(connection.destination.typeName) destination")
        }
    }

    /// A Sailthru client on libcurl; job polls start at 200 ms (the sandbox and small jobs finish fast) and back off to 10 s.
    private func sailthruClient(_ destination: SailthruDestination) -> SailthruClient {
        SailthruClient(
            configuration: .init(apiKey: destination.apiKey.value, apiSecret: destination.apiSecret.value,
                                 baseURL: destination.baseURL, initialPollInterval: .milliseconds(200), maxPollInterval: .seconds(10)),
            transport: CurlHTTPClient(logger: logger))
    }
}
