import Foundation

/// A SendGrid custom field type, as the API spells it.
public enum SendGridFieldKind: String, Sendable, Hashable, CaseIterable {
    case text = "Text"
    case number = "Number"
    case date = "Date"

    /// The kind for a configured `type: text | number | date`.
    public init(_ type: SendGridFieldType) {
        switch type {
        case .text: self = .text
        case .number: self = .number
        case .date: self = .date
        }
    }
}

/// A field definition: a custom field (referred to by `id` in `custom_fields`) or a reserved one.
public struct SendGridFieldDefinition: Sendable, Hashable {
    public var id: String
    public var name: String
    /// `Text`, `Number` or `Date` (kept as text: SendGrid may add kinds).
    public var fieldType: String
    public var isReserved: Bool
    public var isReadOnly: Bool

    public init(id: String, name: String, fieldType: String, isReserved: Bool = false, isReadOnly: Bool = false) {
        self.id = id
        self.name = name
        self.fieldType = fieldType
        self.isReserved = isReserved
        self.isReadOnly = isReadOnly
    }
}

/// A contact list.
public struct SendGridList: Sendable, Hashable {
    public var id: String
    public var name: String
    public var contactCount: Int?

    public init(id: String, name: String, contactCount: Int? = nil) {
        self.id = id
        self.name = name
        self.contactCount = contactCount
    }
}

/// A Segments 2.0 segment.
public struct SendGridSegment: Sendable, Hashable {
    public var id: String
    public var name: String
    public var queryDSL: String
    public var contactsCount: Int?

    public init(id: String, name: String, queryDSL: String, contactsCount: Int? = nil) {
        self.id = id
        self.name = name
        self.queryDSL = queryDSL
        self.contactsCount = contactsCount
    }
}

/// One contact to upsert: the email identifier, reserved fields by name, custom fields by field id.
public struct SendGridContact: Sendable, Hashable {
    public var email: String
    /// Writable reserved fields (`first_name`, `city`, …), sent at the top level of the contact.
    public var reserved: [String: JSONValue]
    /// Custom field values keyed by field definition id (`e1_T`), not by name.
    public var customFields: [String: JSONValue]

    public init(email: String, reserved: [String: JSONValue] = [:], customFields: [String: JSONValue] = [:]) {
        self.email = email
        self.reserved = reserved
        self.customFields = customFields
    }

    /// The contact as it travels in `contacts[]`.
    public var json: JSONValue {
        var object = reserved
        object["email"] = .string(email)
        if !customFields.isEmpty { object["custom_fields"] = .object(customFields) }
        return .object(object)
    }
}

/// A contact import job (`GET /v3/marketing/contacts/imports/{id}`).
public struct SendGridImportJob: Sendable, Hashable {
    /// `pending`, `completed`, `errored` or `failed`.
    public enum Status: String, Sendable, Hashable {
        case pending, completed, errored, failed
    }

    /// One contact the job rejected (email and why), when the reply lists them.
    public struct ContactError: Sendable, Hashable {
        public var email: String?
        public var message: String
        public init(email: String?, message: String) {
            self.email = email
            self.message = message
        }
    }

    public var id: String
    public var status: Status
    public var requestedCount: Int
    public var createdCount: Int
    public var updatedCount: Int
    public var erroredCount: Int
    public var errorsURL: String?
    public var errors: [ContactError]

    public init(id: String, status: Status, requestedCount: Int = 0, createdCount: Int = 0, updatedCount: Int = 0,
                erroredCount: Int = 0, errorsURL: String? = nil, errors: [ContactError] = []) {
        self.id = id
        self.status = status
        self.requestedCount = requestedCount
        self.createdCount = createdCount
        self.updatedCount = updatedCount
        self.erroredCount = erroredCount
        self.errorsURL = errorsURL
        self.errors = errors
    }

    /// Whether the job has stopped changing.
    public var isFinished: Bool { status != .pending }
}

/// The SendGrid Marketing Campaigns calls ferry's export needs.
public protocol SendGridAPI: Sendable {
    /// Custom and reserved field definitions.
    func fieldDefinitions() async throws -> [SendGridFieldDefinition]
    /// Creates a custom field.
    func createField(name: String, kind: SendGridFieldKind) async throws -> SendGridFieldDefinition
    /// Every contact list.
    func lists() async throws -> [SendGridList]
    /// Creates a contact list.
    func createList(name: String) async throws -> SendGridList
    /// Every Segments 2.0 segment.
    func segments() async throws -> [SendGridSegment]
    /// Creates a Segments 2.0 segment.
    func createSegment(name: String, queryDSL: String) async throws -> SendGridSegment
    /// Changes a segment's query.
    func updateSegment(id: String, queryDSL: String) async throws -> SendGridSegment
    /// Sends one already-encoded `PUT /v3/marketing/contacts` body; returns the job id.
    func upsertContacts(body: Data) async throws -> String
    /// One poll of an import job.
    func importJob(id: String) async throws -> SendGridImportJob
    /// Polls an import job until it finishes (throws `jobFailed` on timeout).
    func waitForImport(id: String) async throws -> SendGridImportJob
    /// The rejected contacts of a finished job: listed in the reply, else read from its errors file.
    func importErrors(of job: SendGridImportJob) async throws -> [SendGridImportJob.ContactError]
}

extension SendGridAPI {
    /// The custom field named `name` (case-insensitive, as SendGrid compares), created with `kind` if missing.
    ///
    /// Throws `fieldTypeConflict` when a field of that name exists with another type, or names a reserved field
    /// that cannot hold it; `known` is the current definitions (refetched after a create that lost its reply).
    public func ensureField(name: String, kind: SendGridFieldKind, known: [SendGridFieldDefinition],
                            endpoint: String = "POST /v3/marketing/field_definitions") async throws -> SendGridFieldDefinition {
        if let existing = known.first(where: { $0.name.lowercased() == name.lowercased() }) {
            try Self.check(existing, wanted: kind, endpoint: endpoint)
            return existing
        }
        do {
            return try await createField(name: name, kind: kind)
        } catch let error as SendGridError where error.kind == .badRequest {
            // A retried create whose first reply was lost finds the field already there.
            if let now = try await fieldDefinitions().first(where: { $0.name.lowercased() == name.lowercased() }) {
                try Self.check(now, wanted: kind, endpoint: endpoint)
                return now
            }
            throw error
        }
    }

    private static func check(_ existing: SendGridFieldDefinition, wanted: SendGridFieldKind, endpoint: String) throws {
        if existing.isReadOnly {
            throw SendGridError(kind: .fieldTypeConflict,
                                message: "field '\(existing.name)' is a read-only SendGrid reserved field; map the property to another name",
                                endpoint: endpoint)
        }
        if existing.fieldType.lowercased() != wanted.rawValue.lowercased() {
            let what = existing.isReserved ? "a reserved field" : "a custom field"
            throw SendGridError(kind: .fieldTypeConflict,
                                message: "field type conflict: '\(existing.name)' exists in SendGrid as \(what) of type \(existing.fieldType), but the connection maps it as \(wanted.rawValue); change its `type` or map it to another name",
                                endpoint: endpoint)
        }
    }

    /// The list named `name`, created if missing.
    public func ensureList(name: String) async throws -> SendGridList {
        if let list = try await lists().first(where: { $0.name == name }) { return list }
        do {
            return try await createList(name: name)
        } catch let error as SendGridError where error.kind == .badRequest {
            if let list = try await lists().first(where: { $0.name == name }) { return list }
            throw error
        }
    }

    /// The segment named `name` with `queryDSL`: found and kept, found and updated, or created; never duplicated.
    public func ensureSegment(name: String, queryDSL: String, known: [SendGridSegment]) async throws -> SendGridSegment {
        if let existing = known.first(where: { $0.name == name }) {
            if existing.queryDSL == queryDSL { return existing }
            return try await updateSegment(id: existing.id, queryDSL: queryDSL)
        }
        do {
            return try await createSegment(name: name, queryDSL: queryDSL)
        } catch let error as SendGridError where error.kind == .badRequest {
            if let existing = try await segments().first(where: { $0.name == name }) {
                return existing.queryDSL == queryDSL ? existing : try await updateSegment(id: existing.id, queryDSL: queryDSL)
            }
            throw error
        }
    }
}
