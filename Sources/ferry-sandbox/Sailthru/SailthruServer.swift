import FlyingFox
import FlyingSocks
import Foundation

/// Fault injection: random failures, latency and dropped connections, reproducible with a seed.
struct FaultSettings: Sendable {
    var failRate: Double = 0
    var latency: Duration = .zero
    var dropRate: Double = 0
    /// The first N API requests answer 500 (deterministic retries in tests).
    var failFirst: Int = 0
    /// The first N API requests lose their connection mid-body.
    var dropFirst: Int = 0
    /// Send error bodies with HTTP 200, as Sailthru sometimes does.
    var errorsWith200 = false
}

/// Per-endpoint, per-method request limits in fixed windows, as Sailthru counts them.
struct RateLimits: Sendable {
    /// "GET /user" → requests per window.
    var limits: [String: Int]
    /// Window length in seconds (Sailthru: 60, reset at the top of the minute).
    var window: Int

    /// The limit for one endpoint and method: an explicit `--rate-limit`, else Sailthru's figures
    /// (UNCONFIRMED, research notes §5: per second 300 GET, 300 POST /user, 200 POST /send,
    /// 40 other POST and DELETE) scaled to the window.
    func limit(method: String, endpoint: String) -> Int {
        if let exact = limits["\(method) /\(endpoint)"] { return exact }
        let perSecond: Int = switch (method, endpoint) {
        case ("POST", "user"): 300
        case ("POST", "send"): 200
        case ("POST", _), ("DELETE", _): 40
        default: 300
        }
        return perSecond * window
    }
}

/// A response body that sends a few bytes and then fails, so the server closes the connection mid-body.
struct DroppedBody: AsyncBufferedSequence, Sendable {
    typealias Element = UInt8
    let prefix: [UInt8]

    struct Dropped: Error {}

    struct Iterator: AsyncBufferedIteratorProtocol {
        var remaining: [UInt8]
        mutating func next() async throws -> UInt8? {
            guard !remaining.isEmpty else { throw Dropped() }
            return remaining.removeFirst()
        }
        mutating func nextBuffer(suggested count: Int) async throws -> [UInt8]? {
            guard !remaining.isEmpty else { throw Dropped() }
            let chunk = Array(remaining.prefix(count))
            remaining.removeFirst(chunk.count)
            return chunk
        }
    }

    func makeAsyncIterator() -> Iterator { Iterator(remaining: prefix) }
}

/// The sandbox's mutable request-level state: fault dice and rate-limit windows.
actor RequestGate {
    private var rng: SplitMix64
    private var faults: FaultSettings
    private let limits: RateLimits
    private var windows: [String: (start: Int, count: Int)] = [:]

    init(faults: FaultSettings, limits: RateLimits, seed: UInt64) {
        self.faults = faults
        self.limits = limits
        rng = SplitMix64(seed: seed)
    }

    enum Fault { case none, fail, drop }

    func nextFault() -> Fault {
        if faults.failFirst > 0 { faults.failFirst -= 1; return .fail }
        if faults.dropFirst > 0 { faults.dropFirst -= 1; return .drop }
        if faults.failRate > 0, rng.nextUnit() < faults.failRate { return .fail }
        if faults.dropRate > 0, rng.nextUnit() < faults.dropRate { return .drop }
        return .none
    }

    /// Counts a request; returns the three header values and whether it is over the limit.
    func count(method: String, endpoint: String, now: Date) -> (limit: Int, remaining: Int, reset: Int, over: Bool) {
        let key = "\(method) /\(endpoint)"
        let limit = limits.limit(method: method, endpoint: endpoint)
        let second = Int(now.timeIntervalSince1970)
        let start = second - second % limits.window
        var window = windows[key] ?? (start, 0)
        if window.start != start { window = (start, 0) }
        window.count += 1
        windows[key] = window
        return (limit, max(0, limit - window.count), start + limits.window, window.count > limit)
    }
}

/// The Sailthru-compatible HTTP handler: parsing, signature check, limits, faults, routes.
struct SailthruHandler: HTTPHandler {
    let apiKey: String
    let secret: String
    let store: SailthruStore
    let gate: RequestGate
    let faults: FaultSettings
    let baseURL: @Sendable () async -> String

    func handleRequest(_ request: HTTPRequest) async throws -> HTTPResponse {
        let path = request.path
        if path.hasPrefix("/_sandbox/") { return try await testEndpoint(request) }
        if faults.latency > .zero { try await Task.sleep(for: faults.latency) }
        switch await gate.nextFault() {
        case .fail: return json(500, ["error": .int(9), "errormsg": "Internal error, please retry"], force: true)
        case .drop:
            let body = Array(#"{"keys":{"email":"dropped@example.com"},"vars":{"#.utf8)
            return HTTPResponse(statusCode: .ok, headers: [.contentType: "application/json", .contentLength: "4096"],
                                body: HTTPBodySequence(from: DroppedBody(prefix: body), count: 4096))
        case .none: break
        }
        if path.hasPrefix("/_export/") { return try await export(path) }
        let endpoint = String(path.dropFirst())
        guard ["user", "list", "job"].contains(endpoint) else {
            return json(404, ["error": .int(99), "errormsg": .string("Unknown endpoint: \(path)")])
        }
        do {
            return try await api(request, endpoint: endpoint)
        } catch let error as APIError {
            return json(error.status, ["error": .int(error.code), "errormsg": .string(error.message)])
        }
    }

    private func json(_ status: Int, _ body: JSON, headers: HTTPHeaders = [:], force: Bool = false) -> HTTPResponse {
        var headers = headers
        headers[.contentType] = "application/json"
        let code = status != 200 && faults.errorsWith200 && !force && status != 429 ? 200 : status
        return HTTPResponse(statusCode: HTTPStatusCode(code, phrase: Self.phrase(code)), headers: headers,
                            body: Data(body.text().utf8))
    }

    private static func phrase(_ code: Int) -> String {
        [200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
         405: "Method Not Allowed", 429: "Too Many Requests", 500: "Internal Server Error"][code] ?? "Status"
    }

    private func api(_ request: HTTPRequest, endpoint: String) async throws -> HTTPResponse {
        let method = request.method.rawValue
        // Every text parameter, in order; the `file` part is kept aside (and never signed).
        var params: [(String, String)] = []
        var file: (name: String?, data: Data)?
        switch method {
        case "GET", "DELETE":
            guard let query = WireFormat.decodeForm(request.target.query()) else {
                throw APIError(status: 400, code: 99, message: "Malformed query string")
            }
            params = query
        case "POST":
            let body = try await request.bodyData
            let type = request.headers[.contentType] ?? ""
            if type.lowercased().hasPrefix("multipart/form-data") {
                guard let parts = WireFormat.decodeMultipart(body, contentType: type) else {
                    throw APIError(status: 400, code: 99, message: "Malformed multipart body")
                }
                for part in parts {
                    if part.name == "file" { file = (part.filename, part.data) }
                    else { params.append((part.name, String(decoding: part.data, as: UTF8.self))) }
                }
            } else {
                guard let text = String(data: body, encoding: .utf8) else {
                    throw APIError(status: 400, code: 6, message: "Unable To Stream: request is not UTF-8")
                }
                guard let form = WireFormat.decodeForm(text) else { throw APIError(status: 400, code: 99, message: "Malformed form body") }
                params = form
            }
        default:
            throw APIError(status: 405, code: 1, message: "Unsupported HTTP method: \(method)")
        }
        let values = Dictionary(params, uniquingKeysWith: { _, last in last })
        guard let key = values["api_key"], !key.isEmpty else { throw APIError(status: 400, code: 2, message: "Missing required parameter: api_key") }
        guard key == apiKey else { throw APIError(status: 401, code: 3, message: "Invalid API key: \(key)") }

        let usage = await gate.count(method: method, endpoint: endpoint, now: Date())
        let headers: HTTPHeaders = [
            HTTPHeader("X-Rate-Limit-Limit"): String(usage.limit),
            HTTPHeader("X-Rate-Limit-Remaining"): String(usage.remaining),
            HTTPHeader("X-Rate-Limit-Reset"): String(usage.reset),
        ]
        if usage.over {
            return json(429, ["error": .int(43), "errormsg": .string("Too many \(method) requests this minute to /\(endpoint) API")],
                        headers: headers)
        }
        do {
            guard let sig = values["sig"], !sig.isEmpty else { throw APIError(status: 400, code: 2, message: "Missing required parameter: sig") }
            // Verify against the raw received strings: never re-serialise the JSON.
            let signed = params.filter { $0.0 != "sig" }.map(\.1)
            guard Digest.signature(secret: secret, values: signed) == sig else {
                throw APIError(status: 401, code: 5, message: "Signature hash does not match")
            }
            var args: [String: JSON]
            if let text = values["json"] {
                guard let object = JSON.parse(text)?.object else { throw APIError(status: 400, code: 99, message: "Invalid JSON in parameter json") }
                args = object
            } else {
                // Legacy mode: flat parameters only.
                args = values.filter { !["api_key", "sig", "format"].contains($0.key) }.mapValues(JSON.string)
            }
            args["file"] = nil  // a local path some clients leave in the JSON
            let reply = try await route(method: method, endpoint: endpoint, args: args, file: file)
            return json(200, reply, headers: headers)
        } catch let error as APIError {
            return json(error.status, ["error": .int(error.code), "errormsg": .string(error.message)], headers: headers)
        }
    }

    private func route(method: String, endpoint: String, args: [String: JSON], file: (name: String?, data: Data)?) async throws -> JSON {
        switch (method, endpoint) {
        case ("GET", "user"): try await store.getUser(args)
        case ("POST", "user"): try await store.postUser(args)
        case ("DELETE", "user"): try await store.deleteUser(args)
        case ("GET", "list"): try await store.getList(args)
        case ("POST", "list"): try await store.postList(args)
        case ("DELETE", "list"): try await store.deleteList(args)
        case ("POST", "job"): try await store.postJob(args, file: file)
        case ("GET", "job"): try await store.getJob(args, baseURL: await baseURL())
        default: throw APIError(status: 405, code: 1, message: "Unsupported HTTP method: \(method) /\(endpoint)")
        }
    }

    private func export(_ path: String) async throws -> HTTPResponse {
        let name = path.dropFirst("/_export/".count)
        guard name.hasSuffix(".csv"), let url = try await store.exportFile(job: String(name.dropLast(4))) else {
            return HTTPResponse(statusCode: .notFound, headers: [.contentType: "text/plain"], body: Data("export expired or unknown\n".utf8))
        }
        // FlyingFox reads and sends a file 4 KB at a time unless told otherwise: 36,000 reads and sends for a
        // million-row export. 1 MB pieces let the socket take as much as the client reads.
        return HTTPResponse(statusCode: .ok, headers: [.contentType: "text/csv"],
                            body: try HTTPBodySequence(file: url, suggestedBufferSize: 1 << 20))
    }

    /// Helpers for transport tests; not part of Sailthru's API.
    private func testEndpoint(_ request: HTTPRequest) async throws -> HTTPResponse {
        let query = Dictionary(WireFormat.decodeForm(request.target.query()) ?? [], uniquingKeysWith: { _, b in b })
        switch request.path {
        case "/_sandbox/bytes":
            let count = Int(query["n"] ?? "") ?? 0
            return HTTPResponse(statusCode: .ok, headers: [.contentType: "application/octet-stream"],
                                body: Data(repeating: UInt8(ascii: "x"), count: count))
        case "/_sandbox/chunked":
            // No Content-Length: the size limit must trip while streaming.
            let count = Int(query["n"] ?? "") ?? 0
            return HTTPResponse(statusCode: .ok, body: HTTPBodySequence(from: ByteRepeat(count: count)))
        case "/_sandbox/status":
            let code = Int(query["code"] ?? "") ?? 500
            var headers: HTTPHeaders = [.contentType: "text/plain"]
            if let retry = query["retry_after"] { headers[HTTPHeader("Retry-After")] = retry }
            return HTTPResponse(statusCode: HTTPStatusCode(code, phrase: Self.phrase(code)), headers: headers,
                                body: Data((query["body"] ?? "status \(code)").utf8))
        case "/_sandbox/slow":
            try await Task.sleep(for: .milliseconds(Int(query["ms"] ?? "") ?? 1000))
            return HTTPResponse(statusCode: .ok, body: Data("slow".utf8))
        case "/_sandbox/echo":
            let body = try await request.bodyData
            var reply: [String: JSON] = [
                "method": .string(request.method.rawValue), "query": .string(request.target.query()),
                "content_type": .string(request.headers[.contentType] ?? ""), "body_bytes": .int(body.count),
                "connection": .string(request.remoteAddress.map { "\($0)" } ?? ""),
            ]
            if let type = request.headers[.contentType], type.hasPrefix("multipart/form-data"),
               let parts = WireFormat.decodeMultipart(body, contentType: type) {
                reply["parts"] = .array(parts.map { part in
                    .object(["name": .string(part.name), "filename": part.filename.map(JSON.string) ?? .null,
                             "bytes": .int(part.data.count), "md5": .string(Digest.md5Hex(String(decoding: part.data, as: UTF8.self)))])
                })
            } else {
                reply["body"] = .string(String(decoding: body, as: UTF8.self))
            }
            return json(200, .object(reply))
        default:
            if request.path.hasPrefix("/_sandbox/html/") {
                return HTTPResponse(statusCode: .ok, headers: [.contentType: "text/html"],
                                    body: Data("<html><body>Service Unavailable</body></html>".utf8))
            }
            return HTTPResponse(statusCode: .notFound)
        }
    }
}

/// `count` bytes of `x`, streamed.
struct ByteRepeat: AsyncBufferedSequence, Sendable {
    typealias Element = UInt8
    let count: Int

    struct Iterator: AsyncBufferedIteratorProtocol {
        var remaining: Int
        mutating func next() async throws -> UInt8? {
            guard remaining > 0 else { return nil }
            remaining -= 1
            return UInt8(ascii: "x")
        }
        mutating func nextBuffer(suggested count: Int) async throws -> [UInt8]? {
            guard remaining > 0 else { return nil }
            let n = Swift.min(count, remaining)
            remaining -= n
            return [UInt8](repeating: UInt8(ascii: "x"), count: n)
        }
    }

    func makeAsyncIterator() -> Iterator { Iterator(remaining: count) }
}
