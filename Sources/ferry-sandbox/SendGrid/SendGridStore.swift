import Foundation

/// A SendGrid API error: HTTP status and `{"errors":[{"field","message"}]}` entries.
struct SendGridAPIError: Error {
    var status: Int
    var errors: [(field: String?, message: String)]

    init(_ status: Int, _ message: String, field: String? = nil) {
        self.status = status
        errors = [(field, message)]
    }

    var body: JSON {
        .object(["errors": .array(errors.map { .object(["field": $0.field.map(JSON.string) ?? .null, "message": .string($0.message)]) })])
    }
}

/// The sandbox's persisted SendGrid account.
struct SendGridState: Codable, Sendable {
    struct Field: Codable, Sendable { var id: String; var name: String; var field_type: String }
    struct List: Codable, Sendable { var id: String; var name: String }
    struct Segment: Codable, Sendable { var id: String; var name: String; var query_dsl: String; var created_at: String; var updated_at: String }
    struct Contact: Codable, Sendable {
        var id: String
        var email: String
        /// Reserved fields by name (first_name, city, …).
        var reserved: [String: String]
        /// Custom fields by field id.
        var custom_fields: [String: JSON]
        var list_ids: [String]
        var created_at: String
        var updated_at: String
    }
    struct ContactError: Codable, Sendable { var email: String?; var message: String }
    struct Job: Codable, Sendable {
        var id: String
        var status: String
        var ready_at: Double
        var list_ids: [String]
        /// The contacts still to apply (emptied once applied, to keep the state small).
        var contacts: [JSON]
        var requested_count: Int
        var created_count: Int
        var updated_count: Int
        var errors: [ContactError]
        var started_at: String
        var finished_at: String?
    }

    var fields: [Field] = []
    var lists: [List] = []
    var segments: [Segment] = []
    var contacts: [String: Contact] = [:]
    var jobs: [String: Job] = [:]
    var next_id: Int = 1
}

/// One line of the SendGrid sandbox's journal: what changed, as it now is. Fields, lists and segments are
/// few and go whole; contacts and jobs go one by one.
struct SendGridJournalEntry: Codable {
    var next_id: Int
    var fields: [SendGridState.Field]?
    var lists: [SendGridState.List]?
    var segments: [SendGridState.Segment]?
    var contact: SendGridState.Contact?
    var job: SendGridState.Job?

    /// Applies the change; replaying an entry twice gives the same state.
    func apply(to state: inout SendGridState) {
        state.next_id = max(state.next_id, next_id)
        if let fields { state.fields = fields }
        if let lists { state.lists = lists }
        if let segments { state.segments = segments }
        if let contact { state.contacts[contact.email] = contact }
        if let job { state.jobs[job.id] = job }
    }
}

/// The sandbox's SendGrid data: the snapshot `sendgrid.json` is rewritten only at start; every change in
/// between is one line of `journal.jsonl`.
actor SendGridStore {
    /// SendGrid's reserved fields (ids as SendGrid numbers them), writable ones first.
    static let reserved: [(id: String, name: String, type: String, readOnly: Bool)] = [
        ("_rf0_T", "first_name", "Text", false), ("_rf1_T", "last_name", "Text", false), ("_rf2_T", "email", "Text", false),
        ("_rf3_T", "alternate_emails", "Text", false), ("_rf4_T", "address_line_1", "Text", false),
        ("_rf5_T", "address_line_2", "Text", false), ("_rf6_T", "city", "Text", false),
        ("_rf7_T", "state_province_region", "Text", false), ("_rf8_T", "postal_code", "Text", false),
        ("_rf9_T", "country", "Text", false), ("_rf10_T", "phone_number", "Text", false),
        ("_rf11_T", "email_domains", "Text", true), ("_rf12_D", "last_clicked", "Date", true),
        ("_rf13_D", "last_opened", "Date", true), ("_rf14_D", "last_emailed", "Date", true),
    ]
    /// Documented length caps of reserved fields (an over-long email is an invalid email instead, reported in the job).
    static let lengthLimits = ["first_name": 50, "last_name": 50, "address_line_1": 100, "address_line_2": 100, "city": 60,
                               "state_province_region": 50, "country": 50, "postal_code": 60]
    static let maxContacts = 30_000
    static let maxBytes = 6 * 1024 * 1024

    let directory: URL
    let jobDelay: Double
    private(set) var state: SendGridState
    private var journal: SendGridJournalWriter
    /// Each segment's members (emails), kept current as contacts change; nil until first needed and after
    /// a segment or field changes, then rebuilt over every contact once.
    private var memberships: [String: Set<String>]?
    /// The segments' queries, parsed once and with their columns resolved against the fields.
    private var compiled: [CompiledSegment] = []

    init(directory: URL, jobDelay: Double) throws {
        self.directory = directory
        self.jobDelay = jobDelay
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let (loaded, replayed) = try Self.loadCounting(from: directory)
        state = loaded
        // Snapshot first (atomic rename), then empty the journal: a crash in between only replays entries again.
        if replayed > 0 {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            try encoder.encode(loaded).write(to: directory.appendingPathComponent("sendgrid.json"), options: .atomic)
        }
        journal = try SendGridJournalWriter(directory: directory, truncate: true)
    }

    /// The state of a directory: the snapshot with the journal replayed on top (reads only).
    static func load(from directory: URL) throws -> SendGridState {
        try loadCounting(from: directory).state
    }

    private static func loadCounting(from directory: URL) throws -> (state: SendGridState, replayed: Int) {
        let file = directory.appendingPathComponent("sendgrid.json")
        var state = FileManager.default.fileExists(atPath: file.path)
            ? try JSONDecoder().decode(SendGridState.self, from: Data(contentsOf: file)) : SendGridState()
        var replayed = 0
        try Journal.replay(SendGridJournalEntry.self, in: directory) { entry in
            entry.apply(to: &state)
            replayed += 1
        }
        return (state, replayed)
    }

    private func record(fields: Bool = false, lists: Bool = false, segments: Bool = false,
                        contact: SendGridState.Contact? = nil, job: SendGridState.Job? = nil) throws {
        try journal.append(SendGridJournalEntry(next_id: state.next_id, fields: fields ? state.fields : nil,
                                                lists: lists ? state.lists : nil, segments: segments ? state.segments : nil,
                                                contact: contact, job: job))
    }

    /// Writes the queued journal lines: called before a request's reply leaves the actor.
    private func commit() throws { try journal.flush() }

    private func newID(_ prefix: String) -> String {
        defer { state.next_id += 1 }
        return String(format: "%@%08x-0000-4000-8000-%012x", prefix, state.next_id, state.next_id)
    }

    private static func timestamp(_ date: Date = Date()) -> String {
        let f = ISO8601DateFormatter()
        return f.string(from: date)
    }

    // MARK: - Field definitions

    func fieldDefinitions() -> JSON {
        .object([
            "custom_fields": .array(state.fields.map { .object(["id": .string($0.id), "name": .string($0.name), "field_type": .string($0.field_type)]) }),
            "reserved_fields": .array(Self.reserved.map {
                .object(["id": .string($0.id), "name": .string($0.name), "field_type": .string($0.type), "read_only": .bool($0.readOnly)])
            }),
            "_metadata": .object(["self": "/v3/marketing/field_definitions"]),
        ])
    }

    func createField(_ body: JSON) throws -> JSON {
        guard let name = body["name"]?.string else { throw SendGridAPIError(400, "name is required", field: "name") }
        guard let type = body["field_type"]?.string, ["Text", "Number", "Date"].contains(type) else {
            throw SendGridAPIError(400, "field_type must be one of Text, Number, Date", field: "field_type")
        }
        guard (1...100).contains(name.count), name.range(of: "^[A-Za-z_][A-Za-z0-9_]*$", options: .regularExpression) != nil else {
            throw SendGridAPIError(400, "name must use A-Z, 0-9 and _ and start with a letter or _", field: "name")
        }
        let lower = name.lowercased()
        if Self.reserved.contains(where: { $0.name == lower }) || state.fields.contains(where: { $0.name.lowercased() == lower }) {
            throw SendGridAPIError(400, "a field named \(name) already exists", field: "name")
        }
        guard state.fields.count < 500 else { throw SendGridAPIError(400, "at most 500 custom fields", field: "name") }
        let id = "e\(state.next_id)_\(type.prefix(1))"
        state.next_id += 1
        state.fields.append(.init(id: id, name: name, field_type: type))
        memberships = nil
        try record(fields: true)
        try commit()
        return .object(["id": .string(id), "name": .string(name), "field_type": .string(type)])
    }

    // MARK: - Lists

    func lists() -> JSON {
        .object(["result": .array(state.lists.map(listJSON)), "_metadata": .object(["count": .int(state.lists.count)])])
    }

    private func listJSON(_ list: SendGridState.List) -> JSON {
        .object(["id": .string(list.id), "name": .string(list.name),
                 "contact_count": .int(state.contacts.values.filter { $0.list_ids.contains(list.id) }.count)])
    }

    func createList(_ body: JSON) throws -> JSON {
        guard let name = body["name"]?.string, (1...100).contains(name.count) else {
            throw SendGridAPIError(400, "name must be 1-100 characters", field: "name")
        }
        if state.lists.contains(where: { $0.name == name }) { throw SendGridAPIError(400, "list name already exists", field: "name") }
        let list = SendGridState.List(id: newID(""), name: name)
        state.lists.append(list)
        try record(lists: true)
        try commit()
        return listJSON(list)
    }

    // MARK: - Segments 2.0

    func segments() -> JSON {
        .object(["results": .array(state.segments.map(segmentJSON))])
    }

    func segment(id: String) throws -> JSON {
        guard let segment = state.segments.first(where: { $0.id == id }) else { throw SendGridAPIError(404, "segment not found") }
        return segmentJSON(segment)
    }

    private func segmentJSON(_ s: SendGridState.Segment) -> JSON {
        let members = currentMembers()[s.id] ?? []
        let sample = members.count <= 50 ? members.sorted() : Self.smallest(50, of: members)
        return .object([
            "id": .string(s.id), "name": .string(s.name), "query_dsl": .string(s.query_dsl),
            "contacts_count": .int(members.count), "contacts_sample": .array(sample.map { .object(["email": .string($0)]) }),
            "created_at": .string(s.created_at), "updated_at": .string(s.updated_at), "parent_list_ids": .null,
            "query_version": "2", "status": .object(["query_validation": "VALID"]),
        ])
    }

    /// Emails of the contacts the segment's query selects, sorted.
    func members(of segment: SendGridState.Segment) -> [String] {
        (currentMembers()[segment.id] ?? []).sorted()
    }

    /// The first `count` emails in order, without sorting them all.
    private static func smallest(_ count: Int, of emails: Set<String>) -> [String] {
        var kept: [String] = []
        kept.reserveCapacity(count + 1)
        for email in emails where kept.count < count || email < kept[count - 1] {
            let at = kept.firstIndex { $0 > email } ?? kept.count
            kept.insert(email, at: at)
            if kept.count > count { kept.removeLast() }
        }
        return kept
    }

    /// A segment's query with each column resolved once: `email`, then a top-level (reserved) value, then
    /// the custom field of that name, the order the contact is looked up in.
    struct CompiledSegment {
        var id: String
        var query: SegmentQuery
        /// Lower-cased column → the custom field id of that name, if any.
        var customIDs: [String: String]

        func matches(_ contact: SendGridState.Contact) -> Bool {
            query.matches { column in
                let lower = column.lowercased()
                if lower == "email" { return contact.email }
                if let v = contact.reserved[lower] { return v }
                guard let id = customIDs[lower] else { return nil }
                return contact.custom_fields[id]?.cell
            }
        }
    }

    static func compile(_ state: SendGridState) -> [CompiledSegment] {
        state.segments.compactMap { segment in
            guard let query = try? SegmentQuery(parsing: segment.query_dsl) else { return nil }
            var ids: [String: String] = [:]
            for column in query.columns {
                let lower = column.lowercased()
                if let field = state.fields.first(where: { $0.name.lowercased() == lower }) { ids[lower] = field.id }
            }
            return CompiledSegment(id: segment.id, query: query, customIDs: ids)
        }
    }

    /// Every segment's members: rebuilt over all contacts only after a segment or field changed.
    private func currentMembers() -> [String: Set<String>] {
        if let memberships { return memberships }
        compiled = Self.compile(state)
        var built: [String: Set<String>] = [:]
        for segment in compiled {
            var members: Set<String> = []
            for contact in state.contacts.values where segment.matches(contact) { members.insert(contact.email) }
            built[segment.id] = members
        }
        memberships = built
        return built
    }

    /// Re-evaluates the segments for one changed contact only.
    private func updateMemberships(for contact: SendGridState.Contact) {
        guard memberships != nil else { return }
        for segment in compiled {
            if segment.matches(contact) {
                memberships![segment.id, default: []].insert(contact.email)
            } else {
                memberships![segment.id]?.remove(contact.email)
            }
        }
    }

    private func validateQuery(_ body: JSON) throws -> String {
        guard let query = body["query_dsl"]?.string else { throw SendGridAPIError(400, "query_dsl is required", field: "query_dsl") }
        let parsed: SegmentQuery
        do { parsed = try SegmentQuery(parsing: query) } catch {
            throw SendGridAPIError(400, "invalid query_dsl: \(error)", field: "query_dsl")
        }
        for column in parsed.columns {
            let lower = column.lowercased()
            guard Self.reserved.contains(where: { $0.name == lower }) || state.fields.contains(where: { $0.name.lowercased() == lower }) else {
                throw SendGridAPIError(400, "unknown column \(column) in query_dsl", field: "query_dsl")
            }
        }
        return query
    }

    func createSegment(_ body: JSON) throws -> JSON {
        guard let name = body["name"]?.string, (1...100).contains(name.count) else {
            throw SendGridAPIError(400, "name must be 1-100 characters", field: "name")
        }
        if state.segments.contains(where: { $0.name == name }) { throw SendGridAPIError(400, "segment name already exists", field: "name") }
        let query = try validateQuery(body)
        let now = Self.timestamp()
        let segment = SendGridState.Segment(id: newID(""), name: name, query_dsl: query, created_at: now, updated_at: now)
        state.segments.append(segment)
        memberships = nil
        try record(segments: true)
        try commit()
        return segmentJSON(segment)
    }

    func updateSegment(id: String, _ body: JSON) throws -> JSON {
        guard let index = state.segments.firstIndex(where: { $0.id == id }) else { throw SendGridAPIError(404, "segment not found") }
        if let name = body["name"]?.string {
            if state.segments.contains(where: { $0.name == name && $0.id != id }) {
                throw SendGridAPIError(400, "segment name already exists", field: "name")
            }
            state.segments[index].name = name
        }
        if body["query_dsl"] != nil { state.segments[index].query_dsl = try validateQuery(body) }
        state.segments[index].updated_at = Self.timestamp()
        memberships = nil
        try record(segments: true)
        try commit()
        return segmentJSON(state.segments[index])
    }

    // MARK: - Contacts

    /// Validates a `PUT /v3/marketing/contacts` body the way SendGrid does before accepting it, and queues the job.
    func upsert(_ body: JSON) throws -> JSON {
        guard let contacts = body["contacts"]?.array else { throw SendGridAPIError(400, "contacts is required", field: "contacts") }
        guard !contacts.isEmpty else { throw SendGridAPIError(400, "contacts must have at least 1 item", field: "contacts") }
        guard contacts.count <= Self.maxContacts else {
            throw SendGridAPIError(400, "contacts must have at most 30000 items", field: "contacts")
        }
        let listIDs = body["list_ids"]?.array?.compactMap(\.string) ?? []
        for id in listIDs where !state.lists.contains(where: { $0.id == id }) {
            throw SendGridAPIError(400, "list_id \(id) does not exist", field: "list_ids")
        }
        var fieldTypes: [String: String] = [:]
        for field in state.fields { fieldTypes[field.id] = field.field_type }
        for (i, contact) in contacts.enumerated() {
            guard let object = contact.object else { throw SendGridAPIError(400, "must be an object", field: "contacts[\(i)]") }
            guard object["email"]?.string != nil || object["external_id"]?.string != nil
                || object["phone_number_id"]?.string != nil || object["anonymous_id"]?.string != nil else {
                throw SendGridAPIError(400, "at least one identifier is required (email, phone_number_id, external_id, anonymous_id)",
                                       field: "contacts[\(i)]")
            }
            for (key, cap) in Self.lengthLimits {
                // A string has at least as many UTF-8 bytes as characters: count characters only when it could matter.
                if let value = object[key]?.string, value.utf8.count > cap, value.count > cap {
                    throw SendGridAPIError(400, "\(key) must be at most \(cap) characters", field: "contacts[\(i)].\(key)")
                }
            }
            for (key, value) in object["custom_fields"]?.object ?? [:] {
                guard let type = fieldTypes[key] else {
                    throw SendGridAPIError(400, "custom field ID \(key) does not exist", field: "contacts[\(i)].custom_fields.\(key)")
                }
                let isNumber: Bool = switch value {
                case .int, .double: true
                case .string(let text): Double(text) != nil
                default: false
                }
                if type == "Number", !isNumber {
                    throw SendGridAPIError(400, "custom field \(key) is a Number field", field: "contacts[\(i)].custom_fields.\(key)")
                }
            }
        }
        let id = newID("")
        state.jobs[id] = .init(id: id, status: "pending", ready_at: Date().timeIntervalSince1970 + jobDelay, list_ids: listIDs,
                               contacts: contacts, requested_count: contacts.count, created_count: 0, updated_count: 0,
                               errors: [], started_at: Self.timestamp(), finished_at: nil)
        try record(job: state.jobs[id])
        try commit()
        return .object(["job_id": .string(id)])
    }

    func job(id: String) throws -> JSON {
        try advance()
        guard let job = state.jobs[id] else { throw SendGridAPIError(404, "job not found") }
        return .object([
            "id": .string(job.id), "status": .string(job.status), "job_type": "upsert",
            "results": .object([
                "requested_count": .int(job.requested_count), "created_count": .int(job.created_count),
                "updated_count": .int(job.updated_count), "deleted_count": .int(0), "errored_count": .int(job.errors.count),
                "errors_url": job.errors.isEmpty ? .null : .string("/v3/marketing/contacts/imports/\(job.id)/errors"),
                // SendGrid only links an errors file; the sandbox also lists them here.
                "errors": .array(job.errors.map { .object(["email": $0.email.map(JSON.string) ?? .null, "message": .string($0.message)]) }),
            ]),
            "started_at": .string(job.started_at), "finished_at": job.finished_at.map(JSON.string) ?? .null,
        ])
    }

    /// The job's errors file: CSV of the rejected contacts' emails and reasons.
    func errorsFile(id: String) throws -> String {
        try advance()
        guard let job = state.jobs[id] else { throw SendGridAPIError(404, "job not found") }
        func cell(_ text: String) -> String { "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
        return "email,error\n" + job.errors.map { cell($0.email ?? "") + "," + cell($0.message) + "\n" }.joined()
    }

    /// Applies every job whose delay has passed.
    func advance() throws {
        let now = Date().timeIntervalSince1970
        var changed = false
        for id in state.jobs.keys.sorted() where state.jobs[id]!.status == "pending" && state.jobs[id]!.ready_at <= now {
            try apply(id)
            changed = true
        }
        if changed { try commit() }
    }

    /// A lowercase version-4 UUID string, as `UUID().uuidString.lowercased()` gives, drawn from `getrandom`:
    /// Foundation's `UUID()` opens /dev/urandom on every call, which cost more than the rest of an upsert.
    static func randomContactID() -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes = [UInt8](repeating: 0, count: 16)
        let high = generator.next() as UInt64, low = generator.next() as UInt64
        for index in 0..<8 {
            bytes[index] = UInt8(truncatingIfNeeded: high >> (8 * UInt64(index)))
            bytes[index + 8] = UInt8(truncatingIfNeeded: low >> (8 * UInt64(index)))
        }
        bytes[6] = (bytes[6] & 0x0F) | 0x40
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        let hex = Array("0123456789abcdef".utf8)
        var text = [UInt8]()
        text.reserveCapacity(36)
        for (index, byte) in bytes.enumerated() {
            if index == 4 || index == 6 || index == 8 || index == 10 { text.append(UInt8(ascii: "-")) }
            text.append(hex[Int(byte >> 4)])
            text.append(hex[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    private func apply(_ id: String) throws {
        guard var job = state.jobs[id] else { return }
        let now = Self.timestamp()
        _ = currentMembers()
        for contact in job.contacts {
            guard let object = contact.object else { continue }
            guard let raw = object["email"]?.string else { continue }
            let email = raw.lowercased()
            guard Self.isValidEmail(email) else {
                job.errors.append(.init(email: raw, message: "invalid email address"))
                continue
            }
            let existing = state.contacts[email]
            var stored = existing ?? SendGridState.Contact(
                id: Self.randomContactID(), email: email, reserved: [:], custom_fields: [:], list_ids: [],
                created_at: now, updated_at: now)
            if existing == nil { job.created_count += 1 } else { job.updated_count += 1 }
            for (key, value) in object where key != "email" && key != "custom_fields" {
                if let text = value.string { stored.reserved[key] = text }
            }
            // Omitted fields are kept; sent ones replace.
            for (key, value) in object["custom_fields"]?.object ?? [:] { stored.custom_fields[key] = value }
            for list in job.list_ids where !stored.list_ids.contains(list) { stored.list_ids.append(list) }
            stored.updated_at = now
            state.contacts[email] = stored
            updateMemberships(for: stored)
            try record(contact: stored)
        }
        job.status = job.errors.isEmpty ? "completed" : (job.errors.count == job.requested_count ? "failed" : "errored")
        job.contacts = []
        job.finished_at = now
        state.jobs[id] = job
        try record(job: job)
    }

    /// `^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$` and at most 254 characters, without a regex per contact: one `@`,
    /// something before it, and a dot after it with something on both sides; no whitespace, `,` or `;`.
    static func isValidEmail(_ email: String) -> Bool {
        if email.utf8.count > 254, email.count > 254 { return false }
        var at: Int?
        var dotAfterAt = false
        var position = 0
        var last: Unicode.Scalar = " "
        for scalar in email.unicodeScalars {
            switch scalar {
            case "@":
                guard at == nil, position > 0 else { return false }
                at = position
            case ",", ";": return false
            case "." where at != nil && position > at! + 1: dotAfterAt = true
            default:
                if isRegexSpace(scalar) { return false }
            }
            last = scalar
            position += 1
        }
        guard at != nil, dotAfterAt else { return false }
        // The dot needs something after it: a last scalar that is not the only dot is enough only if it is not a dot.
        return last != "." || Self.hasInnerDot(email, after: at!)
    }

    /// ICU's `\s`: `[\t\n\f\r\p{Z}]`.
    private static func isRegexSpace(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09, 0x0A, 0x0C, 0x0D: return true
        case 0..<0x80: return scalar == " "
        default:
            switch scalar.properties.generalCategory {
            case .spaceSeparator, .lineSeparator, .paragraphSeparator: return true
            default: return false
            }
        }
    }

    /// Whether the domain has a dot with at least one scalar on each side (for domains ending in a dot).
    private static func hasInnerDot(_ email: String, after at: Int) -> Bool {
        let domain = Array(email.unicodeScalars.dropFirst(at + 1))
        return domain.count >= 3 && domain[1..<(domain.count - 1)].contains(".")
    }

    // MARK: - Dump

    /// Contacts (custom fields by name), fields, lists and segments with their members.
    static func dump(_ state: SendGridState) -> JSON {
        let store = DumpView(state: state)
        return .object([
            "contacts": .array(state.contacts.values.sorted { $0.email < $1.email }.map(store.contact)),
            "fields": .array(state.fields.map { .object(["id": .string($0.id), "name": .string($0.name), "field_type": .string($0.field_type)]) }),
            "lists": .array(state.lists.map { list in
                .object(["id": .string(list.id), "name": .string(list.name),
                         "contact_count": .int(state.contacts.values.filter { $0.list_ids.contains(list.id) }.count)])
            }),
            "segments": .array(state.segments.map { s in
                let members = store.members(s)
                return .object(["id": .string(s.id), "name": .string(s.name), "query_dsl": .string(s.query_dsl),
                                "contacts_count": .int(members.count), "members": .array(members.map(JSON.string))])
            }),
            "jobs": .int(state.jobs.count),
        ])
    }

    /// Read-only helpers over a loaded state, for `dump`.
    private struct DumpView {
        let state: SendGridState

        func contact(_ c: SendGridState.Contact) -> JSON {
            var custom: [String: JSON] = [:]
            for (id, value) in c.custom_fields {
                custom[state.fields.first { $0.id == id }?.name ?? id] = value
            }
            var object: [String: JSON] = ["email": .string(c.email), "custom_fields": .object(custom),
                                          "lists": .array(c.list_ids.map { id in .string(state.lists.first { $0.id == id }?.name ?? id) })]
            for (k, v) in c.reserved { object[k] = .string(v) }
            return .object(object)
        }

        func members(_ segment: SendGridState.Segment) -> [String] {
            guard let compiled = SendGridStore.compile(state).first(where: { $0.id == segment.id }) else { return [] }
            return state.contacts.values.filter(compiled.matches).map(\.email).sorted()
        }
    }
}
