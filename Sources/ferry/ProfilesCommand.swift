import ArgumentParser
import FerryCore
import Foundation

/// `ferry profiles load|show`.
struct ProfilesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profiles", abstract: "Load and inspect profiles.",
        subcommands: [Load.self, Show.self])

    /// `ferry profiles load FILE`.
    struct Load: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Load profiles from JSON Lines or CSV (upsert by id, else by identifier).")

        @OptionGroup var options: StoreOptions

        @Argument(help: "A .jsonl or .csv file.")
        var file: String

        @Option(help: "Rows per transaction.")
        var batchSize: Int = 5000

        func run() async throws {
            try await reportingErrors {
                let segments = try options.loadSegments()
                let store = ProfileStore(database: try options.openDatabase())
                let loader = ProfileLoader(store: store, segments: segments, batchSize: max(1, batchSize))
                var lastReported = 0
                let started = Date()
                let report: LoadReport
                do {
                    report = try loader.load(path: file) { progress in
                        let done = progress.created + progress.updated + progress.unchanged + progress.rejected.count
                        if done - lastReported >= 100_000 {
                            lastReported = done
                            let rate = Double(done) / max(Date().timeIntervalSince(started), 0.001)
                            FileHandle.standardError.write("… \(done) rows (\(Int(rate)) rows/s), committed through line \(progress.committedThroughLine)\n")
                        }
                    }
                } catch let error as InputError {
                    throw CLIError.badInput(error.description)
                } catch {
                    throw CLIError.failure("the load stopped: \(error). Batches committed before it are kept; rerun the load to continue (it upserts).")
                }
                for row in report.rejected {
                    printError(row.description)
                }
                let unchanged = report.unchanged > 0 ? ", unchanged \(report.unchanged)" : ""
                print("loaded \(report.created), updated \(report.updated), rejected \(report.rejected.count)\(unchanged)")
                if !report.rejected.isEmpty { throw ExitCode(2) }
            }
        }
    }

    /// `ferry profiles show ID_OR_EMAIL`.
    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "One profile with its values, segments and objectives.")

        @OptionGroup var options: StoreOptions

        @Argument(help: "A profile id or any identifier value (an email, a platform id).")
        var idOrEmail: String

        @Flag(help: "Print JSON.")
        var json = false

        func run() async throws {
            try await reportingErrors {
                let store = ProfileStore(database: try options.openDatabase())
                guard let stored = try store.find(idOrEmail) else {
                    throw CLIError.badInput("no profile with id or identifier '\(idOrEmail)'")
                }
                let memberships = try store.memberships(pk: stored.pk)
                print(ProfileReport.render(stored, memberships: memberships, json: json))
            }
        }
    }
}
