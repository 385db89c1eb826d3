import ArgumentParser
import FlyingFox
import Foundation

/// Options every sandbox server takes: where it listens and which faults it injects.
struct ServerOptions: ParsableArguments {
    @Option(help: "Port on 127.0.0.1; 0 picks a free one.") var port: Int = 0
    @Option(help: "Fraction of API requests that fail with HTTP 500.") var failRate: Double = 0
    @Option(help: "Added latency per request, in milliseconds.") var latency: Int = 0
    @Option(help: "Fraction of API requests whose connection drops mid-body.") var dropConnections: Double = 0
    @Option(help: "Seed for the fault dice (random when absent).") var seed: UInt64?

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535") }
        guard (0...1).contains(failRate), (0...1).contains(dropConnections) else {
            throw ValidationError("--fail-rate and --drop-connections are fractions in 0...1")
        }
        guard latency >= 0 else { throw ValidationError("--latency must not be negative") }
    }

    /// The seed the fault dice use.
    var faultSeed: UInt64 { seed ?? UInt64.random(in: .min ... .max) }

    /// A server on 127.0.0.1 at the chosen port.
    func makeServer(handler: some HTTPHandler) throws -> HTTPServer {
        HTTPServer(address: try .inet(ip4: "127.0.0.1", port: UInt16(port)), timeout: 60, logger: .disabled, handler: handler)
    }
}

/// Runs `server` until cancelled: prints `listening on 127.0.0.1:PORT` once it listens (what tests and
/// scripts wait for), and calls `tick` every 100 ms so jobs complete on time even when nobody polls.
func serve(_ server: HTTPServer, onListening: @Sendable (Int) async -> Void = { _ in },
           tick: @escaping @Sendable () async throws -> Void) async throws {
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await server.run() }
        try await server.waitUntilListening(timeout: 10)
        guard case .ip4(_, let boundPort)? = await server.listeningAddress else {
            throw ValidationError("could not read the listening port")
        }
        await onListening(Int(boundPort))
        // write(2) directly: a piped stdout is block-buffered and the line must arrive now.
        FileHandle.standardOutput.write(Data("listening on 127.0.0.1:\(boundPort)\n".utf8))
        group.addTask {
            while !Task.isCancelled {
                try await Task.sleep(for: .milliseconds(100))
                try? await tick()
            }
        }
        try await group.next()
        group.cancelAll()
    }
}
