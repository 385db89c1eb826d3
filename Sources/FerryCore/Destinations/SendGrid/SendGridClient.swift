import Foundation

/// SendGrid's Marketing Campaigns v3 API (Bearer auth, JSON) over an `HTTPTransport`.
public struct SendGridClient: SendGridAPI {
    /// Credentials, endpoint and polling behaviour.
    public struct Configuration: Sendable {
        public var apiKey: String
        /// The environment variable the key came from, named (never the key) when it is rejected.
        public var apiKeyVariable: String?
        /// e.g. `https://api.sendgrid.com` (no trailing slash needed).
        public var baseURL: String
        /// First wait between job polls; grows ×1.5 up to `maxPollInterval`. Short, so a job that is done at once
        /// (small imports, the sandbox) is not waited on for long; the growth keeps long jobs to a few polls a minute.
        public var initialPollInterval: Duration
        public var maxPollInterval: Duration
        /// Give up waiting for an import job after this long.
        public var jobTimeout: Duration

        public init(apiKey: String, apiKeyVariable: String? = nil, baseURL: String = "https://api.sendgrid.com",
                    initialPollInterval: Duration = .milliseconds(100), maxPollInterval: Duration = .seconds(30),
                    jobTimeout: Duration = .seconds(3600)) {
            self.apiKey = apiKey
            self.apiKeyVariable = apiKeyVariable
            self.baseURL = baseURL
            self.initialPollInterval = initialPollInterval
            self.maxPollInterval = maxPollInterval
            self.jobTimeout = jobTimeout
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

    public func fieldDefinitions() async throws -> [SendGridFieldDefinition] {
        let path = "/v3/marketing/field_definitions"
        let reply = try await call(.get, path)
        let custom = (reply["custom_fields"]?.arrayValue ?? []).compactMap { Self.field($0, reserved: false) }
        let reserved = (reply["reserved_fields"]?.arrayValue ?? []).compactMap { Self.field($0, reserved: true) }
        return custom + reserved
    }

    public func createField(name: String, kind: SendGridFieldKind) async throws -> SendGridFieldDefinition {
        let path = "/v3/marketing/field_definitions"
        let reply = try await call(.post, path, ["name": .string(name), "field_type": .string(kind.rawValue)])
        guard let field = Self.field(reply, reserved: false) else { throw invalid("POST \(path)", "no field id in reply") }
        return field
    }

    public func lists() async throws -> [SendGridList] {
        var result: [SendGridList] = []
        var url: String? = "/v3/marketing/lists?page_size=1000"
        var pages = 0
        while let next = url, pages < 1000 {
            let reply = try await call(.get, next)
            for item in reply["result"]?.arrayValue ?? [] {
                guard let id = item["id"]?.stringValue, let name = item["name"]?.stringValue else { continue }
                result.append(SendGridList(id: id, name: name, contactCount: item["contact_count"]?.numberValue.map { Int($0) }))
            }
            // `_metadata.next` is an absolute URL; follow only its path and query, on our base URL.
            url = reply["_metadata"]?["next"]?.stringValue.flatMap(Self.pathAndQuery)
            pages += 1
        }
        return result
    }

    public func createList(name: String) async throws -> SendGridList {
        let path = "/v3/marketing/lists"
        let reply = try await call(.post, path, ["name": .string(name)])
        guard let id = reply["id"]?.stringValue else { throw invalid("POST \(path)", "no list id in reply") }
        return SendGridList(id: id, name: reply["name"]?.stringValue ?? name, contactCount: 0)
    }

    public func segments() async throws -> [SendGridSegment] {
        let reply = try await call(.get, "/v3/marketing/segments/2.0")
        return (reply["results"]?.arrayValue ?? []).compactMap(Self.segment)
    }

    public func createSegment(name: String, queryDSL: String) async throws -> SendGridSegment {
        let path = "/v3/marketing/segments/2.0"
        let reply = try await call(.post, path, ["name": .string(name), "query_dsl": .string(queryDSL)])
        guard let segment = Self.segment(reply) else { throw invalid("POST \(path)", "no segment id in reply") }
        return segment
    }

    public func updateSegment(id: String, queryDSL: String) async throws -> SendGridSegment {
        let path = "/v3/marketing/segments/2.0/\(FormEncoding.percentEncode(id))"
        let reply = try await call(.patch, path, ["query_dsl": .string(queryDSL)])
        guard let segment = Self.segment(reply) else { throw invalid("PATCH \(path)", "no segment id in reply") }
        return segment
    }

    public func upsertContacts(body: Data) async throws -> String {
        let path = "/v3/marketing/contacts"
        let reply = try await call(.put, path, body: body)
        guard let id = reply["job_id"]?.scalarText else { throw invalid("PUT \(path)", "no job_id in reply") }
        return id
    }

    public func importJob(id: String) async throws -> SendGridImportJob {
        let path = "/v3/marketing/contacts/imports/\(FormEncoding.percentEncode(id))"
        let reply = try await call(.get, path)
        guard let statusText = reply["status"]?.stringValue else { throw invalid("GET \(path)", "no status in reply") }
        guard let status = SendGridImportJob.Status(rawValue: statusText) else {
            throw invalid("GET \(path)", "unknown job status '\(statusText)'")
        }
        let results = reply["results"]
        func count(_ key: String) -> Int { results?[key]?.numberValue.map { Int($0) } ?? 0 }
        // SendGrid itself only links an errors file; the sandbox also lists rejected contacts inline.
        let errors = (results?["errors"]?.arrayValue ?? []).compactMap { entry -> SendGridImportJob.ContactError? in
            guard let message = entry["message"]?.scalarText else { return nil }
            return SendGridImportJob.ContactError(email: entry["email"]?.stringValue, message: message)
        }
        return SendGridImportJob(id: id, status: status, requestedCount: count("requested_count"),
                                 createdCount: count("created_count"), updatedCount: count("updated_count"),
                                 erroredCount: count("errored_count"), errorsURL: results?["errors_url"]?.stringValue,
                                 errors: errors)
    }

    public func waitForImport(id: String) async throws -> SendGridImportJob {
        var interval = configuration.initialPollInterval
        var waited = Duration.zero
        while true {
            let job = try await importJob(id: id)
            if job.isFinished { return job }
            if waited >= configuration.jobTimeout {
                throw SendGridError(kind: .jobFailed, message: "import job \(id) still pending after \(waited)",
                                    endpoint: "GET /v3/marketing/contacts/imports/\(id)")
            }
            try await sleep(interval)
            waited += interval
            interval = min(interval * 1.5, configuration.maxPollInterval)
        }
    }

    public func importErrors(of job: SendGridImportJob) async throws -> [SendGridImportJob.ContactError] {
        guard job.errors.isEmpty, job.erroredCount > 0, let link = job.errorsURL else { return job.errors }
        let base = configuration.baseURL.hasSuffix("/") ? String(configuration.baseURL.dropLast()) : configuration.baseURL
        let url = link.hasPrefix("/") ? base + link : link
        // The key goes only to SendGrid's own host; an errors file elsewhere is a pre-signed download.
        let sameHost = URLComponents(string: url)?.host == URLComponents(string: base)?.host
        var request = HTTPRequest(method: .get, url: url, secrets: [configuration.apiKey])
        if sameHost { request.headers.append((name: "Authorization", value: "Bearer \(configuration.apiKey)")) }
        let response: HTTPResponse
        do {
            response = try await transport.send(request)
        } catch let error as HTTPError {
            throw SendGridError(kind: .transport, message: "errors file: \(error.kind.rawValue)", httpStatus: error.status,
                                endpoint: "GET errors_url", transport: error)
        }
        return Self.parseErrorsFile(String(decoding: response.body, as: UTF8.self))
    }

    /// Reads an errors CSV: the email from a column named like `email`, the reason from one like `error`/`message`/`reason`.
    static func parseErrorsFile(_ text: String) -> [SendGridImportJob.ContactError] {
        var rows = CSVLite.rows(text)
        guard !rows.isEmpty else { return [] }
        let header = rows.removeFirst().map { $0.lowercased() }
        let emailColumn = header.firstIndex { $0.contains("email") }
        let reasonColumn = header.firstIndex { $0.contains("error") || $0.contains("message") || $0.contains("reason") }
        return rows.filter { !($0.count == 1 && $0[0].isEmpty) }.map { row in
            let email = emailColumn.flatMap { $0 < row.count ? row[$0] : nil }
            let reason = reasonColumn.flatMap { $0 < row.count ? row[$0] : nil } ?? row.joined(separator: ",")
            return SendGridImportJob.ContactError(email: email, message: reason.isEmpty ? "rejected" : reason)
        }
    }

    // MARK: - Wire format

    private static func field(_ json: JSONValue, reserved: Bool) -> SendGridFieldDefinition? {
        guard let id = json["id"]?.scalarText, let name = json["name"]?.stringValue else { return nil }
        return SendGridFieldDefinition(id: id, name: name, fieldType: json["field_type"]?.stringValue ?? "Text",
                                       isReserved: reserved, isReadOnly: json["read_only"]?.boolValue ?? false)
    }

    private static func segment(_ json: JSONValue) -> SendGridSegment? {
        guard let id = json["id"]?.stringValue, let name = json["name"]?.stringValue else { return nil }
        return SendGridSegment(id: id, name: name, queryDSL: json["query_dsl"]?.stringValue ?? "",
                               contactsCount: json["contacts_count"]?.numberValue.map { Int($0) })
    }

    static func pathAndQuery(_ url: String) -> String? {
        guard let components = URLComponents(string: url), !components.path.isEmpty else { return nil }
        return components.percentEncodedPath + (components.percentEncodedQuery.map { "?\($0)" } ?? "")
    }

    private func call(_ method: HTTPMethod, _ path: String, _ json: JSONValue) async throws -> JSONValue {
        try await call(method, path, body: Data(json.serialized().utf8))
    }

    private func call(_ method: HTTPMethod, _ path: String, body: Data? = nil) async throws -> JSONValue {
        let base = configuration.baseURL.hasSuffix("/") ? String(configuration.baseURL.dropLast()) : configuration.baseURL
        let endpoint = "\(method.rawValue) \(path.split(separator: "?").first.map(String.init) ?? path)"
        var request = HTTPRequest(method: method, url: base + path,
                                  headers: [(name: "Authorization", value: "Bearer \(configuration.apiKey)"),
                                            (name: "Accept", value: "application/json")],
                                  secrets: [configuration.apiKey])
        if let body { request.body = .bytes(body, contentType: "application/json") }
        let redactor = Redactor(secrets: [configuration.apiKey])
        let response: HTTPResponse
        do {
            response = try await transport.send(request)
        } catch let error as HTTPError where error.kind == .status {
            var mapped = SendGridError.fromResponse(status: error.status ?? 0, body: Data((error.body ?? "").utf8),
                                                    endpoint: endpoint, redactor: redactor,
                                                    keyVariable: configuration.apiKeyVariable)
            mapped.transport = error
            throw mapped
        } catch let error as HTTPError {
            throw SendGridError(kind: .transport, message: error.kind.rawValue, httpStatus: error.status,
                                endpoint: endpoint, transport: error)
        }
        if response.body.isEmpty { return .object([:]) }
        guard let parsed = try? JSONValue.parse(response.body) else {
            let snippet = redactor.redact(String(decoding: response.body.prefix(200), as: UTF8.self))
            throw SendGridError(kind: .invalidResponse, message: "reply is not JSON: \(snippet)",
                                httpStatus: response.status, endpoint: endpoint)
        }
        return parsed
    }

    private func invalid(_ endpoint: String, _ message: String) -> SendGridError {
        SendGridError(kind: .invalidResponse, message: message, endpoint: endpoint)
    }
}

/// Splits contacts into `PUT /v3/marketing/contacts` bodies within SendGrid's limits, measuring the encoded JSON.
public struct SendGridBatcher: Sendable {
    /// One request body and the indices (into the input) of the contacts it carries.
    public struct Batch: Sendable, Hashable {
        public var indices: [Int]
        public var body: Data
    }

    /// SendGrid's documented caps: 30,000 contacts or 6 MB per request, whichever comes first.
    public static let maxContacts = 30_000
    public static let maxBytes = 6 * 1024 * 1024

    public var maxContacts: Int
    public var maxBytes: Int

    public init(maxContacts: Int = SendGridBatcher.maxContacts, maxBytes: Int = SendGridBatcher.maxBytes) {
        self.maxContacts = maxContacts
        self.maxBytes = maxBytes
    }

    /// The batches, in order, and the indices of contacts that alone exceed `maxBytes` (never sent).
    public func batches(_ contacts: [SendGridContact], listIDs: [String]) -> (batches: [Batch], oversized: [Int]) {
        var stream = stream(contacts.makeIterator(), listIDs: listIDs)
        var batches: [Batch] = []
        var oversized: [Int] = []
        while let batch = stream.next() {
            oversized += stream.takeOversized()
            batches.append(batch)
        }
        oversized += stream.takeOversized()
        return (batches, oversized)
    }

    /// The same batches, built one at a time as they are asked for: only one request body is held at once.
    public func stream<Contacts: IteratorProtocol>(_ contacts: Contacts, listIDs: [String]) -> Stream<Contacts>
    where Contacts.Element == SendGridContact {
        Stream(contacts: contacts, batcher: self, listIDs: listIDs)
    }

    /// Yields request bodies in order; contacts too large for any request are set aside (see `takeOversized`).
    public struct Stream<Contacts: IteratorProtocol>: IteratorProtocol where Contacts.Element == SendGridContact {
        private var contacts: Contacts
        private let maxContacts: Int
        private let maxBytes: Int
        private let head: [UInt8]
        private let tail: [UInt8]
        private var index = 0
        private var oversized: [Int] = []
        /// The contact read but not yet placed: it did not fit the batch just returned.
        private var carried: (index: Int, bytes: [UInt8])?

        init(contacts: Contacts, batcher: SendGridBatcher, listIDs: [String]) {
            self.contacts = contacts
            maxContacts = batcher.maxContacts
            maxBytes = batcher.maxBytes
            head = Array((#"{"contacts":["#).utf8)
            tail = Array(("]" + (listIDs.isEmpty ? "" : #","list_ids":"# + JSONValue.array(listIDs.map { .string($0) }).serialized()) + "}").utf8)
        }

        /// Indices (in input order) of contacts found too large so far; each is returned once.
        public mutating func takeOversized() -> [Int] {
            defer { oversized = [] }
            return oversized
        }

        public mutating func next() -> Batch? {
            let overhead = head.count + tail.count
            var indices: [Int] = []
            var body = head
            while true {
                let encoded: (index: Int, bytes: [UInt8])
                if let carried {
                    encoded = carried
                    self.carried = nil
                } else if let contact = contacts.next() {
                    // Written by hand, not by a JSONEncoder per contact: the same text, a hundred times faster.
                    encoded = (index, contact.json.compactJSONBytes)
                    index += 1
                } else {
                    break
                }
                if overhead + encoded.bytes.count > maxBytes {
                    oversized.append(encoded.index)
                    continue
                }
                let separator = indices.isEmpty ? 0 : 1
                if !indices.isEmpty, indices.count >= maxContacts || body.count + tail.count + separator + encoded.bytes.count > maxBytes {
                    carried = encoded
                    break
                }
                if !indices.isEmpty { body.append(UInt8(ascii: ",")) }
                body.append(contentsOf: encoded.bytes)
                indices.append(encoded.index)
            }
            guard !indices.isEmpty else { return nil }
            body.append(contentsOf: tail)
            return Batch(indices: indices, body: Data(body))
        }
    }
}

/// The membership field's value and the Segments 2.0 query that selects a segment's contacts by it.
public enum SendGridMembership {
    /// The ids of the configured segments a profile is in, in configured order, comma-separated.
    public static func value(configured: [String], memberOf: Set<String>) -> String {
        configured.filter { memberOf.contains($0) }.joined(separator: ",")
    }

    /// The segment's name in SendGrid (names are unique there; the prefix keeps ferry's apart from people's).
    public static func segmentName(_ segment: String) -> String { "ferry: \(segment)" }

    /// `SELECT … WHERE` the comma-separated `field` holds exactly `segment` (not just a substring:
    /// `vip` must not match `vip-gold`), as the four positions it can take.
    public static func queryDSL(field: String, segment: String) -> String {
        let s = segment.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'")
        return "SELECT contact_id, updated_at FROM contact_data WHERE \(field) = '\(s)' OR \(field) LIKE '\(s),%' "
            + "OR \(field) LIKE '%,\(s)' OR \(field) LIKE '%,\(s),%'"
    }
}

/// Just enough RFC 4180 for an errors file: quoted cells with doubled quotes, CRLF or LF lines.
enum CSVLite {
    static func rows(_ text: String) -> [[String]] {
        var rows: [[String]] = []
        var row: [String] = []
        var cell = ""
        var quoted = false
        var chars = Array(text)[...]
        while let c = chars.popFirst() {
            if quoted {
                if c == "\"" {
                    if chars.first == "\"" { chars.removeFirst(); cell.append("\"") } else { quoted = false }
                } else { cell.append(c) }
            } else if c == "\"" {
                quoted = true
            } else if c == "," {
                row.append(cell); cell = ""
            } else if c == "\n" || c == "\r\n" || c == "\r" {
                row.append(cell); cell = ""
                rows.append(row); row = []
            } else {
                cell.append(c)
            }
        }
        if !cell.isEmpty || !row.isEmpty { row.append(cell); rows.append(row) }
        return rows
    }
}
