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
    @Option(help: "Fraction of API requests that start a 429 burst: every request answers 429 until the platform's reset time.")
    var throttleRate: Double = 0
    @Option(help: "Length of a 429 burst, in seconds.") var throttleSeconds: Double = 1

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535") }
        guard (0...1).contains(failRate), (0...1).contains(dropConnections) else {
            throw ValidationError("--fail-rate and --drop-connections are fractions in 0...1")
        }
        guard latency >= 0 else { throw ValidationError("--latency must not be negative") }
        guard (0...1).contains(throttleRate) else { throw ValidationError("--throttle-rate is a fraction in 0...1") }
        guard throttleSeconds > 0 else { throw ValidationError("--throttle-seconds must be positive") }
    }

    /// The seed the fault dice use.
    var faultSeed: UInt64 { seed ?? UInt64.random(in: .min ... .max) }

    /// A server on 127.0.0.1 at the chosen port, behind the shared front (request counter, 429 bursts).
    func makeServer(handler: some HTTPHandler, platform: ThrottlePlatform) throws -> HTTPServer {
        // Its own dice, derived from the seed, so adding bursts does not move the other faults.
        let front = SandboxFront(handler: handler, platform: platform,
                                 throttle: Throttle(rate: throttleRate, seconds: throttleSeconds, seed: faultSeed ^ 0x7468_726F_7474_6C65))
        return HTTPServer(address: try .inet(ip4: "127.0.0.1", port: UInt16(port)), timeout: 60, logger: .disabled, handler: front)
    }
}

/// How a platform says "too many requests", as the research notes describe it.
enum ThrottlePlatform: Sendable {
    /// HTTP 429, `{"error":43,...}`, `X-Rate-Limit-Reset` as a UNIX time (sailthru.md §5).
    case sailthru
    /// HTTP 429, `{"errors":[{"field":null,"message":"too many requests"}]}`, `X-RateLimit-Reset` as a UNIX time
    /// (mapp_sendgrid.md, SendGrid "Rate limits").
    case sendgrid
}

/// Counts API requests and starts 429 bursts with a seeded die.
actor Throttle {
    private let rate: Double
    private let seconds: Double
    private var rng: SplitMix64
    private var burstEnds: Date?
    private(set) var requests = 0
    private(set) var throttled = 0
    private(set) var bursts = 0
    private(set) var serverErrors = 0

    init(rate: Double, seconds: Double, seed: UInt64) {
        self.rate = rate
        self.seconds = seconds
        rng = SplitMix64(seed: seed)
    }

    /// Counts one request; returns the burst's reset time (a whole UNIX second) when it is to be refused.
    func admit(now: Date) -> Int? {
        requests += 1
        if let end = burstEnds, now < end {
            throttled += 1
            return Int(end.timeIntervalSince1970.rounded(.up))
        }
        burstEnds = nil
        guard rate > 0, rng.nextUnit() < rate else { return nil }
        // The burst lasts until a whole second, as the platforms' reset headers count in seconds.
        let end = Date(timeIntervalSince1970: (now.timeIntervalSince1970 + seconds).rounded(.up))
        burstEnds = end
        bursts += 1
        throttled += 1
        return Int(end.timeIntervalSince1970)
    }

    /// Counts an answer the platform handler gave with a 5xx status (its `--fail-rate` faults among them).
    func countServerError() { serverErrors += 1 }

    /// `{"requests":N,"throttled":N,"bursts":N,"server_errors":N}`.
    func report() -> String {
        #"{"requests":\#(requests),"throttled":\#(throttled),"bursts":\#(bursts),"server_errors":\#(serverErrors)}"#
    }
}

/// Sits in front of a platform handler: answers `GET /_sandbox/requests` (what tests watch to pick the
/// moment to kill a client) and refuses requests in a 429 burst the way the platform does.
struct SandboxFront<Handler: HTTPHandler>: HTTPHandler {
    let handler: Handler
    let platform: ThrottlePlatform
    let throttle: Throttle

    func handleRequest(_ request: HTTPRequest) async throws -> HTTPResponse {
        if request.path == "/_sandbox/requests" {
            return HTTPResponse(statusCode: .ok, headers: [.contentType: "application/json"], body: Data(await throttle.report().utf8))
        }
        // Test helpers and Sailthru's export file downloads are not API calls: never counted or refused.
        if request.path.hasPrefix("/_") { return try await handler.handleRequest(request) }
        guard let reset = await throttle.admit(now: Date()) else {
            let response = try await handler.handleRequest(request)
            if response.statusCode.code >= 500 { await throttle.countServerError() }
            return response
        }
        var headers: HTTPHeaders = [.contentType: "application/json"]
        let body: String
        switch platform {
        case .sailthru:
            headers[HTTPHeader("X-Rate-Limit-Limit")] = "0"
            headers[HTTPHeader("X-Rate-Limit-Remaining")] = "0"
            headers[HTTPHeader("X-Rate-Limit-Reset")] = String(reset)
            body = #"{"error":43,"errormsg":"Too many \#(request.method.rawValue) requests this minute to \#(request.path) API"}"#
        case .sendgrid:
            headers[HTTPHeader("X-RateLimit-Limit")] = "0"
            headers[HTTPHeader("X-RateLimit-Remaining")] = "0"
            headers[HTTPHeader("X-RateLimit-Reset")] = String(reset)
            body = #"{"errors":[{"field":null,"message":"too many requests"}]}"#
        }
        _ = try? await request.bodyData  // read the upload so the client sees the answer, not a reset
        return HTTPResponse(statusCode: HTTPStatusCode(429, phrase: "Too Many Requests"), headers: headers, body: Data(body.utf8))
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
        disableNagle(onListeningPort: boundPort)
        await onListening(Int(boundPort))
        // write(2) directly: a piped stdout is block-buffered and the line must arrive now.
        FileHandle.standardOutput.write(Data("listening on 127.0.0.1:\(boundPort)\n".utf8))
        group.addTask {
            while !Task.isCancelled {
                try await Task.sleep(for: .milliseconds(100))
                do {
                    try await tick()
                } catch {
                    // Jobs that cannot advance (a full disk under the journal) must be visible to whoever runs the sandbox.
                    FileHandle.standardError.write(Data("sandbox: background work failed: \(error)\n".utf8))
                }
            }
        }
        try await group.next()
        group.cancelAll()
    }
}

/// Sets TCP_NODELAY on the server's listening socket, which the sockets it accepts inherit (Linux copies it).
///
/// FlyingFox writes a response's head and body in two writes. With Nagle's algorithm the body waits for
/// the client to acknowledge the head, and the client delays that acknowledgement by up to 40 ms: every
/// small reply took ~40 ms on loopback (the `method: user` benchmark was capped near 8 / 45 ms = 176
/// calls/s). FlyingFox has no option for it, so the listening socket is found by its port among this
/// process's descriptors. Best effort: a failure only costs speed.
func disableNagle(onListeningPort port: UInt16) {
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return }
    for name in names {
        guard let fd = Int32(name) else { continue }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & 0o170000 == 0o140000 else { continue }
        var listening: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) == 0, listening != 0 else { continue }
        var address = sockaddr_in()
        var addressLength = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &addressLength) }
        }
        guard named == 0, address.sin_family == sa_family_t(AF_INET), UInt16(bigEndian: address.sin_port) == port else { continue }
        var on: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
    }
}
