import ArgumentParser
import FerryCore
import Foundation

/// `ferry next NAME`: the next fire times, one RFC 3339 timestamp a line.
struct NextCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "next", abstract: "The next fire times of a connection.")

    @OptionGroup var options: StoreOptions

    @Argument(help: "The connection's name.")
    var name: String

    @Option(help: "List fire times strictly after this RFC 3339 instant (default: now).")
    var from: String?

    @Option(help: "How many fire times (1 to 10000).")
    var count: Int = 5

    @Flag(help: "Print in UTC (Z) instead of the connection's offset.")
    var utc = false

    func validate() throws {
        guard (1...10_000).contains(count) else { throw ValidationError("--count must be 1 to 10000") }
        if let from, ISO8601.parse(from) == nil || from.count < 16 {
            throw ValidationError("--from '\(from)' must be an RFC 3339 instant like 2026-03-08T00:00:00-05:00")
        }
    }

    func run() async throws {
        try await reportingErrors {
            let config = options.loadConfig()
            guard let file = config.file(declaring: name) else {
                let known = config.files.compactMap(\.name).sorted()
                throw CLIError.badInput("no connection named '\(name)' in \(options.schedules)" + (known.isEmpty ? "" : "; known: \(known.joined(separator: ", "))"))
            }
            guard file.scheduleErrors.isEmpty, let schedule = file.schedule else {
                for error in file.scheduleErrors { printError(error.description) }
                throw ExitCode(2)
            }
            // Only name, timezone and schedule matter here; the rest of the file is a warning.
            for error in file.errors where !file.scheduleErrors.contains(error) {
                printError("warning: " + error.description)
            }
            let start = from.flatMap(ISO8601.parse) ?? Date()
            for instant in ScheduleEngine().fires(of: schedule, after: start, count: count) {
                print(utc ? RFC3339.format(instant, offsetSeconds: 0) : RFC3339.format(instant, in: schedule.timeZoneIdentifier))
            }
        }
    }
}
