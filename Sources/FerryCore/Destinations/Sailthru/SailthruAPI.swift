import Foundation

/// The Sailthru calls ferry's goals use; `SailthruClient` implements it over `HTTPTransport`.
public protocol SailthruAPI: Sendable {
    /// GET /user: one user by `id` of kind `key` (email, sid, extid, …).
    func user(id: String, key: String) async throws -> SailthruUser
    /// POST /user: create or update (upsert by id + key).
    func saveUser(_ update: SailthruUserUpdate) async throws
    /// DELETE /user: removes a profile (privacy requests).
    func deleteUser(id: String, key: String) async throws
    /// GET /list: one list by name.
    func list(named name: String) async throws -> SailthruList
    /// GET /list with `{}`: every list (only primary ones when `primaryOnly`).
    func lists(primaryOnly: Bool) async throws -> [SailthruList]
    /// POST /list: create or modify a list.
    func saveList(_ list: SailthruListDefinition) async throws -> SailthruList
    /// DELETE /list.
    func deleteList(named name: String) async throws
    /// POST /job `update` with a JSON-lines file (one user object a line), streamed from disk.
    func startUpdateJob(file: URL, update: [String: JSONValue]?) async throws -> SailthruJob
    /// POST /job `import` of a CSV (first column `email`) into a natural list.
    func startImportJob(list: String, file: URL) async throws -> SailthruJob
    /// POST /job `export_list_data` for one list (optionally choosing var columns).
    func startListExport(list: String, vars: [String]) async throws -> SailthruJob
    /// GET /job: the job's current state.
    func job(id: String) async throws -> SailthruJob
    /// Polls GET /job with backoff until `completed` (throws `.jobFailed` on `error` or when out of time).
    func waitForJob(id: String) async throws -> SailthruJob
    /// Runs a list export to the end and streams its CSV into `file`, re-requesting an expired export; `observer` sees
    /// the CSV's bytes as they are written (``DownloadObserver``).
    func exportList(_ list: String, vars: [String], to file: URL, observer: (any DownloadObserver)?) async throws -> SailthruJob
}

extension SailthruAPI {
    /// `exportList(_:vars:to:observer:)` with no one watching.
    public func exportList(_ list: String, vars: [String] = [], to file: URL) async throws -> SailthruJob {
        try await exportList(list, vars: vars, to: file, observer: nil)
    }
}

/// A Sailthru user as GET /user returns it.
public struct SailthruUser: Sendable, Hashable {
    /// Key kind → value (`email`, `sid`, `extid`, …).
    public var keys: [String: String]
    public var vars: [String: JSONValue]
    /// List name → signup time (RFC 2822 text, as sent).
    public var lists: [String: String]
    public var optoutEmail: String?
    public var engagement: String?

    public init(keys: [String: String] = [:], vars: [String: JSONValue] = [:], lists: [String: String] = [:],
                optoutEmail: String? = nil, engagement: String? = nil) {
        self.keys = keys
        self.vars = vars
        self.lists = lists
        self.optoutEmail = optoutEmail
        self.engagement = engagement
    }

    init(json: [String: JSONValue]) {
        keys = (json["keys"]?.objectValue ?? [:]).compactMapValues(\.scalarText)
        vars = json["vars"]?.objectValue ?? [:]
        lists = (json["lists"]?.objectValue ?? [:]).compactMapValues(\.scalarText)
        optoutEmail = json["optout_email"]?.stringValue
        engagement = json["engagement"]?.stringValue
    }
}

/// The fields of a POST /user; nil fields are not sent (and so left unchanged).
public struct SailthruUserUpdate: Sendable, Hashable {
    public var id: String
    /// The kind of `id`; nil means Sailthru's default, `email`.
    public var key: String?
    /// New or changed keys, e.g. `["email": "new@x.com"]`.
    public var keys: [String: String]?
    public var vars: [String: JSONValue]?
    /// List name → true (add) / false (remove).
    public var lists: [String: Bool]?
    /// `optout_email`: none, all, blast or basic.
    public var optout: String?

    public init(id: String, key: String? = nil, keys: [String: String]? = nil, vars: [String: JSONValue]? = nil,
                lists: [String: Bool]? = nil, optout: String? = nil) {
        self.id = id
        self.key = key
        self.keys = keys
        self.vars = vars
        self.lists = lists
        self.optout = optout
    }

    /// The `json` object sent (also one line of an update-job file, with `id` + `key`).
    public var json: JSONValue {
        var object: [String: JSONValue] = ["id": .string(id)]
        if let key { object["key"] = .string(key) }
        if let keys { object["keys"] = .object(keys.mapValues(JSONValue.string)) }
        if let vars { object["vars"] = .object(vars) }
        if let lists { object["lists"] = .object(lists.mapValues { .number($0 ? 1 : 0) }) }
        if let optout { object["optout_email"] = .string(optout) }
        return .object(object)
    }
}

extension SailthruUserUpdate {
    /// The body of an update-job file: one compact JSON object a line.
    public static func jsonLines(_ updates: some Sequence<SailthruUserUpdate>) -> String {
        String(decoding: jsonLinesBytes(updates), as: UTF8.self)
    }

    /// The same lines as UTF-8 bytes, written straight into one buffer.
    public static func jsonLinesBytes(_ updates: some Sequence<SailthruUserUpdate>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(updates.underestimatedCount * 128)
        for update in updates {
            let start = out.count
            if !JSONValueText.append(update.json, to: &out) {
                out.removeSubrange(start...)
                out.append(contentsOf: "null".utf8)
            }
            out.append(UInt8(ascii: "\n"))
        }
        return out
    }
}

/// A Sailthru list type.
public enum SailthruListType: String, Sendable, Hashable {
    /// A natural list ("normal" in the API).
    case normal
    case smart
}

/// What POST /list sends.
public struct SailthruListDefinition: Sendable, Hashable {
    public var name: String
    public var primary: Bool?
    public var type: SailthruListType?
    /// A smart list's criteria, passed through as given.
    public var query: JSONValue?

    public init(name: String, primary: Bool? = nil, type: SailthruListType? = nil, query: JSONValue? = nil) {
        self.name = name
        self.primary = primary
        self.type = type
        self.query = query
    }
}

/// A list as GET /list returns it (one list, or an entry of all lists: `list` vs `name` keys).
public struct SailthruList: Sendable, Hashable {
    public var name: String
    public var id: String?
    public var type: SailthruListType?
    public var isPrimary: Bool?
    /// Members (`count` or `email_count`).
    public var count: Int?
    public var createTime: String?

    public init(name: String, id: String? = nil, type: SailthruListType? = nil, isPrimary: Bool? = nil,
                count: Int? = nil, createTime: String? = nil) {
        self.name = name
        self.id = id
        self.type = type
        self.isPrimary = isPrimary
        self.count = count
        self.createTime = createTime
    }

    init?(json: [String: JSONValue]) {
        guard let name = json["list"]?.stringValue ?? json["name"]?.stringValue else { return nil }
        self.name = name
        id = json["list_id"]?.scalarText
        type = json["type"]?.stringValue.flatMap(SailthruListType.init(rawValue:))
        isPrimary = json["primary"]?.boolValue ?? json["primary"]?.numberValue.map { $0 != 0 }
        count = (json["count"]?.numberValue ?? json["email_count"]?.numberValue).map { Int($0) }
        createTime = json["create_time"]?.stringValue
    }
}

/// A job's state.
public enum SailthruJobStatus: Sendable, Hashable {
    case pending, running, completed, error
    case other(String)

    init(_ text: String) {
        switch text {
        case "pending": self = .pending
        case "running": self = .running
        case "completed": self = .completed
        case "error": self = .error
        default: self = .other(text)
        }
    }
}

/// A job as POST/GET /job return it.
public struct SailthruJob: Sendable, Hashable {
    public var id: String
    public var name: String?
    public var status: SailthruJobStatus
    public var list: String?
    /// Where the export CSV can be fetched, while completed and not expired.
    public var exportURL: String?
    public var isExpired: Bool
    /// The whole reply, for fields not modelled here.
    public var raw: [String: JSONValue]

    init?(json: [String: JSONValue]) {
        guard let id = json["job_id"]?.scalarText else { return nil }
        self.id = id
        name = json["name"]?.stringValue
        status = SailthruJobStatus(json["status"]?.stringValue ?? "pending")
        list = json["list"]?.stringValue
        exportURL = json["export_url"]?.stringValue
        isExpired = json["expired"]?.boolValue ?? (json["expired"]?.numberValue.map { $0 != 0 } ?? false)
        raw = json
    }
}
