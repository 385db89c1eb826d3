import ArgumentParser
import FerryCore

/// `ferry validate`: every problem in every file, as `file:line:column: message`.
struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate", abstract: "Check every file in the schedules folder.")

    @OptionGroup var options: StoreOptions

    func run() async throws {
        let config = options.loadConfig()
        for error in config.errors {
            print(error.description)
        }
        if config.errors.isEmpty {
            print("ok: \(config.connections.count) connection\(config.connections.count == 1 ? "" : "s"), \(config.segments.count) segment\(config.segments.count == 1 ? "" : "s")")
        } else {
            printError("\(config.errors.count) problem\(config.errors.count == 1 ? "" : "s") found")
            throw ExitCode(2)
        }
    }
}
