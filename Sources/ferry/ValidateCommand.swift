import ArgumentParser
import FerryCore
import Foundation

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
        // Not an error: runs still work, only their mail is not sent (and each run notes that).
        let smtpURL = ProcessInfo.processInfo.environment["FERRY_SMTP_URL"] ?? ""
        for connection in config.connections where connection.notify != nil && smtpURL.isEmpty {
            printError("warning: \(connection.file): notify is set but FERRY_SMTP_URL is not; its notifications will not be sent")
        }
        if config.errors.isEmpty {
            print("ok: \(config.connections.count) connection\(config.connections.count == 1 ? "" : "s"), \(config.segments.count) segment\(config.segments.count == 1 ? "" : "s")")
        } else {
            printError("\(config.errors.count) problem\(config.errors.count == 1 ? "" : "s") found")
            throw ExitCode(2)
        }
    }
}
