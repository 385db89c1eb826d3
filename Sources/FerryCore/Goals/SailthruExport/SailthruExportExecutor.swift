import Foundation
import GRDB
import Logging

/// Segment → Sailthru users and lists (DESIGN.md "Sailthru export"), through update jobs or `/user` calls.
public struct SailthruExportExecutor: GoalExecutor {
    public var goal: SailthruExportGoal
    public var api: any SailthruAPI
    /// Users per update job (Sailthru batches are at most 1000).
    public var batchSize: Int
    /// Update jobs in flight at once.
    public var jobConcurrency: Int
    /// `/user` calls in flight at once.
    public var userConcurrency: Int
    /// How long a "not in Sailthru" answer is trusted before the user is looked up again.
    public var negativeLookupTTL: TimeInterval

    /// A run removing more than this many users of a list (and more than `max_removal_fraction`) is refused.
    public static let massRemovalMinimum = 1000

    public init(goal: SailthruExportGoal, api: any SailthruAPI, batchSize: Int = 1000, jobConcurrency: Int = 3,
                userConcurrency: Int = 8, negativeLookupTTL: TimeInterval = 86_400) {
        self.goal = goal
        self.api = api
        self.batchSize = max(1, min(batchSize, 1000))
        self.jobConcurrency = max(1, jobConcurrency)
        self.userConcurrency = max(1, userConcurrency)
        self.negativeLookupTTL = negativeLookupTTL
    }

    /// One user line to send.
    struct Item: Sendable {
        enum Operation: String, Sendable { case add, update, remove }
        var pk: Int64
        var profileID: String
        var identifier: String
        var operation: Operation
        /// Lists to take the user off (removals).
        var lists: [String]
        /// Whether acceptance changes the ledger (false for taking an old identifier off after it changed,
        /// or for a user that may have been added by an unconfirmed call).
        var touchesLedger: Bool

        var label: String { "\(profileID) (\(identifier))" }
    }

    /// How one item ended.
    enum Outcome: Sendable {
        case accepted
        case failed(reason: String, retryable: Bool)
    }

    /// A profile that passed every filter.
    struct Candidate: Sendable {
        var pk: Int64
        var profileID: String
        var identifier: String
    }

    public func run(in context: GoalContext) async throws {
        let connection = context.connection.name
        let state = ExportState(database: context.database, connection: connection)
        let logger = context.logger
        try context.ensureSegmentsCurrent()
        guard context.segments.contains(where: { $0.name == goal.segment }) else {
            throw GoalFailure("segment '\(goal.segment)' is not defined in segments.yaml")
        }
        var plan = ExportPlan()
        // The three sending outcomes always show, first, even when zero.
        for name in ["add", "update", "remove"] { plan.ensure(name) }

        // existing_profiles: false — the first run only records who is already there.
        if !goal.existingProfiles {
            if try state.baselineTaken(segment: goal.segment) == nil {
                if context.isDryRun {
                    let size = try state.memberCount(segment: goal.segment)
                    plan.notes.append("first run: \(size) current members of '\(goal.segment)' would become the baseline (existing_profiles: false); nobody would be sent")
                    try await save(plan, context: context)
                    return
                }
                let size = try state.takeBaseline(segment: goal.segment, now: context.now)
                plan.notes.append("first run: recorded \(size) current members of '\(goal.segment)' as the baseline (existing_profiles: false); nobody was sent")
                logger.info("baseline recorded", metadata: ["members": "\(size)"])
                await context.recorder.count { $0.skipped += size }
                try await save(plan, context: context)
                return
            }
            if !context.isDryRun { try state.pruneBaseline(segment: goal.segment) }
        }

        // Who: segment members with an identifier, consenting, (known to exist), past the baseline.
        var (candidates, toCheck) = try await scan(context: context, state: state, plan: &plan)
        // Users whose existence could not be checked this run are neither sent nor taken off lists.
        var unresolved = Set<Int64>()
        if !toCheck.isEmpty {
            if context.isDryRun {
                for candidate in toCheck { plan.add("check in Sailthru first (create_users: false)", sample: candidate.profileIDLabel) }
            } else {
                let found = try await lookUp(toCheck, context: context, state: state, plan: &plan)
                candidates += found.found
                unresolved = found.unresolved
            }
        }

        // What to send: upserts of candidates, removals of leavers; unconfirmed users first.
        let ledger = try state.ledger(lists: goal.lists)
        if !context.isDryRun { try state.settleIntents() }
        let outbox = try state.outbox()
        // Only these users can have outbox rows to clear when accepted: this run's failures are not resent.
        let unconfirmed = Set(outbox.map { "\($0.pk)\u{1F}\($0.identifier)" })
        let items = plannedItems(candidates: candidates, unresolved: unresolved, ledger: ledger, outbox: outbox, plan: &plan)
        let skipped = plan.outcomes.filter { $0.name.hasPrefix("skip") }.reduce(0) { $0 + $1.count }
        await context.recorder.count { $0.skipped += skipped }
        for outcome in plan.outcomes where outcome.name.hasPrefix("skip") {
            logger.info("skipped", metadata: ["reason": "\(outcome.name)", "profiles": "\(outcome.count)"])
        }

        // The circuit breaker: a broken segment must not empty a list.
        if let refusal = massRemoval(items: items, ledger: ledger, allowed: context.allowsMassRemoval) {
            plan.notes.append(context.isDryRun ? "a real run would fail: \(refusal)" : refusal)
            try await save(plan, context: context)
            if !context.isDryRun { throw GoalFailure(refusal) }
            return
        }
        if context.isDryRun {
            plan.notes.insert("dry run: nothing was sent", at: 0)
            try await save(plan, context: context)
            logger.info("dry run plan", metadata: ["plan": "\(plan.outcomes.map { "\($0.name) \($0.count)" }.joined(separator: ", "))"])
            return
        }
        if !goal.removeWhenLeaving {
            // Unconfirmed users who are no longer eligible: nothing to do for them without removal.
            try await context.database.writer.write { db in
                let planned = Set(items.map { "\($0.pk)\u{1F}\($0.identifier)" })
                for entry in outbox where !planned.contains("\(entry.pk)\u{1F}\(entry.identifier)") {
                    try db.execute(sql: "DELETE FROM export_outbox WHERE connection = ? AND profile_pk = ? AND identifier = ?",
                                   arguments: [connection, entry.pk, entry.identifier])
                }
            }
        }

        try await ensureLists(context: context)

        // Send, a batch at a time; each batch commits its ledger changes with its progress.
        let batches = stride(from: 0, to: items.count, by: batchSize).map { Array(items[$0..<min($0 + batchSize, items.count)]) }
        let inFlight = goal.method == .job ? jobConcurrency : 1
        var done = 0
        // Users Sailthru accepted become known users once, after the batches (see ExportState.rememberFound).
        var found: [String] = []
        await context.progress.progress(label: "export \(goal.segment)", done: 0, total: items.count)
        do {
            try await withThrowingTaskGroup(of: Sent.self) { group in
                var running = 0
                for batch in batches {
                    if running == inFlight, let finished = try await group.next() {
                        running -= 1
                        done += finished.handled
                        found += finished.found
                        await context.progress.progress(label: "export \(goal.segment)", done: done, total: items.count)
                    }
                    group.addTask { try await self.send(batch, unconfirmed: unconfirmed, context: context) }
                    running += 1
                }
                while let finished = try await group.next() {
                    done += finished.handled
                    found += finished.found
                    await context.progress.progress(label: "export \(goal.segment)", done: done, total: items.count)
                }
            }
        } catch {
            try? state.rememberFound(found, key: goal.matchKey.rawValue, now: context.now)
            throw error
        }
        try state.rememberFound(found, key: goal.matchKey.rawValue, now: context.now)
        try await save(plan, context: context)
    }

    // MARK: - Planning

    /// One segment member as the scan read it, before it is sorted into candidates and skips.
    struct Member: Sendable {
        var pk: Int64
        var enteredAt: Double
        var profileID: String
        var identifier: String
        var inBaseline: Bool
        var consents: Bool
    }

    /// Reads the segment's members (one decoded profile at a time) and sorts them into candidates,
    /// users to look up first, and skips by reason, in the order they entered the segment.
    func scan(context: GoalContext, state: ExportState, plan: inout ExportPlan) async throws -> ([Candidate], [Candidate]) {
        let objectives = Set(context.connection.objectives)
        let known = goal.createUsers ? [:] : try state.knownUsers(key: goal.matchKey.rawValue, now: context.now,
                                                                 negativeTTL: negativeLookupTTL)
        let ledgerIdentifiers = goal.createUsers ? [:] : try state.ledger(lists: goal.lists).mapValues(\.identifier)
        let members = try await scanMembers(context: context, objectives: objectives)
        var candidates: [Candidate] = []
        var toCheck: [Candidate] = []
        for member in members {
            if member.inBaseline {
                plan.add("skip (in the segment before the first run)", sample: member.profileID)
            } else if member.identifier.isEmpty {
                plan.add("skip (no \(goal.matchProperty))", sample: member.profileID)
            } else if !member.consents {
                plan.add("skip (no consent to \(context.connection.objectives.joined(separator: " or ")))",
                         sample: "\(member.profileID) (\(member.identifier))")
            } else {
                let candidate = Candidate(pk: member.pk, profileID: member.profileID, identifier: member.identifier)
                if goal.createUsers || ledgerIdentifiers[member.pk] == member.identifier || known[member.identifier] == true {
                    candidates.append(candidate)
                } else if known[member.identifier] == false {
                    plan.add("skip (not in Sailthru, create_users: false)", sample: candidate.profileIDLabel)
                } else {
                    toCheck.append(candidate)
                }
            }
        }
        return (candidates, toCheck)
    }

    /// The segment's members in the order they entered it (then by row key), with their identifier and consent.
    ///
    /// Rows come in row-key order and are sorted here: an `ORDER BY entered_at` made SQLite sort whole rows,
    /// stored properties included (a temporary B-tree of the segment's every document). The two halves of the
    /// row keys are read at once, on two reader connections: nothing is sent before the scan ends, so its
    /// decoding is the export's longest stretch on one core.
    func scanMembers(context: GoalContext, objectives: Set<String>) async throws -> [Member] {
        let segment = goal.segment
        let bounds = try await context.database.writer.read { db in
            try Row.fetchOne(db, sql: "SELECT MIN(profile_pk), MAX(profile_pk) FROM segment_member WHERE segment = ?",
                             arguments: [segment]).flatMap { row -> (Int64, Int64)? in
                guard let low = row[0] as Int64?, let high = row[1] as Int64? else { return nil }
                return (low, high)
            }
        }
        guard let (low, high) = bounds else { return [] }
        let middle = low + (high - low) / 2
        async let first = scanMembers(context: context, objectives: objectives, pks: low...middle)
        let second = middle < high ? try await scanMembers(context: context, objectives: objectives, pks: (middle + 1)...high) : []
        var members = try await first + second
        members.sort { ($0.enteredAt, $0.pk) < ($1.enteredAt, $1.pk) }
        return members
    }

    /// The members whose row keys are in `pks`, in row-key order.
    func scanMembers(context: GoalContext, objectives: Set<String>, pks: ClosedRange<Int64>) async throws -> [Member] {
        // Only the identifier and (when they filter) the objectives are read here: decoding whole profiles
        // was a tenth of the run.
        let keys: PropertyKeys = objectives.isEmpty ? [goal.matchProperty] : [goal.matchProperty, Profile.objectivesProperty]
        // The baseline only matters with existing_profiles: false; otherwise each row skips the lookup.
        let baseline = goal.existingProfiles ? "0" : """
            EXISTS (SELECT 1 FROM export_baseline b WHERE b.connection = ?1 AND b.segment = m.segment AND b.profile_pk = p.pk)
            """
        let (connection, segment, matchProperty) = (context.connection.name, goal.segment, goal.matchProperty)
        return try await context.database.writer.read { db in
            var members: [Member] = []
            let cursor = try Row.fetchCursor(db, sql: """
                SELECT p.pk, m.entered_at, p.id, p.properties, \(baseline) AS in_baseline
                FROM segment_member m JOIN profile p ON p.pk = m.profile_pk
                WHERE m.segment = ?2 AND m.profile_pk BETWEEN ?3 AND ?4
                """, arguments: [connection, segment, pks.lowerBound, pks.upperBound])
            while let row = try cursor.next() {
                let properties = try row.decodedProperties(atIndex: 3, keys: keys)
                let identifier = Self.trimmed(properties[matchProperty]?.first?.description ?? "")
                let consents = objectives.isEmpty
                    || !objectives.isDisjoint(with: (properties[Profile.objectivesProperty] ?? []).lazy.map(\.description))
                members.append(Member(pk: row[0], enteredAt: row[1], profileID: row[2], identifier: identifier,
                                      inBaseline: (row[4] as Int) != 0, consents: consents))
            }
            return members
        }
    }

    /// `create_users: false`: asks Sailthru once per unknown user whether it exists, and remembers the answer.
    func lookUp(_ candidates: [Candidate], context: GoalContext, state: ExportState,
                plan: inout ExportPlan) async throws -> (found: [Candidate], unresolved: Set<Int64>) {
        let key = goal.matchKey.rawValue
        let results = try await forEach(candidates, concurrency: userConcurrency) { candidate -> (Candidate, Bool?, String?) in
            do {
                _ = try await api.user(id: candidate.identifier, key: key)
                return (candidate, true, nil)
            } catch let error as SailthruError where error.kind == .userNotFound {
                return (candidate, false, nil)
            } catch {
                try Self.rethrowIfFatal(error)
                return (candidate, nil, String(describing: error))
            }
        }
        var found: [Candidate] = []
        var unresolved = Set<Int64>()
        try state.remember(key: key, answers: results.compactMap { candidate, exists, _ in exists.map { (candidate.identifier, $0) } },
                           now: context.now)
        for (candidate, exists, failure) in results {
            if let exists {
                if exists { found.append(candidate) }
                else { plan.add("skip (not in Sailthru, create_users: false)", sample: candidate.profileIDLabel) }
            } else {
                unresolved.insert(candidate.pk)
                await context.recorder.fail(RunRowError(location: "profile \(candidate.profileIDLabel)",
                                                        reason: "could not check whether the user exists: \(failure ?? "unknown error")"))
            }
        }
        return (found, unresolved)
    }

    /// Upserts for candidates, removals for ledger users no longer eligible, and a removal for every
    /// unconfirmed (outbox) user no other item covers, since its call may have reached Sailthru.
    func plannedItems(candidates: [Candidate], unresolved: Set<Int64> = [], ledger: [Int64: ExportState.LedgerEntry],
                      outbox: [ExportState.OutboxEntry], plan: inout ExportPlan) -> [Item] {
        let pending = Set(outbox.map(\.pk))
        let eligible = Set(candidates.map(\.pk)).union(unresolved)
        var first: [Item] = []
        var rest: [Item] = []
        for candidate in candidates {
            let entry = ledger[candidate.pk]
            // Without lists there is no ledger to tell new from known: every send counts as an update.
            let isNew = !goal.lists.isEmpty && !(entry?.lists.isSuperset(of: goal.lists) ?? false)
            let item = Item(pk: candidate.pk, profileID: candidate.profileID, identifier: candidate.identifier,
                            operation: isNew ? .add : .update, lists: [], touchesLedger: true)
            plan.add(item.operation.rawValue, sample: item.label)
            if pending.contains(candidate.pk) { first.append(item) } else { rest.append(item) }
            if let entry, entry.identifier != candidate.identifier, goal.removeWhenLeaving {
                // The identifier changed: the old user keeps ferry's lists unless taken off.
                let old = Item(pk: candidate.pk, profileID: candidate.profileID, identifier: entry.identifier,
                               operation: .remove, lists: entry.lists.sorted(), touchesLedger: false)
                plan.add("remove", sample: old.label)
                first.append(old)
            }
        }
        guard goal.removeWhenLeaving else { return first + rest }
        for (pk, entry) in ledger.sorted(by: { $0.key < $1.key }) where !eligible.contains(pk) {
            let item = Item(pk: pk, profileID: entry.profileID, identifier: entry.identifier, operation: .remove,
                            lists: entry.lists.sorted(), touchesLedger: true)
            plan.add("remove", sample: item.label)
            if pending.contains(pk) { first.append(item) } else { rest.append(item) }
        }
        var covered = Set((first + rest).map { "\($0.pk)\u{1F}\($0.identifier)" })
        for entry in outbox where !unresolved.contains(entry.pk) && !goal.lists.isEmpty {
            guard covered.insert("\(entry.pk)\u{1F}\(entry.identifier)").inserted else { continue }
            let item = Item(pk: entry.pk, profileID: entry.profileID, identifier: entry.identifier, operation: .remove,
                            lists: goal.lists, touchesLedger: false)
            plan.add("remove", sample: item.label)
            first.append(item)
        }
        return first + rest
    }

    /// The refusal message when removals would exceed the breaker on some list, nil otherwise.
    func massRemoval(items: [Item], ledger: [Int64: ExportState.LedgerEntry], allowed: Bool) -> String? {
        guard !allowed else { return nil }
        for list in goal.lists {
            let onList = ledger.values.filter { $0.lists.contains(list) }.count
            let leaving = items.filter { $0.operation == .remove && $0.touchesLedger && $0.lists.contains(list) }.count
            if leaving > Self.massRemovalMinimum, Double(leaving) > goal.maxRemovalFraction * Double(onList) {
                let percent = Int((Double(leaving) / Double(max(onList, 1)) * 100).rounded())
                return "refusing to remove \(leaving) of the \(onList) profiles ferry put on list '\(list)' (\(percent)%, more than max_removal_fraction \(PropertyValue.format(number: goal.maxRemovalFraction)) and more than \(Self.massRemovalMinimum)); a segment rule or a profile load may be broken. Nothing was sent. If the removal is intended, rerun with --allow-mass-removal (ferry run NAME --now --allow-mass-removal) or raise max_removal_fraction"
            }
        }
        return nil
    }

    // MARK: - Sending

    func ensureLists(context: GoalContext) async throws {
        for name in goal.lists {
            do {
                _ = try await api.list(named: name)
            } catch let error as SailthruError where error.kind == .unknownList {
                do {
                    _ = try await api.saveList(SailthruListDefinition(name: name, type: .normal))
                    context.logger.info("created list", metadata: ["list": "\(name)"])
                } catch {
                    try Self.rethrowIfFatal(error)
                    context.logger.warning("could not create list; adding members creates it", metadata: ["list": "\(name)", "error": "\(error)"])
                }
            } catch {
                try Self.rethrowIfFatal(error)
                context.logger.warning("could not check list; adding members creates it", metadata: ["list": "\(name)", "error": "\(error)"])
            }
        }
    }

    /// What one batch did: how many items it handled, and the identifiers of the upserts Sailthru accepted.
    struct Sent: Sendable {
        var handled: Int
        var found: [String]
    }

    /// Sends one batch and commits what Sailthru accepted; `unconfirmed` names the users (`pk␟identifier`)
    /// that were in the outbox when the run started.
    func send(_ batch: [Item], unconfirmed: Set<String>, context: GoalContext) async throws -> Sent {
        let connection = context.connection.name
        let prepared = zip(batch, try updates(for: batch, database: context.database)).compactMap { item, update in
            update.map { (item, $0) }
        }
        let sendable = prepared.map(\.0)
        let payload = prepared.map(\.1)
        // Intent first: if the process dies from here on, the next run knows these users are unconfirmed.
        let intents = sendable.map { ($0.pk, $0.profileID, $0.identifier, $0.operation.rawValue) }
        let now = context.now
        let intent = try await context.database.writer.write { db in
            try ExportState.intend(intents, connection: connection, now: now, db: db)
        }
        let outcomes: [Outcome]
        switch goal.method {
        case .user:
            outcomes = try await sendEach(payload)
        case .job:
            outcomes = try await sendJob(payload, logger: context.logger)
        }
        let found = try await commit(Array(zip(sendable, outcomes)), intent: intent, unconfirmed: unconfirmed, context: context)
        return Sent(handled: batch.count, found: found)
    }

    /// The `/user` fields of each item, in batch order: vars and lists for upserts, `{list: 0}` for removals;
    /// nil for an upsert whose profile was deleted since planning (its ledger rows go on a later run).
    func updates(for batch: [Item], database: AppDatabase) throws -> [SailthruUserUpdate?] {
        let upsertPKs = batch.filter { $0.operation != .remove }.map(\.pk)
        var profiles: [Int64: Profile] = [:]
        var segments: [Int64: [String]] = [:]
        if !upsertPKs.isEmpty {
            let (names, needsSegments) = fieldInputs
            let keys = PropertyKeys(names)
            try database.writer.read { db in
                let placeholders = upsertPKs.map { _ in "?" }.joined(separator: ",")
                let rows = try Row.fetchCursor(db, sql: "SELECT pk, id, properties FROM profile WHERE pk IN (\(placeholders))",
                                               arguments: StatementArguments(upsertPKs))
                while let row = try rows.next() {
                    // Only the fields' properties are decoded.
                    profiles[row[0]] = Profile(id: row[1], properties: try row.decodedProperties(atIndex: 2, keys: keys))
                }
                guard needsSegments else { return }
                for row in try Row.fetchAll(db, sql: "SELECT profile_pk, segment FROM segment_member WHERE profile_pk IN (\(placeholders)) ORDER BY segment",
                                            arguments: StatementArguments(upsertPKs)) {
                    segments[row["profile_pk"], default: []].append(row["segment"])
                }
            }
        }
        let key = goal.matchKey.rawValue
        let lists: [String: Bool]? = goal.lists.isEmpty ? nil : Dictionary(goal.lists.map { ($0, true) }, uniquingKeysWith: { a, _ in a })
        return batch.map { item in
            switch item.operation {
            case .remove:
                return SailthruUserUpdate(id: item.identifier, key: key,
                                          lists: Dictionary(uniqueKeysWithValues: item.lists.map { ($0, false) }))
            case .add, .update:
                guard let profile = profiles[item.pk] else { return nil }
                return SailthruUserUpdate(id: item.identifier, key: key,
                                          vars: ExportWireValues.vars(for: goal.fields, profile: profile, segments: segments[item.pk] ?? []),
                                          lists: lists)
            }
        }
    }

    /// The properties the fields read, and whether any field needs the profile's segments.
    var fieldInputs: (keys: Set<String>, segments: Bool) {
        var keys = Set<String>()
        var segments = false
        for field in goal.fields {
            switch field.value {
            case .property(let name): keys.insert(name)
            case .objectives: keys.insert(Profile.objectivesProperty)
            case .segments: segments = true
            case .profileID, .text: break
            }
        }
        return (keys, segments)
    }

    /// `method: user`: one POST /user each, a few at a time; every call has its own outcome.
    func sendEach(_ updates: [SailthruUserUpdate]) async throws -> [Outcome] {
        try await forEach(updates, concurrency: userConcurrency) { update in
            do {
                try await api.saveUser(update)
                return .accepted
            } catch {
                try Self.rethrowIfFatal(error)
                return Self.failure(error)
            }
        }
    }

    /// `method: job`: one update job; when it reports errors, its users are resent one by one to find whose.
    func sendJob(_ updates: [SailthruUserUpdate], logger: Logger) async throws -> [Outcome] {
        guard !updates.isEmpty else { return [] }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-export-\(UUID().uuidString).jsonl")
        defer { try? FileManager.default.removeItem(at: file) }
        do {
            try JobFile.write(SailthruUserUpdate.jsonLinesBytes(updates), to: file.path)
            let started = try await api.startUpdateJob(file: file, update: nil)
            let job = try await api.waitForJob(id: started.id)
            let errors = Int(job.raw["errors"]?.numberValue ?? 0)
            guard errors > 0 else { return updates.map { _ in .accepted } }
            // The job reply counts errors but does not name the users: /user calls do, and repeating an update is harmless.
            logger.info("update job reported errors; resending its users one by one to find them",
                        metadata: ["job": "\(job.id)", "errors": "\(errors)"])
            return try await sendEach(updates)
        } catch {
            try Self.rethrowIfFatal(error)
            let failure = Self.failure(error)
            if case .failed(let reason, _) = failure {
                // A job that failed as a whole is retried next run, whatever the error.
                return updates.map { _ in .failed(reason: reason, retryable: true) }
            }
            return updates.map { _ in failure }
        }
    }

    /// Applies accepted items to the ledger and counts, keeps failed ones in the outbox and settles the batch's
    /// intent, in one transaction; returns the identifiers of the accepted upserts.
    @discardableResult
    func commit(_ results: [(Item, Outcome)], intent: Int64?, unconfirmed: Set<String>, context: GoalContext) async throws -> [String] {
        let recorder = context.recorder
        // One visit to the recorder per batch, not one per user: the counts, the newest touched users, the failures.
        var created = 0, updated = 0, removed = 0
        var accepted: [Item] = []
        var failures: [RunRowError] = []
        for (item, outcome) in results {
            switch outcome {
            case .accepted:
                switch item.operation {
                case .add: created += 1
                case .update: updated += 1
                case .remove: removed += 1
                }
                accepted.append(item)
            case .failed(let reason, _):
                failures.append(RunRowError(location: "profile \(item.label)", reason: reason))
            }
        }
        let (added, changed, taken) = (created, updated, removed)
        if added + changed + taken > 0 {
            await recorder.count { $0.created += added; $0.updated += changed; $0.exported += added + changed; $0.removed += taken }
        }
        for item in accepted.suffix(RunLedger.touchedKept) {
            await recorder.touch(TouchedProfile(profileID: item.profileID, identifier: item.identifier,
                                                action: item.operation == .remove ? "removed from \(item.lists.joined(separator: ", "))"
                                                    : item.operation == .add ? "added" : "updated"))
        }
        for failure in failures { await recorder.fail(failure) }
        let counts = await recorder.counts
        let rowErrors = await recorder.rowErrors
        let touched = await recorder.touched
        let connection = context.connection.name
        let lists = goal.lists
        let now = context.now
        return try await context.database.writer.write { db in
            let deleteOutbox = try db.cachedStatement(sql: "DELETE FROM export_outbox WHERE connection = ? AND profile_pk = ? AND identifier = ?")
            let deleteLedger = try db.cachedStatement(sql: "DELETE FROM export_membership WHERE connection = ? AND list = ? AND profile_pk = ?")
            if let intent { try ExportState.settle(intent: intent, db: db) }
            var exported: [Item] = []
            for (item, outcome) in results {
                let hadRow = unconfirmed.contains("\(item.pk)\u{1F}\(item.identifier)")
                switch outcome {
                case .accepted:
                    if hadRow { try deleteOutbox.execute(arguments: [connection, item.pk, item.identifier]) }
                    if item.operation == .remove {
                        if item.touchesLedger {
                            for list in item.lists { try deleteLedger.execute(arguments: [connection, list, item.pk]) }
                        }
                    } else {
                        exported.append(item)
                    }
                case .failed(let reason, let retryable):
                    if retryable {
                        try ExportState.keep((item.pk, item.profileID, item.identifier, item.operation.rawValue), reason: reason,
                                             connection: connection, now: now, db: db)
                    } else if hadRow {
                        // Sending the same data again cannot succeed; the next run plans (and reports) it afresh.
                        try deleteOutbox.execute(arguments: [connection, item.pk, item.identifier])
                    }
                }
            }
            try ExportState.recordAccepted(exported.map { ($0.pk, $0.profileID, $0.identifier) }, connection: connection,
                                           lists: lists, now: now, db: db)
            try RunLedger.update(runID: recorder.runID, counts: counts, rowErrors: rowErrors, touched: touched, db: db)
            return exported.map(\.identifier)
        }
    }

    // MARK: - Helpers

    /// `trimmingCharacters(in: .whitespaces)`, skipping Foundation when both ends are visible ASCII
    /// (every ordinary address): the bridged call was a twentieth of the scan.
    static func trimmed(_ text: String) -> String {
        let utf8 = text.utf8
        guard let first = utf8.first, let last = utf8.last else { return text }
        let visible: (UInt8) -> Bool = { $0 > 0x20 && $0 < 0x7F }
        if visible(first) && visible(last) { return text }
        return text.trimmingCharacters(in: .whitespaces)
    }

    /// Keeps the plan in the run's notes, where `ferry run` prints it and `ferry history show` keeps it.
    func save(_ plan: ExportPlan, context: GoalContext) async throws {
        await context.recorder.note((context.isDryRun ? "plan (dry run, nothing sent):" : "plan:"))
        for line in plan.text.split(separator: "\n") { await context.recorder.note(String(line)) }
    }

    /// Errors after which no call can succeed: the run stops at once and sends nothing more.
    static func rethrowIfFatal(_ error: any Error) throws {
        // Already decided (a nested send hit a fatal error): pass it on unchanged.
        if error is CancellationError || error is GoalFailure { throw error }
        guard let error = error as? SailthruError else { return }
        switch error.kind {
        case .signatureMismatch:
            throw GoalFailure("signature mismatch: check api_secret (Sailthru \(error.endpoint) refused the request); nothing more was sent")
        case .invalidAPIKey:
            throw GoalFailure("invalid api_key (Sailthru \(error.endpoint) refused the request); nothing more was sent")
        default:
            return
        }
    }

    /// A failed item: retryable ones stay in the outbox for the next run.
    static func failure(_ error: any Error) -> Outcome {
        guard let error = error as? SailthruError else { return .failed(reason: String(describing: error), retryable: true) }
        let retryable = error.isRetryable || [.transport, .invalidResponse, .jobFailed, .rateLimited].contains(error.kind)
        return .failed(reason: error.kind == .invalidEmail ? "invalid email: \(error.message)" : error.description, retryable: retryable)
    }

    /// Runs `body` for each element with at most `concurrency` at once; results keep the input order.
    func forEach<T: Sendable, R: Sendable>(_ elements: [T], concurrency: Int,
                                           _ body: @escaping @Sendable (T) async throws -> R) async throws -> [R] {
        try await withThrowingTaskGroup(of: (Int, R).self) { group in
            var results = [R?](repeating: nil, count: elements.count)
            var next = 0
            while next < elements.count && next < concurrency {
                let index = next
                group.addTask { (index, try await body(elements[index])) }
                next += 1
            }
            while let (index, result) = try await group.next() {
                results[index] = result
                if next < elements.count {
                    let index = next
                    group.addTask { (index, try await body(elements[index])) }
                    next += 1
                }
            }
            return results.map { $0! }
        }
    }
}

extension SailthruExportExecutor.Candidate {
    var profileIDLabel: String { "\(profileID) (\(identifier))" }
}
