import ArgumentParser
import FerryCore
import Foundation

/// `ferry history [NAME]` and `ferry history show RUN_ID`.
struct HistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history", abstract: "The run history, newest first.",
        subcommands: [List.self, Show.self], defaultSubcommand: List.self)

    /// The table (the default).
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "The run history table.")

        @OptionGroup var options: StoreOptions

        @Argument(help: "Only this connection's runs.")
        var name: String?

        @Option(help: "How many runs to show.")
        var limit: Int = 20

        @Flag(help: "Print JSON.")
        var json = false

        func run() async throws {
            try await reportingErrors {
                let ledger = RunLedger(database: try options.openDatabase())
                let runs = try ledger.runs(connection: name, limit: max(0, limit))
                // Each enabled connection's next fire on top, as BlueConic's run history shows it.
                let engine = ScheduleEngine()
                let now = Date()
                let upcoming = options.loadConfig().connections
                    .filter { $0.isEnabled && (name == nil || $0.name == name) }
                    .compactMap { c in engine.nextFire(of: c.schedule, after: now).map { UpcomingRun(connection: c.name, at: $0) } }
                    .sorted { $0.at < $1.at }
                print(json ? HistoryReport.json(runs: runs, upcoming: upcoming)
                           : HistoryReport.table(runs: runs, upcoming: upcoming, colour: isTerminal))
            }
        }
    }

    /// One run in full.
    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One run: counts, errors, the last five profiles touched.")

        @OptionGroup var options: StoreOptions

        @Argument(help: "The run id (first column of `ferry history`).")
        var runID: Int64

        @Flag(help: "Print JSON.")
        var json = false

        func run() async throws {
            try await reportingErrors {
                let ledger = RunLedger(database: try options.openDatabase())
                guard let run = try ledger.run(id: runID) else { throw CLIError.badInput("no run \(runID)") }
                print(json ? HistoryReport.jsonText(HistoryReport.jsonObject(run)) : HistoryReport.detail(run))
            }
        }
    }
}
