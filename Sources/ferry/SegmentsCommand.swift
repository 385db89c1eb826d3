import ArgumentParser
import FerryCore
import Foundation

/// `ferry segments [NAME]`: sizes, or one segment's members.
struct SegmentsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "segments", abstract: "Segment sizes, or one segment's members.")

    @OptionGroup var options: StoreOptions

    @Argument(help: "A segment name: list its members.")
    var name: String?

    @Option(help: "How many members to list.")
    var limit: Int = 20

    func run() async throws {
        try await reportingErrors {
            let segments = try options.loadSegments()
            let store = ProfileStore(database: try options.openDatabase())
            try store.refreshSegmentsIfNeeded(segments)
            let sizes = try store.segmentSizes()
            if let name {
                guard segments.contains(where: { $0.name == name }) else {
                    throw CLIError.badInput("unknown segment '\(name)'; known: \(segments.map(\.name).joined(separator: ", "))")
                }
                print(ProfileReport.members(try store.members(of: name, limit: max(0, limit)), segment: name, size: sizes[name] ?? 0))
            } else {
                var table = TextTable(headers: ["SEGMENT", "SIZE", "RULE"])
                table.rows = segments.map { [$0.name, String(sizes[$0.name] ?? 0), $0.rule == nil ? "explicit" : "rule"] }
                print(segments.isEmpty ? "no segments defined in \(options.schedules)/\(ConfigLoader.segmentsFile)" : table.render(colour: isTerminal))
            }
        }
    }
}
