import ArgumentParser
import Foundation

/// `ferry-sandbox`: local platform servers and fixture generators for tests and demos.
@main
struct Sandbox: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ferry-sandbox",
        abstract: "Local Sailthru- and SendGrid-compatible servers, an SMTP server and fixture generators.",
        subcommands: [SailthruCommand.self, SendGridCommand.self, SMTPCommand.self, GenerateCommand.self])
}
