import Foundation

/// Who a SendGrid export sends, and why the others are skipped: pure, so it is tested without a store.
public struct SendGridExportPlan: Sendable {
    /// One contact to send.
    public struct Item: Sendable, Hashable {
        public var pk: Int64
        public var profileID: String
        public var email: String
        /// The membership field's new value ("" clears it for a profile that left every configured segment).
        public var membership: String
        /// A leaver is sent with only its email and the membership field.
        public var isLeaver: Bool
        /// Whether it waited in the outbox (it goes first).
        public var fromOutbox: Bool
        /// False for the extra item that clears a contact under an email the profile no longer has:
        /// the sync row follows the profile's current email, sent by its own item.
        public var recordsSync: Bool = true
    }

    /// A profile in a configured segment that is not sent.
    public struct Skip: Sendable, Hashable {
        public var pk: Int64
        public var profileID: String
        public var reason: String
    }

    public var items: [Item] = []
    public var skipped: [Skip] = []
    /// Outbox entries that no longer need sending.
    public var obsoleteOutbox: [Int64] = []

    public init() {}

    /// The normalised email of a profile, if it has one.
    public static func email(of profile: Profile, property: String) -> String? {
        guard let raw = profile[property].first?.description else { return nil }
        let text = (needsTrimming(raw) ? raw.trimmingCharacters(in: .whitespacesAndNewlines) : raw).lowercased()
        return text.isEmpty ? nil : text
    }

    /// Whether either end may be whitespace: a printable ASCII byte at both ends cannot be, which spares
    /// Foundation's trimming (a tenth of the export's CPU) for nearly every email.
    static func needsTrimming(_ text: String) -> Bool {
        guard let first = text.utf8.first, let last = text.utf8.last else { return false }
        return !((0x21..<0x7F).contains(first) && (0x21..<0x7F).contains(last))
    }

    /// Builds the plan.
    /// - Parameters:
    ///   - configured: the goal's segments, in configured order.
    ///   - members: each profile in any configured segment, with the configured segments it is in.
    ///   - profiles: those profiles (and the outbox's and synced ones that still exist).
    ///   - synced: what each profile's contact last got.
    ///   - outbox: profiles whose last send failed, oldest first.
    ///   - objectives: when not empty, only profiles consenting to one of these are sent.
    public static func make(configured: [String], members: [Int64: Set<String>], profiles: [Int64: Profile],
                            synced: [Int64: SendGridSyncStore.Synced], outbox: [Int64], emailProperty: String,
                            objectives: [String]) -> SendGridExportPlan {
        var plan = SendGridExportPlan()
        var seenEmails: Set<String> = []
        var planned: Set<Int64> = []
        let outboxSet = Set(outbox)
        // Outbox first (in queue order), then members by pk, then leavers by pk: stable and retried first.
        let order = outbox + members.keys.sorted().filter { !outboxSet.contains($0) }
            + synced.keys.sorted().filter { members[$0] == nil && !outboxSet.contains($0) }
        for pk in order where !planned.contains(pk) {
            planned.insert(pk)
            let profile = profiles[pk]
            let previous = synced[pk]
            let segments = members[pk] ?? []
            var reason: String?
            var email = profile.flatMap { Self.email(of: $0, property: emailProperty) }
            if profile == nil { reason = "profile deleted" }
            else if email == nil { reason = "no email" }
            else if !objectives.isEmpty, Set(profile!.objectives).isDisjoint(with: objectives) { reason = "no consent" }
            var membership = SendGridMembership.value(configured: configured, memberOf: segments)
            if reason != nil {
                // Someone whose contact still lists segments gets it cleared, by the email it was sent with.
                if let previous, !previous.membership.isEmpty {
                    email = previous.email
                    membership = ""
                    reason = nil
                } else {
                    if !segments.isEmpty, let profile {
                        plan.skipped.append(Skip(pk: pk, profileID: profile.id, reason: reason!))
                    }
                    if outboxSet.contains(pk) { plan.obsoleteOutbox.append(pk) }
                    continue
                }
            }
            guard let email else { continue }
            if membership.isEmpty && (previous == nil || previous!.membership.isEmpty) {
                // Left before it was ever sent with a segment: nothing to clear.
                if outboxSet.contains(pk) { plan.obsoleteOutbox.append(pk) }
                continue
            }
            if seenEmails.contains(email) {
                plan.skipped.append(Skip(pk: pk, profileID: profile?.id ?? "pk \(pk)", reason: "duplicate email"))
                continue
            }
            seenEmails.insert(email)
            plan.items.append(Item(pk: pk, profileID: profile?.id ?? "pk \(pk)", email: email, membership: membership,
                                   isLeaver: segments.isEmpty || membership.isEmpty, fromOutbox: outboxSet.contains(pk)))
            // The profile's email changed: the contact under the old one still lists segments; clear it too.
            if let previous, previous.email != email, !previous.membership.isEmpty, !seenEmails.contains(previous.email) {
                seenEmails.insert(previous.email)
                plan.items.append(Item(pk: pk, profileID: profile?.id ?? "pk \(pk)", email: previous.email, membership: "",
                                       isLeaver: true, fromOutbox: outboxSet.contains(pk), recordsSync: false))
            }
        }
        return plan
    }

    /// Skips counted by reason, e.g. `["no email": 3]`.
    public var skippedByReason: [String: Int] {
        skipped.reduce(into: [:]) { $0[$1.reason, default: 0] += 1 }
    }
}
