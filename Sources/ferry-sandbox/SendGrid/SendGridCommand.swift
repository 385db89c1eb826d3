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

        @Option(help: "Port on 127.0.0.1; 0 picks a free one.") var port: Int = 0
        @Option(help: "The API key clients must send as a Bearer token.") var apiKey: String
        @Option(help: "Directory for the state (JSON).") var state: String
        @Option(help: "Seconds an import job stays pending.") var jobDelay: Double = 2
        @Option(help: "Fraction of API requests that fail with HTTP 500.") var failRate: Double = 0
        @Option(help: "Added latency per request, in milliseconds.") var latency: Int = 0
        @Option(help: "Fraction of API requests whose connection drops mid-body.") var dropConnections: Double = 0
        @Option(help: "Requests per minute before 429 (0: no limit).") var rateLimit: Int = 0
        @Option(help: "Seed for the fault dice.") var seed: UInt64?

        func validate() throws {
            guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535") }
            guard (0...1).contains(failRate), (0...1).contains(dropConnections) else {
                throw ValidationError("--fail-rate and --drop-connections are fractions in 0...1")
            }
            guard rateLimit >= 0, jobDelay >= 0, latency >= 0 else { throw ValidationError("limits and delays must not be negative") }
        }

        func run() async throws {
            let store = try SendGridStore(directory: URL(fileURLWithPath: state), jobDelay: jobDelay)
            let faults = FaultSettings(failRate: failRate, latency: .milliseconds(latency), dropRate: dropConnections)
            let limit = rateLimit > 0 ? rateLimit : 1_000_000
            let gate = RequestGate(faults: faults, limits: RateLimits(limits: ["ANY /all": limit], window: 60),
                                   seed: seed ?? UInt64.random(in: .min ... .max))
            let handler = SendGridHandler(apiKey: apiKey, store: store, gate: gate, faults: faults)
            let server = HTTPServer(address: try .inet(ip4: "127.0.0.1", port: UInt16(port)), timeout: 60,
                                    logger: .disabled, handler: handler)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await server.run() }
                try await server.waitUntilListening(timeout: 10)
                guard case .ip4(_, let boundPort)? = await server.listeningAddress else {
                    throw ValidationError("could not read the listening port")
                }
                // write(2) directly: a piped stdout is block-buffered and the line must arrive now.
                FileHandle.standardOutput.write(Data("listening on 127.0.0.1:\(boundPort)\n".utf8))
                group.addTask {
                    // Jobs complete on time even when nobody polls.
                    while !Task.isCancelled {
                        try await Task.sleep(for: .milliseconds(100))
                        try? await store.advance()
                    }
                }
                try await group.next()
                group.cancelAll()
            }
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
