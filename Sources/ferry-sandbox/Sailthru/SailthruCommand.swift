import ArgumentParser
import FlyingFox
import Foundation

/// `ferry-sandbox sailthru`: a local Sailthru-compatible API server, and `dump` of its state.
struct SailthruCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sailthru",
        abstract: "A local Sailthru-compatible API (/user, /list, /job) that checks signatures.",
        subcommands: [Serve.self, Dump.self],
        defaultSubcommand: Serve.self)

    /// Runs the server until killed.
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "serve", abstract: "Run the server (the default).")

        @OptionGroup var server: ServerOptions
        @Option(help: "The API key clients must send.") var apiKey: String
        @Option(help: "The shared secret signatures are checked with.") var secret: String
        @Option(help: "Directory for the state (JSON files).") var state: String
        @Option(help: "Seconds a job takes from pending to completed.") var jobDelay: Double = 2
        @Option(help: "Seconds an export URL stays valid after the job completes.") var exportTTL: Double = 7200
        @Option(help: "The first N exports expire as soon as they complete.") var expireExports: Int = 0
        @Option(help: "The first N API requests fail with HTTP 500.") var failFirst: Int = 0
        @Option(help: "The first N API requests drop their connection mid-body.") var dropFirst: Int = 0
        @Option(help: "JSON file with lists and users to start from (used when the state is empty).") var seedFile: String?
        @Option(help: "A rate limit, e.g. 'GET /user=300' (per window); repeatable.") var rateLimit: [String] = []
        @Option(help: "Rate-limit window in seconds (Sailthru: 60).") var rateWindow: Int = 60
        @Flag(name: .customLong("errors-with-200"), help: "Send error bodies with HTTP 200, as Sailthru sometimes does.") var errorsWith200 = false

        func validate() throws {
            guard rateWindow > 0 else { throw ValidationError("--rate-window must be positive") }
            _ = try parsedLimits()
        }

        private func parsedLimits() throws -> [String: Int] {
            var limits: [String: Int] = [:]
            for spec in rateLimit {
                let parts = spec.split(separator: "=")
                guard parts.count == 2, let value = Int(parts[1]), value >= 0,
                      parts[0].split(separator: " ").count == 2 else {
                    throw ValidationError("bad --rate-limit '\(spec)': expected 'METHOD /endpoint=N'")
                }
                limits[String(parts[0]).normalizedRoute()] = value
            }
            return limits
        }

        func run() async throws {
            let store = try SailthruStore(
                directory: URL(fileURLWithPath: state),
                settings: JobSettings(delay: jobDelay, exportTTL: exportTTL, expireFirstExports: expireExports))
            if let seedFile, await store.isEmpty {
                let data = try Data(contentsOf: URL(fileURLWithPath: seedFile))
                try await store.seed(JSONDecoder().decode(SeedFile.self, from: data))
            }
            let faults = FaultSettings(failRate: server.failRate, latency: .milliseconds(server.latency), dropRate: server.dropConnections,
                                       failFirst: failFirst, dropFirst: dropFirst, errorsWith200: errorsWith200)
            let gate = RequestGate(faults: faults, limits: RateLimits(limits: try parsedLimits(), window: rateWindow), seed: server.faultSeed)
            let address = ListeningAddress()
            let handler = SailthruHandler(apiKey: apiKey, secret: secret, store: store, gate: gate, faults: faults,
                                          baseURL: { await address.baseURL })
            try await serve(try server.makeServer(handler: handler, platform: .sailthru), onListening: { await address.set("http://127.0.0.1:\($0)") }) {
                try await store.advance()
            }
        }
    }

    /// Prints the users and lists of a state directory as JSON.
    struct Dump: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "dump", abstract: "Print users and lists as JSON.")

        @Option(help: "The server's state directory.") var state: String

        func run() async throws {
            let loaded = try SailthruStore.load(from: URL(fileURLWithPath: state))
            print(SailthruStore.dump(loaded).text(pretty: true))
        }
    }
}

/// The server's base URL, known once it listens.
actor ListeningAddress {
    private(set) var baseURL = "http://127.0.0.1"
    func set(_ url: String) { baseURL = url }
}

private extension String {
    /// "get /User" → "GET /user": methods uppercase, endpoints lowercase.
    func normalizedRoute() -> String {
        let parts = split(separator: " ", maxSplits: 1)
        guard parts.count == 2 else { return self }
        return "\(parts[0].uppercased()) \(parts[1].lowercased())"
    }
}
