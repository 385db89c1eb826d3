import Foundation

/// A Sailthru user in the sandbox.
struct SandboxUser: Codable, Sendable {
    /// The profile id (Sailthru's `sid`).
    var id: String
    /// Key kind → value: `email` (lowercased), `extid`, …
    var keys: [String: String]
    var vars: [String: JSON]
    /// List name → signup time.
    var lists: [String: Date]
    var optout: String
    var created: Date
}

/// A list: natural (`normal`) or smart (members computed from `query`).
struct SandboxList: Codable, Sendable {
    var id: String
    var name: String
    var type: String
    var primary: Bool
    var created: Date
    /// Smart lists: `{"source_list": NAME?, "vars": {var: value, …}?}`; members match all given conditions.
    var query: JSON?
}

/// A background job.
struct SandboxJob: Codable, Sendable {
    var id: String
    var type: String
    var name: String
    var list: String?
    var created: Date
    /// The uploaded file, stored under `uploads/` in the state directory.
    var upload: String?
    var update: JSON?
    var vars: [String]?
    var signupDates: Bool
    var completed: Date?
    var exportFile: String?
    var forcedExpired: Bool
    var counts: [String: Int]
}

/// An API error as Sailthru sends it.
struct APIError: Error {
    var status: Int
    var code: Int
    var message: String
}

/// Everything that persists under `--state`.
struct SandboxState: Codable, Sendable {
    var users = UserTable()
    var lists: [String: SandboxList] = [:]
    var jobs: [String: SandboxJob] = [:]
    var nextID: Int = 1
}

/// Seed data: a few lists and users to start from.
struct SeedFile: Codable {
    struct List: Codable {
        var name: String
        var type: String?
        var primary: Bool?
        var query: JSON?
    }
    struct User: Codable {
        var email: String
        var extid: String?
        var vars: [String: JSON]?
        var lists: [String]?
        var optout: String?
    }
    var lists: [List]
    var users: [User]
}

/// Timing and fault settings of the job engine.
struct JobSettings: Sendable {
    var delay: TimeInterval
    var exportTTL: TimeInterval
    /// The first N exports report `expired` once done (to test re-requesting).
    var expireFirstExports: Int
}

/// One line of the Sailthru sandbox's journal: a user or list or job as it now is, or its removal.
struct SailthruJournalEntry: Codable {
    var next: Int
    var user: SandboxUser?
    var deletedUser: String?
    var list: SandboxList?
    var deletedList: String?
    var job: SandboxJob?

    /// Applies the change; replaying an entry twice gives the same state (the snapshot may already hold it).
    func apply(to state: inout SandboxState) {
        state.nextID = max(state.nextID, next)
        if let user { state.users[user.id] = user }
        if let deletedUser { state.users[deletedUser] = nil }
        if let list { state.lists[list.name] = list }
        if let deletedList { SailthruStore.removeList(deletedList, from: &state) }
        if let job { state.jobs[job.id] = job }
    }
}

extension SailthruJournalEntry {
    /// Appends `{"next":…,"user":{…}}` as `JSONEncoder` would write the entry (dates as seconds since 1970,
    /// keys in another order, which decoding ignores); false when a var holds a number JSON cannot write.
    static func appendUserLine(next: Int, user: SandboxUser, to out: inout [UInt8]) -> Bool {
        func date(_ date: Date) -> Bool {
            let seconds = date.timeIntervalSince1970
            guard seconds.isFinite else { return false }
            // Swift's shortest round-trip digits: JSONDecoder reads back the same Double.
            out.append(contentsOf: seconds.description.utf8)
            return true
        }
        out.append(contentsOf: #"{"next":"#.utf8)
        JSONBytes.appendInt(next, to: &out)
        out.append(contentsOf: #","user":{"id":"#.utf8)
        JSONBytes.appendString(user.id, to: &out)
        out.append(contentsOf: #","keys":"#.utf8)
        guard JSONBytes.write(.object(user.keys.mapValues(JSON.string)), to: &out) else { return false }
        out.append(contentsOf: #","vars":"#.utf8)
        guard JSONBytes.write(.object(user.vars), to: &out) else { return false }
        out.append(contentsOf: #","lists":{"#.utf8)
        for (i, name) in JSONBytes.sortedKeys(user.lists).enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            JSONBytes.appendString(name, to: &out)
            out.append(UInt8(ascii: ":"))
            guard date(user.lists[name]!) else { return false }
        }
        out.append(contentsOf: #"},"optout":"#.utf8)
        JSONBytes.appendString(user.optout, to: &out)
        out.append(contentsOf: #","created":"#.utf8)
        guard date(user.created) else { return false }
        out.append(contentsOf: "}}".utf8)
        return true
    }
}

/// The sandbox's data: users, lists and jobs. The snapshot (users.json, lists.json, jobs.json, counter.json)
/// is rewritten only at start; every change in between is one line of `journal.jsonl`.
actor SailthruStore {
    private(set) var state: SandboxState
    private let directory: URL
    private let settings: JobSettings
    private var exportsExpired = 0
    private var journal: Journal
    /// Key kind (not `sid`) → key value → sid, so lookups by email or extid do not scan every user.
    private var keyIndex: [String: [String: String]] = [:]

    init(directory: URL, settings: JobSettings) throws {
        self.directory = directory
        self.settings = settings
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("uploads"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("exports"), withIntermediateDirectories: true)
        let (loaded, replayed) = try Self.loadCounting(from: directory)
        state = loaded
        // Fold the journal into the snapshot (atomic renames) before emptying it: a crash in between
        // replays entries the snapshot already holds, which changes nothing.
        if replayed > 0 { try Self.writeSnapshot(loaded, to: directory) }
        journal = try Journal(directory: directory, truncate: true)
        var keyIndex: [String: [String: String]] = [:]
        for user in loaded.users.values {
            for (kind, value) in user.keys where kind != "sid" { keyIndex[kind, default: [:]][value] = user.id }
        }
        self.keyIndex = keyIndex
    }

    /// The state of a directory: the snapshot files with the journal replayed on top (reads only).
    static func load(from directory: URL) throws -> SandboxState {
        try loadCounting(from: directory).state
    }

    private static func loadCounting(from directory: URL) throws -> (state: SandboxState, replayed: Int) {
        var state = SandboxState()
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        func read<T: Decodable>(_ name: String, _ type: T.Type) throws -> T? {
            let url = directory.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: url.path) else { return nil }
            return try decoder.decode(T.self, from: Data(contentsOf: url))
        }
        state.users = try read("users.json", UserTable.self) ?? UserTable()
        state.lists = try read("lists.json", [String: SandboxList].self) ?? [:]
        state.jobs = try read("jobs.json", [String: SandboxJob].self) ?? [:]
        state.nextID = try read("counter.json", Int.self) ?? (state.users.count + state.lists.count + state.jobs.count + 1)
        var replayed = 0
        try Journal.replay(SailthruJournalEntry.self, in: directory) { entry in
            entry.apply(to: &state)
            replayed += 1
        }
        return (state, replayed)
    }

    /// Writes every snapshot file atomically (temp file + rename), so a killed sandbox never leaves half a file.
    private static func writeSnapshot(_ state: SandboxState, to directory: URL) throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .secondsSince1970
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        try encoder.encode(state.users).write(to: directory.appendingPathComponent("users.json"), options: .atomic)
        try encoder.encode(state.lists).write(to: directory.appendingPathComponent("lists.json"), options: .atomic)
        try encoder.encode(state.jobs).write(to: directory.appendingPathComponent("jobs.json"), options: .atomic)
        try encoder.encode(state.nextID).write(to: directory.appendingPathComponent("counter.json"), options: .atomic)
    }

    /// Writes the queued journal lines: called before a request's reply leaves the actor.
    private func commit() throws { try journal.flush() }

    private func record(_ entry: SailthruJournalEntry) throws { try journal.append(entry) }

    /// Stores a user as it now is: state, key index and journal.
    private func put(_ user: SandboxUser) throws {
        if let old = state.users[user.id] { unindex(old) }
        state.users[user.id] = user
        index(user)
        // The commonest journal line, written without Codable (it was a quarter of an update job's time).
        var line: [UInt8] = []
        line.reserveCapacity(256)
        if SailthruJournalEntry.appendUserLine(next: state.nextID, user: user, to: &line) {
            try journal.appendLine(line)
        } else {
            try record(SailthruJournalEntry(next: state.nextID, user: user))
        }
    }

    private func putList(_ list: SandboxList) throws {
        state.lists[list.name] = list
        try record(SailthruJournalEntry(next: state.nextID, list: list))
    }

    private func putJob(_ job: SandboxJob) throws {
        state.jobs[job.id] = job
        try record(SailthruJournalEntry(next: state.nextID, job: job))
    }

    private func index(_ user: SandboxUser) {
        for (kind, value) in user.keys where kind != "sid" { keyIndex[kind, default: [:]][value] = user.id }
    }

    private func unindex(_ user: SandboxUser) {
        for (kind, value) in user.keys where kind != "sid" && keyIndex[kind]?[value] == user.id { keyIndex[kind]?[value] = nil }
    }

    /// Removes a list and every membership in it (shared with journal replay).
    static func removeList(_ name: String, from state: inout SandboxState) {
        state.lists[name] = nil
        state.users.removeMemberships(of: name)
    }

    private func newID() -> String {
        defer { state.nextID += 1 }
        let time = Int(Date().timeIntervalSince1970) & 0xFFFFFF
        let id = Self.formatID(time: time, counter: state.nextID)
        assert(id == String(format: "5f%06x%016x", time, state.nextID), "formatID must spell what String(format:) does")
        return id
    }

    /// `String(format: "5f%06x%016x", time, counter)` (`%x` prints the low 32 bits), written by hand:
    /// Foundation's formatter was a tenth of an update job's time (one new sid per created user).
    static func formatID(time: Int, counter: Int) -> String {
        var bytes: [UInt8] = [UInt8(ascii: "5"), UInt8(ascii: "f")]
        bytes.reserveCapacity(24)
        func hex(_ value: UInt32, width: Int) {
            let digits = Array("0123456789abcdef".utf8)
            var text: [UInt8] = []
            var rest = value
            repeat {
                text.append(digits[Int(rest & 0xF)])
                rest >>= 4
            } while rest > 0
            if text.count < width { bytes.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: width - text.count)) }
            bytes.append(contentsOf: text.reversed())
        }
        hex(UInt32(truncatingIfNeeded: time), width: 6)
        hex(UInt32(truncatingIfNeeded: counter), width: 16)
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: - Seed

    /// True before any user or list exists: seed data goes only into a fresh state.
    var isEmpty: Bool { state.users.isEmpty && state.lists.isEmpty }

    func seed(_ file: SeedFile) throws {
        let now = Date()
        for list in file.lists where state.lists[list.name] == nil {
            try putList(SandboxList(id: newID(), name: list.name, type: list.type ?? "normal",
                                    primary: list.primary ?? false, created: now, query: list.query))
        }
        for seed in file.users {
            var user = findOrCreate(id: seed.email, key: "email", now: now)
            if let extid = seed.extid { user.keys["extid"] = extid }
            user.vars.merge(seed.vars ?? [:]) { _, new in new }
            for name in seed.lists ?? [] {
                try ensureNaturalList(name, now: now)
                user.lists[name] = now
            }
            user.optout = seed.optout ?? user.optout
            try put(user)
        }
        try commit()
    }

    // MARK: - Users

    /// `^[^@\s]+@[^@\s]+\.[^@\s]+$`, without a regex engine (it ran once per row of every job).
    static func isValidEmail(_ text: String) -> Bool {
        if let ascii = isValidASCIIEmail(text) {
            assert(ascii == isValidEmailScalars(text), "the ASCII reading must agree for \(text)")
            return ascii
        }
        return isValidEmailScalars(text)
    }

    private static func isValidEmailScalars(_ text: String) -> Bool {
        let scalars = Array(text.unicodeScalars)
        guard let at = scalars.firstIndex(of: "@"), at > 0, scalars[(at + 1)...].firstIndex(of: "@") == nil else { return false }
        guard !scalars.contains(where: { $0.properties.isWhitespace }) else { return false }
        let domain = scalars[(at + 1)...]
        guard domain.count >= 3 else { return false }
        return domain.dropFirst().dropLast().contains(".")
    }

    /// `isValidEmail` for ASCII text, over its bytes (nil for any other text): the same rule, where an ASCII
    /// scalar is whitespace when it is a space or a tab to carriage return.
    static func isValidASCIIEmail(_ text: String) -> Bool? {
        var at: Int?
        var count = 0
        var dotInside = false  // a "." in the domain that is neither its first nor its last character
        var lastDot = -1
        for byte in text.utf8 {
            guard byte < 0x80 else { return nil }
            if byte == 0x20 || (byte >= 0x09 && byte <= 0x0D) { return false }
            if byte == UInt8(ascii: "@") {
                if at != nil { return false }
                at = count
            } else if let at, byte == UInt8(ascii: "."), count > at + 1 {
                if lastDot >= 0 { dotInside = true }
                lastDot = count
            }
            count += 1
        }
        guard let at, at > 0, count - at - 1 >= 3 else { return false }
        // A dot counts unless it is the domain's last character.
        return dotInside || (lastDot >= 0 && lastDot < count - 1)
    }

    /// `^[A-Za-z_][A-Za-z0-9_]*$`.
    static func isValidVarName(_ name: String) -> Bool {
        var first = true
        for byte in name.utf8 {
            let letter = (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122) || byte == 95
            guard letter || (!first && byte >= 48 && byte <= 57) else { return false }
            first = false
        }
        return !first
    }

    private func find(id: String, key: String) -> SandboxUser? {
        switch key {
        case "sid": return state.users[id]
        case "email": return keyIndex["email"]?[id.lowercased()].flatMap { state.users[$0] }
        default: return keyIndex[key]?[id].flatMap { state.users[$0] }
        }
    }

    private func findOrCreate(id: String, key: String, now: Date) -> SandboxUser {
        if let user = find(id: id, key: key) { return user }
        let sid = newID()
        var keys = ["sid": sid]
        keys[key] = key == "email" ? id.lowercased() : id
        return SandboxUser(id: sid, keys: keys, vars: [:], lists: [:], optout: "none", created: now)
    }

    private func ensureNaturalList(_ name: String, now: Date) throws {
        if state.lists[name] == nil {
            try putList(SandboxList(id: newID(), name: name, type: "normal", primary: false, created: now, query: nil))
        }
    }

    func getUser(_ args: [String: JSON]) throws -> JSON {
        guard let id = args["id"]?.string, !id.isEmpty else { throw APIError(status: 400, code: 2, message: "Missing required parameter: id") }
        let key = args["key"]?.string ?? "email"
        guard let user = find(id: id, key: key) else {
            throw APIError(status: 400, code: 99, message: "User not found with \(key): \(id)")
        }
        return userJSON(user)
    }

    private func userJSON(_ user: SandboxUser) -> JSON {
        // PHP sends empty maps as `[]`; clients must cope, so the sandbox does the same.
        let lists: JSON = user.lists.isEmpty ? .array([]) : .object(user.lists.mapValues { .string(WireFormat.rfc2822($0)) })
        return .object([
            "keys": .object(user.keys.mapValues(JSON.string)),
            "vars": user.vars.isEmpty ? .array([]) : .object(user.vars),
            "lists": lists,
            "engagement": "new",
            "optout_email": .string(user.optout),
        ])
    }

    func postUser(_ args: [String: JSON]) throws -> JSON {
        guard let id = args["id"]?.string, !id.isEmpty else { throw APIError(status: 400, code: 2, message: "Missing required parameter: id") }
        let key = args["key"]?.string ?? "email"
        if key == "email", !Self.isValidEmail(id) { throw APIError(status: 400, code: 11, message: "Invalid email: \(id)") }
        if key == "sid", find(id: id, key: key) == nil { throw APIError(status: 400, code: 99, message: "User not found with sid: \(id)") }
        var user = findOrCreate(id: id, key: key, now: Date())
        do {
            try apply(args, to: &user, now: Date())
            try put(user)
        } catch {
            try commit()  // a user findOrCreate made is journaled even when the update is refused
            throw error
        }
        try commit()
        return ["ok": true]
    }

    func deleteUser(_ args: [String: JSON]) throws -> JSON {
        guard let id = args["id"]?.string else { throw APIError(status: 400, code: 2, message: "Missing required parameter: id") }
        let key = args["key"]?.string ?? "email"
        guard let user = find(id: id, key: key) else { throw APIError(status: 400, code: 99, message: "User not found with \(key): \(id)") }
        unindex(user)
        state.users[user.id] = nil
        try record(SailthruJournalEntry(next: state.nextID, deletedUser: user.id))
        try commit()
        return ["ok": true]
    }

    /// Applies /user POST fields (also an update-job line): keys, vars, lists, optout.
    private func apply(_ args: [String: JSON], to user: inout SandboxUser, now: Date) throws {
        for (kind, value) in args["keys"]?.object ?? [:] {
            guard let text = value.string else { continue }
            if kind == "email" {
                guard Self.isValidEmail(text) else { throw APIError(status: 400, code: 11, message: "Invalid email: \(text)") }
                user.keys["email"] = text.lowercased()
            } else if kind != "sid" {
                user.keys[kind] = text
            }
        }
        for (name, value) in args["vars"]?.object ?? [:] {
            guard Self.isValidVarName(name) else {
                throw APIError(status: 400, code: 99, message: "Invalid var name: \(name)")
            }
            if value == .null { user.vars[name] = nil } else { user.vars[name] = value }
        }
        for (name, value) in args["lists"]?.object ?? [:] {
            if value.flag == true {
                if let list = state.lists[name], list.type == "smart" {
                    throw APIError(status: 400, code: 99, message: "Cannot add users to smart list: \(name)")
                }
                try ensureNaturalList(name, now: now)
                if user.lists[name] == nil { user.lists[name] = now }
            } else {
                user.lists[name] = nil
            }
        }
        if let optout = (args["optout_email"] ?? args["optout"])?.string {
            guard ["none", "all", "blast", "basic"].contains(optout) else {
                throw APIError(status: 400, code: 99, message: "Invalid optout_email: \(optout)")
            }
            user.optout = optout
        }
    }

    // MARK: - Lists

    private func memberCount(of list: SandboxList) -> Int {
        state.users.withUsers { users in users.reduce(0) { $0 + (Self.signup(of: $1, in: list) == nil ? 0 : 1) } }
    }

    /// When `user` joined `list` (a smart list: when they joined its source list, else when they were created),
    /// nil when they are not a member.
    static func signup(of user: borrowing SandboxUser, in list: SandboxList) -> Date? {
        guard list.type == "smart" else { return user.lists[list.name] }
        let source = list.query?["source_list"]?.string
        if let source, user.lists[source] == nil { return nil }
        for (name, expected) in list.query?["vars"]?.object ?? [:] where user.vars[name]?.cell != expected.cell { return nil }
        return source.flatMap { user.lists[$0] } ?? user.created
    }

    private func listJSON(_ list: SandboxList) -> JSON {
        .object([
            "list_id": .string(list.id), "list": .string(list.name),
            "create_time": .string(WireFormat.rfc2822(list.created)), "send_time": .null,
            "count": .int(memberCount(of: list)), "type": .string(list.type), "primary": .bool(list.primary),
        ])
    }

    func getList(_ args: [String: JSON]) throws -> JSON {
        if let name = args["list"]?.string {
            guard let list = state.lists[name] else { throw APIError(status: 400, code: 15, message: "Unknown list: \(name)") }
            return listJSON(list)
        }
        if let id = args["list_id"]?.string {
            guard let list = state.lists.values.first(where: { $0.id == id }) else {
                throw APIError(status: 400, code: 15, message: "Unknown list: \(id)")
            }
            return listJSON(list)
        }
        let primaryOnly = args["primary"]?.flag == true
        let lists = state.lists.values.filter { !primaryOnly || $0.primary }.sorted { $0.name < $1.name }
        return ["lists": .array(lists.map { list in
            let count = memberCount(of: list)
            return .object([
                "list_id": .string(list.id), "name": .string(list.name), "email_count": .int(count),
                "valid_count": .int(count), "create_time": .string(WireFormat.rfc2822(list.created)),
                "type": .string(list.type), "primary": .bool(list.primary),
            ])
        })]
    }

    func postList(_ args: [String: JSON]) throws -> JSON {
        guard let name = args["list"]?.string, !name.isEmpty else { throw APIError(status: 400, code: 2, message: "Missing required parameter: list") }
        if args["emails"] != nil {
            throw APIError(status: 400, code: 99, message: "Saving emails through /list is not supported; use job import")
        }
        let type = args["type"]?.string ?? state.lists[name]?.type ?? "normal"
        guard ["normal", "smart"].contains(type) else { throw APIError(status: 400, code: 99, message: "Invalid list type: \(type)") }
        if type == "smart", args["query"] == nil, state.lists[name]?.query == nil {
            throw APIError(status: 400, code: 2, message: "Missing required parameter: query")
        }
        if state.lists[name] == nil, state.lists.count >= 2000 {
            throw APIError(status: 400, code: 99, message: "Too many lists: the limit is 2000")
        }
        var list = state.lists[name] ?? SandboxList(id: newID(), name: name, type: type, primary: false, created: Date(), query: nil)
        list.type = type
        if let primary = args["primary"]?.flag { list.primary = primary }
        if let query = args["query"] { list.query = query }
        try putList(list)
        try commit()
        return listJSON(list)
    }

    func deleteList(_ args: [String: JSON]) throws -> JSON {
        guard let name = args["list"]?.string else { throw APIError(status: 400, code: 2, message: "Missing required parameter: list") }
        guard state.lists[name] != nil else { throw APIError(status: 400, code: 15, message: "Unknown list: \(name)") }
        Self.removeList(name, from: &state)
        try record(SailthruJournalEntry(next: state.nextID, deletedList: name))
        try commit()
        return ["list": .string(name), "ok": true]
    }

    // MARK: - Jobs

    func postJob(_ args: [String: JSON], file: (name: String?, data: Data)?) throws -> JSON {
        guard let type = args["job"]?.string else { throw APIError(status: 400, code: 2, message: "Missing required parameter: job") }
        let id = newID()
        var job = SandboxJob(id: id, type: type, name: "", list: args["list"]?.string, created: Date(), upload: nil,
                             update: args["update"], vars: nil, signupDates: args["signup_dates"]?.flag ?? false,
                             completed: nil, exportFile: nil, forcedExpired: false, counts: [:])
        func storeUpload() throws {
            if let file {
                try file.data.write(to: directory.appendingPathComponent("uploads/\(id)"), options: .atomic)
                job.upload = id
            } else if let emails = args["emails"]?.string {
                let lines = emails.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                let text = type == "import" ? "email\n" + lines.joined(separator: "\n")
                    : lines.map { JSON.object(["email": .string($0)]).text() }.joined(separator: "\n")
                try Data(text.utf8).write(to: directory.appendingPathComponent("uploads/\(id)"), options: .atomic)
                job.upload = id
            } else {
                throw APIError(status: 400, code: 2, message: "Missing required parameter: file")
            }
        }
        var reply: [String: JSON] = ["job_id": .string(id), "status": "pending"]
        switch type {
        case "import":
            guard let list = job.list, !list.isEmpty else { throw APIError(status: 400, code: 2, message: "Missing required parameter: list") }
            if let existing = state.lists[list], existing.type == "smart" {
                throw APIError(status: 400, code: 99, message: "Cannot import into smart list: \(list)")
            }
            try storeUpload()
            job.name = "List Import: \(list)"
        case "update":
            try storeUpload()
            job.name = "Bulk Update"
            reply["update"] = job.update?.object.map { $0.isEmpty ? .array([]) : .object($0) } ?? .array([])
        case "export_list_data":
            guard let list = job.list, !list.isEmpty else { throw APIError(status: 400, code: 2, message: "Missing required parameter: list") }
            guard state.lists[list] != nil else { throw APIError(status: 400, code: 15, message: "Unknown list: \(list)") }
            // The parameter's name is unconfirmed: accept `vars` and `fields.vars`.
            let chosen = args["vars"]?.object ?? args["fields"]?["vars"]?.object
            job.vars = chosen.map { $0.filter { $0.value.flag != false }.keys.sorted() }
            job.name = "Export List Data: \(list)"
            reply["list"] = .string(list)
        default:
            throw APIError(status: 400, code: 99, message: "Unsupported job type: \(type)")
        }
        reply["name"] = .string(job.name)
        try putJob(job)
        try commit()
        try advance()
        return .object(reply)
    }

    func getJob(_ args: [String: JSON], baseURL: String) throws -> JSON {
        try advance()
        guard let id = args["job_id"]?.string else { throw APIError(status: 400, code: 2, message: "Missing required parameter: job_id") }
        guard let job = state.jobs[id] else { throw APIError(status: 400, code: 99, message: "Unknown job_id: \(id)") }
        var reply: [String: JSON] = [
            "job_id": .string(job.id), "name": .string(job.name), "status": .string(status(of: job)),
            "start_time": .string(WireFormat.rfc2822(job.created)),
        ]
        if let list = job.list { reply["list"] = .string(list) }
        if let completed = job.completed {
            reply["end_time"] = .string(WireFormat.rfc2822(completed))
            for (name, count) in job.counts { reply[name] = .int(count) }
            if job.type == "export_list_data" {
                reply["filename"] = .string("\(job.id).csv")
                if isExpired(job) { reply["expired"] = true }
                else { reply["export_url"] = .string("\(baseURL)/_export/\(job.id).csv") }
            }
        }
        return .object(reply)
    }

    /// The export CSV of a completed, unexpired job.
    func exportFile(job id: String) throws -> URL? {
        try advance()
        guard let job = state.jobs[id], job.completed != nil, !isExpired(job), let file = job.exportFile else { return nil }
        return directory.appendingPathComponent(file)
    }

    private func status(of job: SandboxJob) -> String {
        if job.completed != nil { return "completed" }
        return Date().timeIntervalSince(job.created) < settings.delay / 2 ? "pending" : "running"
    }

    private func isExpired(_ job: SandboxJob) -> Bool {
        guard let completed = job.completed else { return false }
        return job.forcedExpired || Date().timeIntervalSince(completed) > settings.exportTTL
    }

    /// Completes every job whose delay has passed, applying its effect.
    func advance() throws {
        let now = Date()
        var changed = false
        for id in state.jobs.keys.sorted() {
            guard var job = state.jobs[id], job.completed == nil, now.timeIntervalSince(job.created) >= settings.delay else { continue }
            switch job.type {
            case "import": job.counts = try runImport(job, now: now)
            case "update": job.counts = try runUpdate(job, now: now)
            case "export_list_data":
                job.exportFile = "exports/\(job.id).csv"
                try writeExportCSV(job, to: directory.appendingPathComponent(job.exportFile!))
                if exportsExpired < settings.expireFirstExports {
                    exportsExpired += 1
                    job.forcedExpired = true
                }
            default: break
            }
            job.completed = now
            try putJob(job)
            changed = true
        }
        if changed { try commit() }
    }

    private func uploadData(_ job: SandboxJob) -> Data {
        guard let upload = job.upload else { return Data() }
        return FileManager.default.contents(atPath: directory.appendingPathComponent("uploads/\(upload)").path) ?? Data()
    }

    private func uploadText(_ job: SandboxJob) -> String { String(decoding: uploadData(job), as: UTF8.self) }

    private func runImport(_ job: SandboxJob, now: Date) throws -> [String: Int] {
        guard let list = job.list else { return [:] }
        try ensureNaturalList(list, now: now)
        let rows = WireFormat.parseCSV(uploadText(job))
        guard let header = rows.first?.map({ $0.trimmingCharacters(in: .whitespaces) }),
              header.first?.lowercased() == "email" else { return ["errors": 1] }
        var counts = ["imported": 0, "errors": 0]
        let dateFormatter = DateFormatter()
        dateFormatter.locale = Locale(identifier: "en_US_POSIX")
        dateFormatter.dateFormat = "yyyy-MM-dd"
        for row in rows.dropFirst() where !(row.count == 1 && row[0].isEmpty) {
            let email = row[0].trimmingCharacters(in: .whitespaces)
            guard Self.isValidEmail(email) else { counts["errors", default: 0] += 1; continue }
            var user = findOrCreate(id: email, key: "email", now: now)
            var signup = now
            for (index, name) in header.enumerated().dropFirst() where index < row.count && !row[index].isEmpty {
                if job.signupDates, name == "signup_date" {
                    signup = dateFormatter.date(from: row[index]) ?? now
                } else {
                    user.vars[name.replacingOccurrences(of: " ", with: "_")] = .string(row[index])
                }
            }
            if user.lists[list] == nil { user.lists[list] = signup }
            try put(user)
            counts["imported", default: 0] += 1
        }
        return counts
    }

    /// The objects of a JSON-lines upload, one per line that is not blank (nil for a line that is not an object).
    /// Lines are cut over the raw bytes: `Data.split` cost a tenth of an update job's time.
    static func jsonLines(_ data: Data) -> [[String: JSON]?] {
        data.withUnsafeBytes { raw in
            let bytes = raw.bindMemory(to: UInt8.self)
            var objects: [[String: JSON]?] = []
            var start = 0
            for end in 0...bytes.count where end == bytes.count || bytes[end] == 10 || bytes[end] == 13 {
                defer { start = end + 1 }
                guard end > start else { continue }
                let line = UnsafeBufferPointer(rebasing: bytes[start..<end])
                guard !line.allSatisfy({ $0 == 32 || $0 == 9 }) else { continue }
                objects.append(JSONBytes.parse(line)?.object)
            }
            return objects
        }
    }

    private func runUpdate(_ job: SandboxJob, now: Date) throws -> [String: Int] {
        var counts = ["updated": 0, "created": 0, "errors": 0]
        for object in Self.jsonLines(uploadData(job)) {
            guard let object else { counts["errors", default: 0] += 1; continue }
            let (id, key): (String?, String) = object["email"]?.string.map { ($0, "email") }
                ?? (object["id"]?.string, object["key"]?.string ?? "email")
            guard let id, key != "email" || Self.isValidEmail(id) else { counts["errors", default: 0] += 1; continue }
            let existing = find(id: id, key: key)
            if existing == nil, key == "sid" { counts["errors", default: 0] += 1; continue }
            var user = existing ?? findOrCreate(id: id, key: key, now: now)
            do {
                if let update = job.update?.object { try apply(update, to: &user, now: now) }
                try apply(object, to: &user, now: now)
            } catch {
                counts["errors", default: 0] += 1
                continue
            }
            try put(user)
            counts[existing == nil ? "created" : "updated", default: 0] += 1
        }
        return counts
    }

    /// Writes the export CSV (rows formatted by `ExportRowWriter`, a block at a time: a million-member list never
    /// sits in memory as one string) to a temporary name renamed into place once complete.
    private func writeExportCSV(_ job: SandboxJob, to url: URL) throws {
        let temporary = url.appendingPathExtension("partial")
        _ = FileManager.default.createFile(atPath: temporary.path, contents: nil)
        let handle = try FileHandle(forWritingTo: temporary)
        defer { try? handle.close() }
        guard let name = job.list, let list = state.lists[name] else {
            try FileManager.default.moveItemReplacing(temporary, to: url)
            return
        }
        let inIDOrder = state.users.isInIDOrder
        try state.users.withUsers { users in
            try ExportRowWriter(users: users, list: list, vars: job.vars, inIDOrder: inIDOrder).write(to: handle)
        }
        try handle.close()
        try FileManager.default.moveItemReplacing(temporary, to: url)
    }

    /// Users and lists as the `dump` command prints them.
    static func dump(_ state: SandboxState) -> JSON {
        let iso = ISO8601DateFormatter()
        return .object([
            "users": .array(state.users.values.sorted { $0.id < $1.id }.map { user in
                .object([
                    "id": .string(user.id), "keys": .object(user.keys.mapValues(JSON.string)), "vars": .object(user.vars),
                    "lists": .object(user.lists.mapValues { .string(iso.string(from: $0)) }), "optout_email": .string(user.optout),
                ])
            }),
            "lists": .array(state.lists.values.sorted { $0.name < $1.name }.map { list in
                var object: [String: JSON] = ["id": .string(list.id), "name": .string(list.name), "type": .string(list.type),
                                              "primary": .bool(list.primary)]
                if let query = list.query { object["query"] = query }
                if list.type != "smart" {
                    object["members"] = .int(state.users.values.filter { $0.lists[list.name] != nil }.count)
                }
                return .object(object)
            }),
        ])
    }
}

extension JSON: ExpressibleByStringLiteral, ExpressibleByBooleanLiteral, ExpressibleByDictionaryLiteral {
    init(stringLiteral value: String) { self = .string(value) }
    init(booleanLiteral value: Bool) { self = .bool(value) }
    init(dictionaryLiteral elements: (String, JSON)...) { self = .object(Dictionary(elements) { _, b in b }) }
}

extension FileManager {
    /// Renames `source` over `destination` (rename(2): atomic on one file system).
    func moveItemReplacing(_ source: URL, to destination: URL) throws {
        guard rename(source.path, destination.path) == 0 else {
            throw JournalError(path: destination.path, line: nil, message: String(cString: strerror(errno)))
        }
    }
}
