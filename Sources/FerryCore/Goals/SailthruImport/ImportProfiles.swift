import Foundation
import GRDB

/// The store as one import batch sees it, read with a few `IN (…)` queries (``ImportLookups``, read here or, for a
/// batch planned ahead, partly by a transaction before: ``ImportPlan``) and written through, or, planning, noted down.
///
/// Writes go into this copy and to the database inside the batch's transaction, so a later row of
/// the batch sees what earlier rows created or changed. Updates are written at once; new profiles
/// and their identifiers are held back and written `ProfileBatchWriter.insertRows` to a statement (``flush()``), and
/// every one of them is in this copy meanwhile (owners, profiles, ids), so anything not read up
/// front and read from the database instead can only be a row that was already there. Only the properties the import
/// merges, matches on or that segments read are decoded (`keys`); the stored text keeps the
/// others, and an update replaces just the changed entries in it (``ImportStoredText``). The
/// import keeps its own copy of the store (partial profiles with their stored text) rather than
/// going through `ProfileBatchWriter`, which holds whole profiles; the pieces they share
/// (`PendingRows`, `InListQuery`, identifier values and re-indexing in `ProfileStore`) are called, not copied.
struct ImportProfiles {
    /// The batch's connection; nil for a plan made from what was read for it alone (``ImportPlanNeedsStore``).
    private let connection: Database?
    let now: Date
    let keys: PropertyKeys
    /// Owners, profiles and ids looked up or written: a later row of the batch reads what an earlier one wrote.
    private var known: ImportLookups
    /// New profiles and their identifiers not yet written (an update of one must see its row written first).
    private var newRows = NewProfileRows()
    /// The store's keys, when the import keeps them: ids and identifiers it surely lacks are not looked up.
    private var filter: StoreKeyFilter?
    /// Whether writes are only noted down (``planned``) for the writer to make later.
    private let isPlanning: Bool
    /// The writes noted down while planning, in order.
    private(set) var planned: [PlannedWrite] = []
    /// The row key the next profile created while planning gets, and the first one's.
    private var nextPlannedPK: Int64?
    private var firstPlannedPK: Int64?
    /// What this batch wrote, for a batch planned ahead of it to be checked against (``ImportPlan/conflicts(with:)``).
    private(set) var wrote = WrittenKeys()
    /// After ``replay(_:)``: the plan's first new row key (`known` holds the plan's row keys) and how far the writer's
    /// keys for its new profiles are from the plan's (``ImportPlan/shifted(_:firstNewPK:by:)``).
    private var replayedNewPKs: (first: Int64?, shift: Int64) = (nil, 0)

    /// `known` (read up front, on this connection or a reading one) must be the store as `db` sees it now. With
    /// `planning`, nothing is written (writes are noted down in ``planned``), and `db` may be a reading connection or
    /// none: what `known` lacks is then not looked up, and the plan is given up.
    init(db: Database?, now: Date, keys: PropertyKeys, filter: StoreKeyFilter? = nil, known: ImportLookups = ImportLookups(),
         planning: Bool = false) {
        self.connection = db
        self.now = now
        self.keys = keys
        self.filter = filter
        self.known = known
        self.isPlanning = planning
    }

    /// The connection, which a plan made without one does not have: it needs one, so it is given up.
    private var db: Database {
        get throws {
            guard let connection else { throw ImportPlanNeedsStore() }
            return connection
        }
    }

    /// The row key of the batch's first new profile, if it created one: keys from there on are the batch's own.
    private var firstNewPK: Int64? { isPlanning ? firstPlannedPK : newRows.firstPK }

    /// Ends the batch, last in its transaction: hands over the filter (``takeFilter(at:)``, stamped `current` when given)
    /// and frees what the batch knew of the store (``release(_:)``).
    mutating func finish(at current: WriterStamp? = nil) throws -> StoreKeyFilter? {
        let kept = try takeFilter(at: current)
        let spent = HandedOver(known)
        self = ImportProfiles(db: connection, now: now, keys: [])  // `spent` holds the only copy of `known`
        Self.release(spent)
        return kept
    }

    /// Ends a batch planned on a reading connection: its writes, what it read and wrote, and its first new row key.
    mutating func finishPlan(result: SailthruImportExecutor.BatchResult, changed: [Int64: ProfileBatchWriter.Touched],
                             exchanged: [Int64], readAsTheBatchBeforeLastEnded: Bool = false) -> ImportPlan {
        let plan = ImportPlan(result: result, writes: planned, changed: changed.values.sorted { $0.pk < $1.pk }, exchanged: exchanged, known: known,
                              wrote: wrote, firstNewPK: firstPlannedPK, readAsTheBatchBeforeLastEnded: readAsTheBatchBeforeLastEnded)
        self = ImportProfiles(db: connection, now: now, keys: [])  // the plan holds the only copy of what it carries
        return plan
    }

    /// Frees what a batch is done with (its lookups, its plan, its changed profiles) on another thread: freeing their
    /// dictionaries and strings took 4 % (lookups) and 8 % (plans) of the transactions' thread, the one every batch
    /// waits for. `spent` must hold the only copy before the call: one the caller still holds (a `let` passed in, say)
    /// can outlive the queue's release and be freed on the caller's thread after all.
    static func release<Spent>(_ spent: HandedOver<Spent>) {
        releaseQueue.async { spent.value = nil }
    }

    private static let releaseQueue = DispatchQueue(label: "ferry.import.release", qos: .utility)

    /// Hands over the filter with every id and identifier the batch wrote added, stamped with `current` (the writing
    /// connection's stamp after the transaction's last write) or the stamp read now: call last in the transaction.
    /// (What it found was in the filter already: a filter holds every key of the store it is current with.)
    mutating func takeFilter(at current: WriterStamp? = nil) throws -> StoreKeyFilter? {
        guard var kept = filter.take() else { return nil }
        for key in wrote.owners {
            let owner = known.owners[key] ?? nil
            kept.insert(key, owner: owner.map { ImportPlan.shifted($0, firstNewPK: replayedNewPKs.first, by: replayedNewPKs.shift) })
        }
        for id in wrote.ids { kept.insert(id: id) }
        kept.stamp(at: try current ?? WriterStamp(db))
        return kept
    }

    /// The properties an import must decode: merged, matched, the list name's, and those segments read.
    static func keys(goal: SailthruImportGoal, segments: [SegmentDefinition]) -> PropertyKeys {
        var keys = Set(goal.fields.map(\.to)).union(goal.match.map(\.property))
        if let property = goal.listNameProperty { keys.insert(property) }
        return PropertyKeys(keys.union(SegmentDefinition.membershipInputs(of: segments)))
    }

    // MARK: - Reading

    /// Drops the filter when someone else has written since it was stamped: call first in the batch's transaction,
    /// with the writing connection's stamp when the transaction has read it already.
    mutating func checkFilter(at current: WriterStamp? = nil) throws {
        guard let kept = filter else { return }
        if !kept.isCurrent(at: try current ?? WriterStamp(db)) { filter = nil }  // someone else wrote: look everything up
    }

    /// Reads what the batch's rows need up front (``ImportLookups/prefetch(rows:createProfiles:keys:filter:db:readingProfiles:)``),
    /// after checking the filter (``checkFilter(at:)``).
    mutating func prefetch(rows: [[IdentifierKey]], createProfiles: Bool, at current: WriterStamp? = nil) throws {
        try checkFilter(at: current)
        try known.prefetch(rows: rows, createProfiles: createProfiles, keys: keys, filter: filter, db: db)
    }

    /// Reads the owners and ids `rows`, a batch ahead's, need, leaving their profiles to read, so that batch can be
    /// planned from it on another thread while the one before it writes (``ImportPlan``): call before this batch writes
    /// (for the next batch) or after its last write (for the batch after that).
    func prefetchAhead(rows: [[IdentifierKey]], createProfiles: Bool) throws -> ImportLookups {
        try ImportLookups.ahead(rows: rows, createProfiles: createProfiles, keys: keys, filter: filter, db: db)
    }

    /// The profile that holds identifier `key`.
    mutating func owner(of key: IdentifierKey) throws -> Int64? {
        if let cached = known.owners[key] { return cached }
        if filter?.mayContain(key) == false {
            known.owners[key] = .some(nil)
            return nil
        }
        let pk = try Int64.fetchOne(db.cachedStatement(sql: "SELECT profile_pk FROM identifier WHERE property = ? AND value = ?"),
                                    arguments: [key.property, key.value])
        known.owners[key] = .some(pk)
        return pk
    }

    /// The profile with row key `pk`.
    mutating func profile(pk: Int64) throws -> ImportedProfile? {
        if let cached = known.profiles[pk] { return cached }
        guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT pk, id, properties FROM profile WHERE pk = ?"), arguments: [pk])
        else { return nil }
        let profile = try ImportLookups.decode(row, keys: keys)
        known.profiles[pk] = profile
        return profile
    }

    /// Whether some profile has the id `id`.
    mutating func idExists(_ id: String) throws -> Bool {
        if let cached = known.ids[id] { return cached }
        if filter?.mayContain(id: id) == false {
            known.ids[id] = false
            return false
        }
        let exists = try Bool.fetchOne(db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM profile WHERE id = ?)"), arguments: [id]) ?? false
        known.ids[id] = exists
        return exists
    }

    // MARK: - Writing

    /// Writes `new` (holding only `keys`' properties) over `old`, keeping the identifier index in step. `changes` names
    /// each property whose values differ between the two, once, with its values in `new`: the merge knows them, and
    /// finding them again by comparing the dictionaries, or looking the values up, hashed every name again for each row.
    mutating func update(_ old: ImportedProfile, to new: Profile, changes: [(key: String, values: [PropertyValue])]) throws {
        var changes = changes
        changes.sort { $0.key < $1.key }
        let text: String
        if changes.allSatisfy({ $0.key.utf8.allSatisfy { $0 < 0x80 } }), let spliced = ImportStoredText.splice(old.stored, changes: changes) {
            text = spliced
        } else {
            var full = try PropertyCodec.decode(old.stored)
            for (key, values) in changes { full[key] = values.isEmpty ? nil : values }
            text = PropertyCodec.encode(full)
        }
        // Asked first: a list of them, empty for nearly every row, cost two arrays a row.
        let changesIdentifiers = changes.contains { Identifiers.isIdentifier($0.key) }
        if firstNewPK.map({ old.pk < $0 }) ?? true { wrote.pks.insert(old.pk) }
        if isPlanning {
            // Re-indexing reads and writes the identifier table as it goes: only the writer can.
            guard !changesIdentifiers else { throw ImportPlanAbandoned() }
            planned.append(.update(pk: old.pk, stored: text))
        } else {
            try write(pk: old.pk, stored: text)
        }
        if changesIdentifiers {
            let changedIdentifiers = changes.map(\.key).filter(Identifiers.isIdentifier)
            try flush()  // the identifier table sees its writes in row order
            var given: [IdentifierKey] = []
            try ProfileStore.reindexIdentifiers(pk: old.pk, old: old.profile, new: new, properties: changedIdentifiers, db: db) { key, owner in
                wrote.owners.insert(key)
                if let owner { known.owners[key] = owner } else { given.append(key) }
            }
            for key in given where known.owners[key] == .some(old.pk) { known.owners[key] = .some(nil) }
        }
        known.profiles[old.pk] = ImportedProfile(pk: old.pk, profile: new, stored: text)
    }

    /// Creates `profile` (its id checked free by the caller), or says which identifier another profile already has.
    mutating func create(_ profile: Profile) throws -> Result<Int64, ImportValueError> {
        let identifiers = ProfileStore.identifierValues(of: profile.properties)
        let keys = identifiers.map { IdentifierKey(property: $0.0, value: $0.1) }
        for key in keys {
            if let owner = try owner(of: key) {
                let ownerID = try self.profile(pk: owner)?.profile.id ?? "?"
                return .failure(ImportValueError("\(key.property) '\(key.value)' already belongs to profile \(ownerID)"))
            }
        }
        let text = PropertyCodec.encode(profile.properties)
        let time = now.timeIntervalSince1970
        let pk: Int64
        if isPlanning {
            // The key the store would have given it when the owners were read; the writer shifts it to where its store ends.
            pk = try nextPlannedPK ?? known.firstNewPK ?? (Int64.fetchOne(db.cachedStatement(sql: "SELECT max(pk) FROM profile")) ?? 0) + 1
            nextPlannedPK = pk + 1
            firstPlannedPK = firstPlannedPK ?? pk
            planned.append(.create(pk: pk, id: profile.id, stored: text, identifiers: identifiers))
        } else {
            // Held back and written with the batch's other new rows (`flush`); this copy answers for them meanwhile.
            pk = try newRows.add(id: profile.id, stored: text, identifiers: identifiers, at: time, db: db)
        }
        for key in keys {
            known.owners[key] = pk
            wrote.owners.insert(key)
        }
        known.ids[profile.id] = true
        wrote.ids.insert(profile.id)
        known.profiles[pk] = ImportedProfile(pk: pk, profile: profile, stored: text)
        return .success(pk)
    }

    /// Writes a profile's new stored text, after the new rows held back when it is one of them.
    private mutating func write(pk: Int64, stored text: String) throws {
        if let firstNewPK = newRows.firstPK, pk >= firstNewPK { try flush() }
        try BulkStatement.execute(db.cachedStatement(sql: "UPDATE profile SET properties = ?, updated_at = ? WHERE pk = ?"),
                                  values: [.text(text), .real(now.timeIntervalSince1970), .integer(pk)], db: db)
    }

    /// Makes the writes of `plan`, worked out on another thread, with its new profiles' row keys shifted to where this
    /// store ends; returns the shift (``ImportPlan/shifted(_:by:)``). The plan's lookups (row keys unshifted) and what
    /// it wrote become this batch's, for ``finish(at:)`` to free and the filter to take.
    mutating func replay(_ plan: ImportPlan) throws -> Int64 {
        known = plan.known
        var shift: Int64 = 0
        let time = now.timeIntervalSince1970
        for planned in plan.writes {
            switch planned {
            case .update(let pk, let stored):
                try write(pk: plan.shifted(pk, by: shift), stored: stored)
            case .create(let pk, let id, let stored, let identifiers):
                let written = try newRows.add(id: id, stored: stored, identifiers: identifiers, at: time, db: db)
                if pk == plan.firstNewPK { shift = written - pk }
            }
        }
        wrote = plan.wrote
        replayedNewPKs = (plan.firstNewPK, shift)
        return shift
    }

    /// Writes the new profiles and identifiers held back so far, profiles first (identifiers reference them).
    /// Call before anything reads the tables other than through this copy, and before the batch commits.
    mutating func flush() throws {
        try newRows.flush(db)
    }
}
