import ArgumentParser
import FlyingFox
import Foundation

/// `ferry-sandbox sendgrid`: a local SendGrid Marketing Campaigns-compatible API server, and `dump` of its state.
struct SendGridCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sendgrid",
        abstract: "A local SendGrid Marketing API (field definitions, lists, contacts, import jobs, segments 2.0).",
        subcommands: [Serve.self, Dump.self],
        defaultSubcommand: Serve.self)

    /// Runs the server until killed.
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "serve", abstract: "Run the server (the default).")

        @OptionGroup var server: ServerOptions
        @Option(help: "The API key clients must send as a Bearer token.") var apiKey: String
        @Option(help: "Directory for the state (JSON).") var state: String
        @Option(help: "Seconds an import job stays pending.") var jobDelay: Double = 2
        @Option(help: "Requests per minute before 429 (0: no limit).") var rateLimit: Int = 0

        func validate() throws {
            guard rateLimit >= 0, jobDelay >= 0 else { throw ValidationError("limits and delays must not be negative") }
        }

        func run() async throws {
            let store = try SendGridStore(directory: URL(fileURLWithPath: state), jobDelay: jobDelay)
            let faults = FaultSettings(failRate: server.failRate, latency: .milliseconds(server.latency), dropRate: server.dropConnections)
            let limit = rateLimit > 0 ? rateLimit : 1_000_000
            let gate = RequestGate(faults: faults, limits: RateLimits(limits: ["ANY /all": limit], window: 60), seed: server.faultSeed)
            let handler = SendGridHandler(apiKey: apiKey, store: store, gate: gate, faults: faults)
            try await serve(try server.makeServer(handler: handler, platform: .sendgrid)) { try await store.advance() }
        }
    }

    /// Prints contacts, fields, lists and segments (with member counts) as JSON.
    struct Dump: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "dump", abstract: "Print the account's state as JSON.")

        @Option(help: "The server's state directory.") var state: String

        func run() async throws {
            let loaded = try SendGridStore.load(from: URL(fileURLWithPath: state))
            print(SendGridStore.dump(loaded).text(pretty: true))
        }
    }
}
