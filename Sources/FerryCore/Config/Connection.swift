import Foundation

/// A secret read from the environment: usable by clients, never printed.
public struct Secret: Hashable, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The secret itself; pass it to the wire, never to a log or message.
    public let value: String
    /// The environment variable it came from, which is safe to name in messages.
    public let variable: String

    public init(value: String, variable: String) {
        self.value = value
        self.variable = variable
    }

    public var description: String { "${\(variable)}" }
    public var debugDescription: String { description }
}

/// What to do with fire times missed while ferry was not running.
public enum CatchUpPolicy: String, Hashable, Sendable, CaseIterable {
    /// Run one catch-up run for all missed fires.
    case once
    /// Record the missed fires as skipped.
    case skip
}

/// When to send a notification email about a finished run.
public enum NotifyEvent: String, Hashable, Sendable, CaseIterable {
    case failure, success
}

/// Who to email about finished runs, and for which outcomes.
public struct NotifySettings: Hashable, Sendable {
    public var email: [String]
    public var on: Set<NotifyEvent>
}

/// Sailthru API credentials and endpoint.
public struct SailthruDestination: Hashable, Sendable {
    public var apiKey: Secret
    public var apiSecret: Secret
    public var baseURL: String
}

/// SendGrid API credentials and endpoint.
public struct SendGridDestination: Hashable, Sendable {
    public var apiKey: Secret
    public var baseURL: String
}

/// How ferry proves who it is to an SFTP server.
public enum SFTPAuthentication: Hashable, Sendable {
    case password(Secret)
    case privateKey(path: String, passphrase: Secret?)
}

/// How ferry checks the SFTP server's host key.
public enum HostKeyCheck: Hashable, Sendable {
    case knownHosts(path: String)
    case sha256(String)
}

/// Mapp's SFTP drop: where files go and how to reach it safely.
public struct MappDestination: Hashable, Sendable {
    public var host: String
    public var port: Int
    public var username: String
    public var authentication: SFTPAuthentication
    public var folder: String
    public var hostKey: HostKeyCheck
}

/// The platform a connection talks to.
public enum Destination: Hashable, Sendable {
    case sailthru(SailthruDestination)
    case sendgrid(SendGridDestination)
    case mapp(MappDestination)

    /// `sailthru`, `sendgrid` or `mapp`.
    public var typeName: String {
        switch self {
        case .sailthru: return "sailthru"
        case .sendgrid: return "sendgrid"
        case .mapp: return "mapp"
        }
    }
}

/// How an imported value combines with what the profile already holds.
public enum MergeMode: String, Hashable, Sendable, CaseIterable {
    case set
    case setIfEmpty = "set_if_empty"
    case add
    case sum
}

/// One imported column and the property it merges into.
public struct ImportField: Hashable, Sendable {
    public var from: String
    public var to: String
    public var mode: MergeMode
}

/// A platform column that links a row to a profile through an identifier property.
public struct IdentifierLink: Hashable, Sendable {
    public var column: String
    public var property: String
}

/// Sailthru lists → profiles.
public struct SailthruImportGoal: Hashable, Sendable {
    public var lists: [String]
    public var match: [IdentifierLink]
    public var createProfiles: Bool
    public var listNameProperty: String?
    public var fields: [ImportField]
}

/// Where an exported value comes from.
public enum ExportValue: Hashable, Sendable {
    case property(String)
    /// All the profile's segments (nil), or only these.
    case segments([String]?)
    case objectives
    case profileID
    case text(String)
}

/// One exported value and the platform field it sets.
public struct ExportField: Hashable, Sendable {
    public var value: ExportValue
    public var to: String
}

/// Sailthru's user key types an export can match on.
public enum SailthruKey: String, Hashable, Sendable, CaseIterable {
    case email, sid, extid
}

/// How a Sailthru export sends users.
public enum SailthruExportMethod: String, Hashable, Sendable, CaseIterable {
    /// Batched `update` jobs of at most 1000 users.
    case job
    /// One `/user` call per profile.
    case user
}

/// Segment → Sailthru users and lists.
public struct SailthruExportGoal: Hashable, Sendable {
    public var segment: String
    /// The profile property holding the identifier, and the Sailthru key type it is.
    public var matchProperty: String
    public var matchKey: SailthruKey
    public var method: SailthruExportMethod
    public var createUsers: Bool
    public var existingProfiles: Bool
    public var lists: [String]
    public var removeWhenLeaving: Bool
    public var maxRemovalFraction: Double
    public var fields: [ExportField]
}

/// SendGrid custom field types.
public enum SendGridFieldType: String, Hashable, Sendable, CaseIterable {
    case text, number, date
}

/// One property exported to a SendGrid custom field.
public struct SendGridField: Hashable, Sendable {
    public var property: String
    public var to: String
    public var type: SendGridFieldType
}

/// Segments → SendGrid contacts, membership field and segments.
public struct SendGridExportGoal: Hashable, Sendable {
    public var segments: [String]
    public var list: String?
    public var membershipField: String
    public var emailProperty: String
    public var firstNameProperty: String?
    public var lastNameProperty: String?
    public var fields: [SendGridField]
}

/// One column of a Mapp CSV export.
public struct MappColumn: Hashable, Sendable {
    public var property: String
    public var header: String
}

/// Segment → Mapp CSV over SFTP.
public struct MappExportGoal: Hashable, Sendable {
    public var segment: String
    public var filePrefix: String
    public var columns: [MappColumn]
}

/// One goal of a connection.
public enum Goal: Hashable, Sendable {
    case sailthruImport(SailthruImportGoal)
    case sailthruExport(SailthruExportGoal)
    case sendgridExport(SendGridExportGoal)
    case mappExport(MappExportGoal)

    /// Whether the goal pulls data in; imports run before exports.
    public var isImport: Bool {
        if case .sailthruImport = self { return true }
        return false
    }

    /// A short label for run history: `import Newsletter`, `export newsletter`.
    public var label: String {
        switch self {
        case .sailthruImport(let g): return "import \(g.lists.joined(separator: ", "))"
        case .sailthruExport(let g): return "export \(g.segment)"
        case .sendgridExport(let g): return "export \(g.segments.joined(separator: ", "))"
        case .mappExport(let g): return "export \(g.segment)"
        }
    }

    /// The segments the goal reads.
    public var segments: [String] {
        switch self {
        case .sailthruImport: return []
        case .sailthruExport(let g): return [g.segment]
        case .sendgridExport(let g): return g.segments
        case .mappExport(let g): return [g.segment]
        }
    }
}

/// A validated connection file.
public struct Connection: Hashable, Sendable {
    public var name: String
    public var description: String?
    public var isEnabled: Bool
    public var schedule: Schedule
    public var catchUp: CatchUpPolicy
    public var notify: NotifySettings?
    public var objectives: [String]
    public var destination: Destination
    /// Imports first, then exports, each in file order.
    public var goals: [Goal]
    /// The file it was read from.
    public var file: String
}
