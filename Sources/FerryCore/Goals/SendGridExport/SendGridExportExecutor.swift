import Foundation
import GRDB
import Logging

/// The SendGrid export goal: segments' members → contacts with a membership field, one SendGrid segment each.
public struct SendGridExportExecutor: GoalExecutor {
    /// Writable reserved fields sent at the top level of a contact (all Text), and their length caps.
    static let writableReserved: [String: Int] = [
        "first_name": 50, "last_name": 50, "address_line_1": 100, "address_line_2": 100, "city": 60,
        "state_province_region": 50, "postal_code": 60, "country": 50,
    ]

    public let goal: SendGridExportGoal
    public let api: any SendGridAPI
    public let batcher: SendGridBatcher

    public init(goal: SendGridExportGoal, api: any SendGridAPI, batcher: SendGridBatcher = SendGridBatcher()) {
        self.goal = goal
        self.api = api
        self.batcher = batcher
    }

    /// The executor on the real API, for `destination` over `transport`.
    public static func live(goal: SendGridExportGoal, destination: SendGridDestination,
                            transport: any HTTPTransport) -> SendGridExportExecutor {
        let client = SendGridClient(configuration: .init(apiKey: destination.apiKey.value,
                                                         apiKeyVariable: destination.apiKey.variable,
                                                         baseURL: destination.baseURL),
                                    transport: transport)
        return SendGridExportExecutor(goal: goal, api: client)
    }

    public func run(in context: GoalContext) async throws {
        let connection = context.connection
        let known = Set(context.segments.map(\.name))
        if let missing = goal.segments.first(where: { !known.contains($0) }) {
            throw GoalFailure("segment '\(missing)' is not defined in segments.yaml")
        }
        let sync = SendGridSyncStore(database: context.database, connection: connection.name)
        if !context.isDryRun {
            // Time-based rules (within_days) move on their own; membership is read as of this run.
            try context.ensureSegmentsCurrent()
        }
        let (plan, profiles) = try makePlan(context: context, sync: sync)
        await context.recorder.count { $0.read = plan.items.count + plan.skipped.count }
        if context.isDryRun {
            await report(plan: plan, profiles: profiles, context: context)
            return
        }
        try sync.dequeue(plan.obsoleteOutbox)
        let skipped = plan.skipped.count
        await context.recorder.count { $0.skipped += skipped }
        for skip in plan.skipped {
            context.logger.debug("skipped", metadata: ["profile": "\(skip.profileID)", "reason": "\(skip.reason)"])
        }
        if !plan.skipped.isEmpty {
            let reasons = plan.skippedByReason.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
            context.logger.info("skipped profiles", metadata: ["by_reason": "\(reasons)"])
        }

        let fields = try await setUpFields()
        var listIDs: [String] = []
        if let list = goal.list { listIDs = [try await api.ensureList(name: list).id] }
        let existingSegments = try await api.segments()
        for segment in goal.segments {
            _ = try await api.ensureSegment(name: SendGridMembership.segmentName(segment),
                                            queryDSL: SendGridMembership.queryDSL(field: goal.membershipField, segment: segment),
                                            known: existingSegments)
        }
        guard !plan.items.isEmpty else { return }

        // Bodies are built one at a time, and batch N+1 is uploaded before waiting on batch N's import job:
        // SendGrid works on one job while the next body is encoded and sent. Sync state still advances per
        // batch only once its own job has succeeded.
        var stream = batcher.stream(plan.items.lazy.map { contact(for: $0, profile: profiles[$0.pk], fields: fields) }.makeIterator(),
                                    listIDs: listIDs)
        var failed: [(pk: Int64, reason: String)] = []
        var done = 0
        var inFlight: (items: [SendGridExportPlan.Item], jobID: String)?
        while true {
            try Task.checkCancellation()
            let next = stream.next()
            for index in stream.takeOversized() {
                let item = plan.items[index]
                let reason = "contact larger than SendGrid's 6 MB request limit"
                failed.append((item.pk, reason))
                await fail(item, reason: reason, context: context)
            }
            guard let batch = next else { break }
            let items = batch.indices.map { plan.items[$0] }
            do {
                let jobID = try await api.upsertContacts(body: batch.body)
                if let previous = inFlight {
                    inFlight = nil
                    try await finish(previous.items, jobID: previous.jobID, total: plan.items.count, sync: sync, context: context,
                                     failed: &failed, done: &done)
                }
                inFlight = (items, jobID)
            } catch let error as SendGridError where !error.isFatal {
                try await refused(items, error: error, total: plan.items.count, context: context, failed: &failed, done: &done)
            }
        }
        if let last = inFlight {
            try await finish(last.items, jobID: last.jobID, total: plan.items.count, sync: sync, context: context,
                             failed: &failed, done: &done)
        }
        try sync.enqueue(failed, at: context.now)
    }

    /// Waits for one batch's import job and settles it; a job that cannot be read fails only that batch.
    private func finish(_ items: [SendGridExportPlan.Item], jobID: String, total: Int, sync: SendGridSyncStore, context: GoalContext,
                        failed: inout [(pk: Int64, reason: String)], done: inout Int) async throws {
        do {
            let job = try await api.waitForImport(id: jobID)
            try await settle(items: items, job: job, sync: sync, context: context, failed: &failed)
        } catch let error as SendGridError where !error.isFatal {
            try await refused(items, error: error, total: total, context: context, failed: &failed, done: &done)
            return
        }
        done += items.count
        await context.progress.progress(label: "contacts", done: done, total: total)
        try await context.recorder.flush()
    }

    /// A batch not accepted after the transport's retries: every row is kept for the next run.
    private func refused(_ items: [SendGridExportPlan.Item], error: SendGridError, total: Int, context: GoalContext,
                         failed: inout [(pk: Int64, reason: String)], done: inout Int) async throws {
        context.logger.warning("batch not accepted", metadata: ["error": "\(error)", "contacts": "\(items.count)"])
        for item in items {
            failed.append((item.pk, error.message))
            await fail(item, reason: error.description, context: context)
        }
        done += items.count
        await context.progress.progress(label: "contacts", done: done, total: total)
        try await context.recorder.flush()
    }

    // MARK: - Steps

    private func makePlan(context: GoalContext, sync: SendGridSyncStore) throws -> (SendGridExportPlan, [Int64: Profile]) {
        let synced = try sync.synced()
        let outbox = try sync.outbox().map(\.pk)
        let configured = goal.segments
        let (members, profiles) = try context.database.writer.read { db -> ([Int64: Set<String>], [Int64: Profile]) in
            var members: [Int64: Set<String>] = [:]
            let placeholders = configured.map { _ in "?" }.joined(separator: ",")
            for row in try Row.fetchAll(db, sql: "SELECT segment, profile_pk FROM segment_member WHERE segment IN (\(placeholders))",
                                        arguments: StatementArguments(configured)) {
                members[row["profile_pk"], default: []].insert(row["segment"])
            }
            // One pass over the members' rows, decoding only the properties the plan and the contacts read;
            // then the few others (leavers, the outbox) one by one.
            var profiles: [Int64: Profile] = [:]
            profiles.reserveCapacity(members.count)
            let keys = PropertyKeys(neededProperties)
            func read(_ row: Row) throws -> Profile {
                let properties = try row.decodedProperties(atIndex: 2, keys: keys)
                return Profile(id: row[1], properties: properties)
            }
            let rows = try Row.fetchCursor(db, sql: """
                SELECT p.pk, p.id, p.properties FROM profile p
                WHERE p.pk IN (SELECT profile_pk FROM segment_member WHERE segment IN (\(placeholders)))
                """, arguments: StatementArguments(configured))
            while let row = try rows.next() { profiles[row[0]] = try read(row) }
            let single = try db.cachedStatement(sql: "SELECT pk, id, properties FROM profile WHERE pk = ?")
            for pk in Set(synced.keys).union(outbox) where profiles[pk] == nil {
                let rows = try Row.fetchCursor(single, arguments: [pk])
                if let row = try rows.next() { profiles[pk] = try read(row) }
            }
            return (members, profiles)
        }
        let plan = SendGridExportPlan.make(configured: configured, members: members, profiles: profiles, synced: synced,
                                           outbox: outbox, emailProperty: goal.emailProperty,
                                           objectives: context.connection.objectives)
        return (plan, profiles)
    }

    /// Every property the plan and the contacts read: the rest of a profile is never decoded.
    var neededProperties: Set<String> {
        var keys: Set<String> = [goal.emailProperty, Profile.objectivesProperty]
        if let p = goal.firstNameProperty { keys.insert(p) }
        if let p = goal.lastNameProperty { keys.insert(p) }
        for mapping in goal.fields { keys.insert(mapping.property) }
        return keys
    }

    /// The membership field and every mapped custom field, by name; created when missing.
    private func setUpFields() async throws -> [String: SendGridFieldDefinition] {
        var known = try await api.fieldDefinitions()
        var result: [String: SendGridFieldDefinition] = [:]
        var wanted: [(String, SendGridFieldKind)] = [(goal.membershipField, .text)]
        wanted += goal.fields.map { ($0.to, SendGridFieldKind($0.type)) }
        for (name, kind) in wanted where result[name] == nil {
            let field = try await api.ensureField(name: name, kind: kind, known: known)
            if !known.contains(field) { known.append(field) }
            result[name] = field
        }
        return result
    }

    func contact(for item: SendGridExportPlan.Item, profile: Profile?, fields: [String: SendGridFieldDefinition]) -> SendGridContact {
        var contact = SendGridContact(email: item.email)
        if let field = fields[goal.membershipField] { contact.customFields[field.id] = .string(item.membership) }
        guard !item.isLeaver || !item.membership.isEmpty, let profile else { return contact }
        func text(_ property: String) -> String? {
            let values = profile[property]
            return values.isEmpty ? nil : values.map(\.description).joined(separator: ",")
        }
        if let p = goal.firstNameProperty, let v = text(p) { contact.reserved["first_name"] = .string(String(v.prefix(50))) }
        if let p = goal.lastNameProperty, let v = text(p) { contact.reserved["last_name"] = .string(String(v.prefix(50))) }
        for mapping in goal.fields {
            guard let definition = fields[mapping.to], let value = Self.value(profile[mapping.property], type: mapping.type) else { continue }
            if definition.isReserved {
                if let cap = Self.writableReserved[definition.name.lowercased()], case .string(let s) = value {
                    contact.reserved[definition.name.lowercased()] = .string(String(s.prefix(cap)))
                }
            } else {
                contact.customFields[definition.id] = value
            }
        }
        return contact
    }

    /// A property's values as one custom field value of `type`; nil when it has none of that type.
    static func value(_ values: [PropertyValue], type: SendGridFieldType) -> JSONValue? {
        switch type {
        case .text:
            return values.isEmpty ? nil : .string(values.map(\.description).joined(separator: ","))
        case .number:
            return values.lazy.compactMap(\.numberValue).first.map { .number($0) }
        case .date:
            return values.lazy.compactMap(\.dateValue).first.map { .string(ISO8601.format($0)) }
        }
    }

    /// Applies a finished import job: rejected contacts fail (and wait in the outbox), the rest advance the sync state.
    private func settle(items: [SendGridExportPlan.Item], job: SendGridImportJob, sync: SendGridSyncStore,
                        context: GoalContext, failed: inout [(pk: Int64, reason: String)]) async throws {
        if job.status == .failed && job.errors.isEmpty {
            for item in items {
                failed.append((item.pk, "import job \(job.id) failed"))
                await fail(item, reason: "SendGrid import job \(job.id) failed", context: context)
            }
            return
        }
        var rejected: [String: String] = [:]
        // An unreadable errors file must not lose the batch's accepted rows: fall back to "unattributed" below.
        var errors = job.errors
        do {
            errors = try await api.importErrors(of: job)
        } catch {
            context.logger.warning("the import job's errors file could not be read; its failed rows are not attributed",
                                   metadata: ["job": "\(job.id)", "error": "\(error)"])
        }
        for error in errors { if let email = error.email?.lowercased() { rejected[email] = error.message } }
        let unattributed = job.erroredCount > 0 && rejected.isEmpty
        var accepted: [(pk: Int64, synced: SendGridSyncStore.Synced)] = []
        for item in items {
            if let message = rejected[item.email] ?? (unattributed ? "rejected by SendGrid (see the job's errors file)" : nil) {
                failed.append((item.pk, message))
                await fail(item, reason: "\(message) (\(item.email))", context: context)
                continue
            }
            if item.recordsSync {
                accepted.append((item.pk, SendGridSyncStore.Synced(email: item.email, membership: item.membership)))
            }
        }
        try sync.accept(accepted, at: context.now)
        let rejectedEmails = Set(rejected.keys)
        let done = items.filter { !rejectedEmails.contains($0.email) && !unattributed }
        let createdCount = job.createdCount, updatedCount = job.updatedCount, exported = done.count
        await context.recorder.count {
            $0.exported += exported
            $0.created += createdCount
            $0.updated += updatedCount
        }
        for item in done {
            let action = item.membership.isEmpty ? "membership cleared" : "upserted (\(item.membership))"
            await context.recorder.touch(TouchedProfile(profileID: item.profileID, identifier: item.email, action: action))
        }
    }

    private func fail(_ item: SendGridExportPlan.Item, reason: String, context: GoalContext) async {
        await context.recorder.fail(RunRowError(location: "profile \(item.profileID)", reason: reason))
        await context.recorder.touch(TouchedProfile(profileID: item.profileID, identifier: item.email, action: "failed"))
    }

    /// The dry-run plan: counts per outcome and up to five samples of each, nothing sent.
    private func report(plan: SendGridExportPlan, profiles: [Int64: Profile], context: GoalContext) async {
        let upserts = plan.items.filter { !$0.membership.isEmpty }
        let clears = plan.items.filter { $0.membership.isEmpty }
        await context.recorder.count {
            $0.exported = upserts.count
            $0.removed = clears.count
            $0.skipped = plan.skipped.count
        }
        var lines = ["plan for \(goal.segments.joined(separator: ", ")) → SendGrid (dry run, nothing sent):",
                     "  upsert \(upserts.count) contacts", "  clear the membership of \(clears.count) contacts"]
        for (reason, n) in plan.skippedByReason.sorted(by: { $0.key < $1.key }) { lines.append("  skip \(n) (\(reason))") }
        for item in upserts.prefix(5) {
            lines.append("  e.g. upsert \(item.profileID) <\(item.email)> \(goal.membershipField)=\(item.membership)")
            await context.recorder.touch(TouchedProfile(profileID: item.profileID, identifier: item.email,
                                                        action: "would upsert (\(item.membership))"))
        }
        for item in clears.prefix(5) {
            lines.append("  e.g. clear \(item.profileID) <\(item.email)>")
            await context.recorder.touch(TouchedProfile(profileID: item.profileID, identifier: item.email, action: "would clear membership"))
        }
        for skip in plan.skipped.prefix(5) { lines.append("  e.g. skip \(skip.profileID): \(skip.reason)") }
        // The plan goes into the run's notes: `ferry run --dry-run` prints them, `ferry history show` keeps them.
        for line in lines { await context.recorder.note(line) }
        context.logger.info("dry run plan", metadata: ["upsert": "\(upserts.count)", "clear": "\(clears.count)",
                                                       "skipped": "\(plan.skipped.count)"])
    }
}
