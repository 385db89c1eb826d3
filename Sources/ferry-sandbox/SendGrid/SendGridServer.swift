import FlyingFox
import FlyingSocks
import Foundation

/// The SendGrid-compatible HTTP handler: Bearer check, faults, rate-limit headers, routes.
struct SendGridHandler: HTTPHandler {
    let apiKey: String
    let store: SendGridStore
    let gate: RequestGate
    let faults: FaultSettings

    func handleRequest(_ request: HTTPRequest) async throws -> HTTPResponse {
        if faults.latency > .zero { try await Task.sleep(for: faults.latency) }
        let rate = await gate.count(method: "ANY", endpoint: "all", now: Date())
        var headers: HTTPHeaders = [:]
        headers[HTTPHeader("X-RateLimit-Limit")] = String(rate.limit)
        headers[HTTPHeader("X-RateLimit-Remaining")] = String(rate.remaining)
        headers[HTTPHeader("X-RateLimit-Reset")] = String(rate.reset)
        // Authentication comes before faults and limits, as at SendGrid's edge.
        let auth = request.headers[.authorization] ?? ""
        guard auth.hasPrefix("Bearer ") else {
            return json(401, SendGridAPIError(401, "authorization required").body, headers: headers)
        }
        guard auth.dropFirst("Bearer ".count) == apiKey else {
            return json(401, SendGridAPIError(401, "The provided authorization grant is invalid, expired, or revoked").body, headers: headers)
        }
        if rate.over { return json(429, SendGridAPIError(429, "too many requests").body, headers: headers) }
        switch await gate.nextFault() {
        case .fail: return json(500, SendGridAPIError(500, "internal server error").body, headers: headers)
        case .drop:
            let body = Array(#"{"result":[{"id":"dropped"#.utf8)
            return HTTPResponse(statusCode: .ok, headers: [.contentType: "application/json", .contentLength: "4096"],
                                body: HTTPBodySequence(from: DroppedBody(prefix: body), count: 4096))
        case .none: break
        }
        do {
            let parts = request.path.split(separator: "/")
            if request.method == .GET, parts.count == 6, parts[3] == "imports", parts[5] == "errors" {
                headers[.contentType] = "text/csv"
                return HTTPResponse(statusCode: .ok, headers: headers, body: Data(try await store.errorsFile(id: String(parts[4])).utf8))
            }
            let (status, body) = try await route(request)
            return json(status, body, headers: headers)
        } catch let error as SendGridAPIError {
            return json(error.status, error.body, headers: headers)
        }
    }

    private func route(_ request: HTTPRequest) async throws -> (Int, JSON) {
        let method = request.method.rawValue
        let parts = request.path.split(separator: "/").map(String.init)
        guard parts.count >= 3, parts[0] == "v3", parts[1] == "marketing" else {
            throw SendGridAPIError(404, "not found: \(request.path)")
        }
        let rest = Array(parts.dropFirst(2))
        func body() async throws -> JSON {
            let data = try await request.bodyData
            guard data.count <= SendGridStore.maxBytes else {
                throw SendGridAPIError(413, "request body is larger than 6 MB")
            }
            guard let type = request.headers[.contentType], type.hasPrefix("application/json") else {
                throw SendGridAPIError(415, "Content-Type must be application/json")
            }
            guard let parsed = JSONBytes.parse(data) else {
                throw SendGridAPIError(400, "request body is not valid JSON")
            }
            return parsed
        }
        switch (method, rest.count, rest.first ?? "") {
        case ("GET", 1, "field_definitions"): return (200, await store.fieldDefinitions())
        case ("POST", 1, "field_definitions"): return (200, try await store.createField(try await body()))
        case ("GET", 1, "lists"): return (200, await store.lists())
        case ("POST", 1, "lists"): return (201, try await store.createList(try await body()))
        case ("PUT", 1, "contacts"): return (202, try await store.upsert(try await body()))
        case ("GET", 3, "contacts") where rest[1] == "imports": return (200, try await store.job(id: rest[2]))
        case ("GET", 2, "segments") where rest[1] == "2.0": return (200, await store.segments())
        case ("POST", 2, "segments") where rest[1] == "2.0": return (201, try await store.createSegment(try await body()))
        case ("GET", 3, "segments") where rest[1] == "2.0": return (200, try await store.segment(id: rest[2]))
        case ("PATCH", 3, "segments") where rest[1] == "2.0": return (200, try await store.updateSegment(id: rest[2], try await body()))
        default: throw SendGridAPIError(404, "no route for \(method) \(request.path)")
        }
    }

    private func json(_ status: Int, _ body: JSON, headers: HTTPHeaders) -> HTTPResponse {
        var headers = headers
        headers[.contentType] = "application/json"
        let phrase = [200: "OK", 201: "Created", 202: "Accepted", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
                      413: "Payload Too Large", 415: "Unsupported Media Type", 429: "Too Many Requests",
                      500: "Internal Server Error"][status] ?? "Status"
        return HTTPResponse(statusCode: HTTPStatusCode(status, phrase: phrase), headers: headers, body: Data(body.text().utf8))
    }
}
