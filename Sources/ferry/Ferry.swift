import ArgumentParser
import FerryCore
import FerryTransport

/// The `ferry` command line: parses arguments and calls into `FerryCore`.
@main
struct Ferry: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ferry",
        abstract: "A scheduled connection runner for customer data.",
        version: "ferry 0.1.0 (libcurl \(LibraryVersions.curl), libssh2 \(LibraryVersions.ssh2))",
        subcommands: [])
}
