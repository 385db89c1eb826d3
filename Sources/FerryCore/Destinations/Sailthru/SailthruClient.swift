import Foundation

/// Sailthru's REST API in JSON mode (`api_key`, `format=json`, `json`, `sig`) over an `HTTPTransport`.
public struct SailthruClient: SailthruAPI {
    /// Credentials, endpoint and polling behaviour.
    public struct Configuration: Sendable {
        public var apiKey: String
        public var apiSecret: String
        /// e.g. `https://api.sailthru.com` (no trailing slash needed).
        public var baseURL: String
        /// First wait between job polls; grows ×1.5 up to `maxPollInterval`.
        public var initialPollInterval: Duration
        public var maxPollInterval: Duration
        /// Give up waiting for a job after this long.
        public var jobTimeout: Duration
        /// How many times an expired export is requested again.
        public var exportRetries: Int

        public init(apiKey: String, apiSecret: String, baseURL: String = "https://api.sailthru.com",
                    initialPollInterval: Duration = .seconds(2), maxPollInterval: Duration = .seconds(60),
                    jobTimeout: Duration = .seconds(3 * 3600), exportRetries: Int = 2) {
            self.apiKey = apiKey
            self.apiSecret = apiSecret
            self.baseURL = baseURL
            self.initialPollInterval = initialPollInterval
            self.maxPollInterval = maxPollInterval
            self.jobTimeout = jobTimeout
            self.exportRetries = exportRetries
        }
    }

    public let configuration: Configuration
    private let transport: any HTTPTransport
    private let sleep: @Sendable (Duration) async throws -> Void

    /// `sleep` is injectable so job-polling tests do not wait.
    public init(configuration: Configuration, transport: any HTTPTransport,
                sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) }) {
        self.configuration = configuration
        self.transport = transport
        self.sleep = sleep
    }

    // MARK: - Calls

    public func user(id: String, key: String = "email") async throws -> SailthruUser {
        let reply = try await call(.get, "user", ["id": .string(id), "key": .string(key)])
        return SailthruUser(json: reply)
    }

    public func saveUser(_ update: SailthruUserUpdate) async throws {
        _ = try await call(.post, "user", update.json)
    }

    public func deleteUser(id: String, key: String = "email") async throws {
        _ = try await call(.delete, "user", ["id": .string(id), "key": .string(key)])
    }

    public func list(named name: String) async throws -> SailthruList {
        let reply = try await call(.get, "list", ["list": .string(name)])
        guard let list = SailthruList(json: reply) else { throw invalid("GET /list", "no list name in reply") }
        return list
    }

    public func lists(primaryOnly: Bool = false) async throws -> [SailthruList] {
        let reply = try await call(.get, "list", primaryOnly ? ["primary": 1] : [:])
        return (reply["lists"]?.arrayValue ?? []).compactMap { $0.objectValue.flatMap(SailthruList.init(json:)) }
    }

    public func saveList(_ list: SailthruListDefinition) async throws -> SailthruList {
        var object: [String: JSONValue] = ["list": .string(list.name)]
        if let primary = list.primary { object["primary"] = .number(primary ? 1 : 0) }
        if let type = list.type { object["type"] = .string(type.rawValue) }
        if let query = list.query { object["query"] = query }
        let reply = try await call(.post, "list", .object(object))
        return SailthruList(json: reply) ?? SailthruList(name: list.name, type: list.type, isPrimary: list.primary)
    }

    public func deleteList(named name: String) async throws {
        _ = try await call(.delete, "list", ["list": .string(name)])
    }

    public func startUpdateJob(file: URL, update: [String: JSONValue]? = nil) async throws -> SailthruJob {
        var object: [String: JSONValue] = ["job": "update"]
        if let update { object["update"] = .object(update) }
        return try await startJob(.object(object), file: file, contentType: "application/x-ndjson")
    }

    public func startImportJob(list: String, file: URL) async throws -> SailthruJob {
        try await startJob(["job": "import", "list": .string(list)], file: file, contentType: "text/csv")
    }

    public func startListExport(list: String, vars: [String] = []) async throws -> SailthruJob {
        var object: [String: JSONValue] = ["job": "export_list_data", "list": .string(list)]
        // The parameter's name is unconfirmed (research notes §4.4); send both.
        if !vars.isEmpty {
            let fields = JSONValue.object(Dictionary(uniqueKeysWithValues: vars.map { ($0, JSONValue.number(1)) }))
            object["vars"] = fields
            object["fields"] = ["vars": fields]
        }
        return try await startJob(.object(object), file: nil, contentType: nil)
    }

    public func job(id: String) async throws -> SailthruJob {
        let reply = try await call(.get, "job", ["job_id": .string(id)])
        guard let job = SailthruJob(json: reply) else { throw invalid("GET /job", "no job_id in reply") }
        return job
    }

    public func waitForJob(id: String) async throws -> SailthruJob {
        var interval = configuration.initialPollInterval
        var waited = Duration.zero
        while true {
            let job = try await job(id: id)
            switch job.status {
            case .completed: return job
            case .error:
                throw SailthruError(kind: .jobFailed, message: "job \(id) ended with status error", endpoint: "GET /job")
            default: break
            }
            if waited >= configuration.jobTimeout {
                throw SailthruError(kind: .jobFailed, message: "job \(id) still \(job.status) after \(waited)",
                                    endpoint: "GET /job")
            }
            try await sleep(interval)
            waited += interval
            interval = min(interval * 1.5, configuration.maxPollInterval)
        }
    }

    public func exportList(_ list: String, vars: [String], to file: URL, observer: (any DownloadObserver)?) async throws -> SailthruJob {
        var attempt = 0
        while true {
            let started = try await startListExport(list: list, vars: vars)
            let job = try await waitForJob(id: started.id)
            if !job.isExpired, let url = job.exportURL {
                do {
                    _ = try await transport.download(HTTPRequest(method: .get, url: url, secrets: secrets), to: file, observer: observer)
                    return job
                } catch let error as HTTPError {
                    // 403/404/410: expired between the poll and the fetch (S3 says 403); ask again below.
                    let expired = error.kind == .status && [403, 404, 410].contains(error.status ?? 0)
                    if !expired || attempt >= configuration.exportRetries {
                        throw transportError(error, endpoint: "GET export_url")
                    }
                }
            } else if attempt >= configuration.exportRetries {
                throw SailthruError(kind: .jobFailed, message: "export of list \(list) expired \(attempt + 1) times",
                                    endpoint: "POST /job")
            }
            attempt += 1
        }
    }

    // MARK: - Wire format

    private var secrets: [String] { [configuration.apiKey, configuration.apiSecret] }

    private func startJob(_ json: JSONValue, file: URL?, contentType: String?) async throws -> SailthruJob {
        let reply = try await call(.post, "job", json, file: file, fileContentType: contentType)
        guard let job = SailthruJob(json: reply) else { throw invalid("POST /job", "no job_id in reply") }
        return job
    }

    /// The four signed fields, in the order the official clients send them.
    func signedFields(_ json: JSONValue) -> [(String, String)] {
        let jsonText = json.serialized()
        let sig = SailthruSignature.sign(apiKey: configuration.apiKey, json: jsonText, secret: configuration.apiSecret)
        return [("api_key", configuration.apiKey), ("format", "json"), ("json", jsonText), ("sig", sig)]
    }

    private func call(_ method: HTTPMethod, _ endpoint: String, _ json: JSONValue, file: URL? = nil,
                      fileContentType: String? = nil) async throws -> [String: JSONValue] {
        let fields = signedFields(json)
        let sig = fields.last?.1 ?? ""
        let base = configuration.baseURL.hasSuffix("/") ? String(configuration.baseURL.dropLast()) : configuration.baseURL
        let url = "\(base)/\(endpoint)"
        let name = "\(method.rawValue) /\(endpoint)"
        var request: HTTPRequest
        switch method {
        case .get, .delete:
            // No body on GET: "Breaks some webservers" (Python client, commit 71d56d3).
            request = HTTPRequest(method: method, url: url + "?" + FormEncoding.encode(fields))
        default:
            if let file {
                var parts = fields.map { MultipartPart.text($0.0, $0.1) }
                parts.append(.file("file", path: file.path, contentType: fileContentType ?? "application/octet-stream"))
                request = HTTPRequest(method: method, url: url, body: .multipart(parts))
            } else {
                request = HTTPRequest(method: method, url: url, body: .form(fields))
            }
        }
        request.headers.append((name: "Accept", value: "application/json"))
        request.secrets = secrets + [sig]

        let status: Int
        let body: Data
        var transportFailure: HTTPError?
        do {
            let response = try await transport.send(request)
            status = response.status
            body = response.body
        } catch let error as HTTPError where error.kind == .status {
            status = error.status ?? 0
            body = Data((error.body ?? "").utf8)
            transportFailure = error
        } catch let error as HTTPError {
            throw transportError(error, endpoint: name)
        }

        guard let parsed = try? JSONValue.parse(body), let object = parsed.objectValue else {
            if let transportFailure { throw transportError(transportFailure, endpoint: name) }
            let snippet = Redactor(secrets: request.secrets).redact(String(decoding: body.prefix(200), as: UTF8.self))
            throw SailthruError(kind: .invalidResponse, message: "reply is not a JSON object: \(snippet)",
                                httpStatus: status, endpoint: name)
        }
        // Errors come with any status, 200 included (fides): the body decides.
        if let code = object["error"]?.numberValue {
            let message = Redactor(secrets: request.secrets).redact(object["errormsg"]?.scalarText ?? "error \(Int(code))")
            throw SailthruError.fromBody(code: Int(code), message: message, httpStatus: status, endpoint: name)
        }
        if let transportFailure { throw transportError(transportFailure, endpoint: name) }
        return object
    }

    private func transportError(_ error: HTTPError, endpoint: String) -> SailthruError {
        if error.kind == .status, error.status == 429 {
            return SailthruError(kind: .rateLimited, code: 43, message: "rate limited", httpStatus: 429,
                                 endpoint: endpoint, transport: error)
        }
        return SailthruError(kind: .transport, message: error.kind == .status ? "HTTP \(error.status ?? 0)" : error.kind.rawValue,
                             httpStatus: error.status, endpoint: endpoint, transport: error)
    }

    private func invalid(_ endpoint: String, _ message: String) -> SailthruError {
        SailthruError(kind: .invalidResponse, message: message, endpoint: endpoint)
    }
}
