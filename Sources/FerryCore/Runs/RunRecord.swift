import Foundation

/// What started a run.
public enum RunTrigger: String, Codable, Hashable, Sendable {
    case schedule
    case manual
    case catchUp = "catch-up"
}

/// Where a run is, or how it ended.
public enum RunStatus: String, Codable, Hashable, Sendable, CaseIterable {
    case running, succeeded, partial, failed, interrupted, skipped

    /// Whether the run has ended.
    public var isFinal: Bool { self != .running }
}

/// A run's counters, as DESIGN.md "Run history" lists them.
public struct RunCounts: Codable, Hashable, Sendable {
    public var read = 0
    public var created = 0
    public var updated = 0
    public var unchanged = 0
    public var exported = 0
    public var removed = 0
    public var skipped = 0
    public var failed = 0

    public init() {}

    /// `read 10 · created 2 · …`, only the non-zero ones (or `—`).
    public var summary: String {
        let parts = [("read", read), ("created", created), ("updated", updated), ("unchanged", unchanged),
                     ("exported", exported), ("removed", removed), ("skipped", skipped), ("failed", failed)]
            .filter { $0.1 != 0 }.map { "\($0.0) \($0.1)" }
        return parts.isEmpty ? "—" : parts.joined(separator: " · ")
    }
}

/// A profile a run touched: its id, the identifier it was matched by, and what was done.
public struct TouchedProfile: Codable, Hashable, Sendable {
    public var profileID: String
    public var identifier: String
    public var action: String

    public init(profileID: String, identifier: String, action: String) {
        self.profileID = profileID
        self.identifier = identifier
        self.action = action
    }
}

/// A row or profile a run could not process, and why.
public struct RunRowError: Codable, Hashable, Sendable {
    /// Where it came from: `line 12`, `profile p7`.
    public var location: String
    public var reason: String

    public init(location: String, reason: String) {
        self.location = location
        self.reason = reason
    }
}

/// One run of one goal of a connection.
public struct RunRecord: Hashable, Sendable {
    public var id: Int64
    public var connection: String
    public var goal: String
    public var trigger: RunTrigger
    public var scheduledAt: Date?
    public var startedAt: Date
    public var endedAt: Date?
    public var status: RunStatus
    public var counts: RunCounts
    public var error: String?
    /// The first row errors (at most `RunLedger.maximumRowErrors`); `counts.failed` has the total.
    public var rowErrors: [RunRowError]
    /// The last five profiles touched, oldest first.
    public var touched: [TouchedProfile]
    /// What the run produced beyond counts, for people: files written, a dry run's plan.
    public var notes: [String] = []
}
