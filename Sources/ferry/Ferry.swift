import ArgumentParser
import FerryCore
import FerryTransport
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The `ferry` command line: parses arguments and calls into `FerryCore`.
@main
struct Ferry: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ferry",
        abstract: "A scheduled connection runner for customer data.",
        version: "ferry 0.1.0 (libcurl \(LibraryVersions.curl), libssh2 \(LibraryVersions.ssh2))",
        subcommands: [ValidateCommand.self, NextCommand.self, RunCommand.self, DaemonCommand.self, StatusCommand.self, BackupCommand.self, ProfilesCommand.self, SegmentsCommand.self, HistoryCommand.self])

    /// Runs the command; usage errors exit 2 (bad input), as DESIGN.md's exit codes say.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                FileHandle.standardError.write(fullMessage(for: error) + "\n")
                Glibc.exit(2)
            }
            exit(withError: error)
        }
    }
}
