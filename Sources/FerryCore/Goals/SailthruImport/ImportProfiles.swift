import Foundation
import GRDB

/// A profile as an import batch holds it: the properties the import reads or writes, and its stored text.
struct ImportedProfile {
    var pk: Int64
    /// The profile with only the properties in ``ImportProfiles/keys``.
    var profile: Profile
    /// The stored properties JSON as read or last written.
    var stored: String
}

/// The store as one import batch sees it, read with a few `IN (…)` queries and written through.
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
    let db: Database
    let now: Date
    let keys: Set<String>
    /// Identifier owners looked up: a pk, or nil when none owns it.
    private var owners: [IdentifierKey: Int64?] = [:]
    private var profiles: [Int64: ImportedProfile] = [:]
    /// Profile ids looked up: whether a profile has it.
    private var ids: [String: Bool] = [:]
    /// New profiles and their identifiers not yet written (an update of one must see its row written first).
    private var newRows = NewProfileRows()
    /// The store's keys, when the import keeps them: ids and identifiers it surely lacks are not looked up.
    private var filter: StoreKeyFilter?

    init(db: Database, now: Date, keys: Set<String>, filter: StoreKeyFilter? = nil) {
        self.db = db
        self.now = now
        self.keys = keys
        self.filter = filter
    }

    /// Ends the batch, last in its transaction: hands over the filter (``takeFilter()``) and frees this copy of
    /// the store on another thread. Freeing its dictionaries took 4 % of the transactions' thread, and an import's
    /// reading thread leaves the second core mostly idle.
    mutating func finish() throws -> StoreKeyFilter? {
        let kept = try takeFilter()
        let spent = HandedOver(self)  // its `Database` is only released there, never used
        self = ImportProfiles(db: db, now: now, keys: [])  // the box now holds the only copy
        Self.releaseQueue.async { spent.value = nil }
        return kept
    }

    private static let releaseQueue = DispatchQueue(label: "ferry.import.release", qos: .utility)

    /// Hands over the filter with every id and identifier the batch found or wrote added, stamped: call last in
    /// the transaction.
    mutating func takeFilter() throws -> StoreKeyFilter? {
        guard var kept = filter.take() else { return nil }
        for (key, owner) in owners where owner != nil { kept.insert(key) }
        for (id, exists) in ids where exists { kept.insert(id: id) }
        try kept.stamp(db)
        return kept
    }

    /// The properties an import must decode: merged, matched, the list name's, and those segments read.
    static func keys(goal: SailthruImportGoal, segments: [SegmentDefinition]) -> Set<String> {
        var keys = Set(goal.fields.map(\.to)).union(goal.match.map(\.property))
        if let property = goal.listNameProperty { keys.insert(property) }
        keys.insert(Profile.segmentsProperty)
        for segment in segments { keys.formUnion(segment.rule?.properties ?? []) }
        return keys
    }

    // MARK: - Reading

    /// Reads the owners of every row's identifiers and their profiles; with `createProfiles`, also whether
    /// the id a row without an owner would create (its first identifier's value) is taken.
    mutating func prefetch(rows: [[IdentifierKey]], createProfiles: Bool) throws {
        if let current = filter, try !current.isCurrent(db) { filter = nil }  // someone else wrote: look everything up
        // Sized once for the batch: growing these a row at a time rehashed every key several times over.
        owners.reserveCapacity(rows.count * 2)
        profiles.reserveCapacity(rows.count)
        if createProfiles { ids.reserveCapacity(rows.count) }
        var byProperty: [String: [String]] = [:]
        for key in rows.joined() where owners[key] == nil {
            owners[key] = .some(nil)
            if filter?.mayContain(key) ?? true { byProperty[key.property, default: []].append(key.value) }
        }
        var pks: Set<Int64> = []  // a profile may own several of the batch's identifiers
        for (property, values) in byProperty {
            try InListQuery.forEachChunk(of: values) { chunk in
                let rows = try Row.fetchCursor(try InListQuery.statement("SELECT value, profile_pk FROM identifier WHERE property = ? AND value IN", count: chunk.count, db: db),
                                               arguments: StatementArguments([property] + chunk))
                while let row = try rows.next() {
                    let pk: Int64 = row[1]
                    owners[IdentifierKey(property: property, value: row[0])] = pk
                    if profiles[pk] == nil { pks.insert(pk) }
                }
            }
        }
        try InListQuery.forEachChunk(of: Array(pks)) { chunk in
            let rows = try Row.fetchCursor(try InListQuery.statement("SELECT pk, id, properties FROM profile WHERE pk IN", count: chunk.count, db: db),
                                           arguments: StatementArguments(chunk))
            while let row = try rows.next() {
                let profile = try decode(row)
                profiles[profile.pk] = profile
            }
        }
        guard createProfiles else { return }
        var unknown: [String] = []
        for row in rows {
            guard let first = row.first, ids[first.value] == nil, row.allSatisfy({ owners[$0] == .some(nil) }) else { continue }
            ids[first.value] = false
            if filter?.mayContain(id: first.value) ?? true { unknown.append(first.value) }
        }
        try InListQuery.forEachChunk(of: unknown) { chunk in
            let rows = try String.fetchCursor(try InListQuery.statement("SELECT id FROM profile WHERE id IN", count: chunk.count, db: db),
                                              arguments: StatementArguments(chunk))
            while let id = try rows.next() { ids[id] = true }
        }
    }

    /// The profile whose identifier `property` is `value` (already normalized).
    mutating func owner(property: String, value: String) throws -> Int64? {
        let key = IdentifierKey(property: property, value: value)
        if let known = owners[key] { return known }
        if filter?.mayContain(key) == false {
            owners[key] = .some(nil)
            return nil
        }
        let pk = try Int64.fetchOne(db.cachedStatement(sql: "SELECT profile_pk FROM identifier WHERE property = ? AND value = ?"),
                                    arguments: [property, value])
        owners[key] = .some(pk)
        return pk
    }

    /// The profile with row key `pk`.
    mutating func profile(pk: Int64) throws -> ImportedProfile? {
        if let known = profiles[pk] { return known }
        guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT pk, id, properties FROM profile WHERE pk = ?"), arguments: [pk])
        else { return nil }
        let profile = try decode(row)
        profiles[pk] = profile
        return profile
    }

    /// Whether some profile has the id `id`.
    mutating func idExists(_ id: String) throws -> Bool {
        if let known = ids[id] { return known }
        if filter?.mayContain(id: id) == false {
            ids[id] = false
            return false
        }
        let exists = try Bool.fetchOne(db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM profile WHERE id = ?)"), arguments: [id]) ?? false
        ids[id] = exists
        return exists
    }

    private func decode(_ row: Row) throws -> ImportedProfile {
        let stored: String = row[2]
        var text = stored
        let properties = try text.withUTF8 { bytes throws(PropertyCodecError) in try PropertyCodec.decode(utf8: bytes, keys: keys) }
        return ImportedProfile(pk: row[0], profile: Profile(id: row[1], properties: properties), stored: stored)
    }

    // MARK: - Writing

    /// Writes `new` (holding only `keys`' properties) over `old`, keeping the identifier index in step.
    mutating func update(_ old: ImportedProfile, to new: Profile) throws {
        var changes: [(key: String, values: [PropertyValue])] = []
        for (key, values) in new.properties where old.profile[key] != values { changes.append((key, values)) }
        for (key, values) in old.profile.properties where !values.isEmpty && new.properties[key] == nil { changes.append((key, [])) }
        changes.sort { $0.key < $1.key }
        let text: String
        if changes.allSatisfy({ $0.key.utf8.allSatisfy { $0 < 0x80 } }), let spliced = ImportStoredText.splice(old.stored, changes: changes) {
            text = spliced
        } else {
            var full = try PropertyCodec.decode(old.stored)
            for (key, values) in changes { full[key] = values.isEmpty ? nil : values }
            text = PropertyCodec.encode(full)
        }
        if let firstNewPK = newRows.firstPK, old.pk >= firstNewPK { try flush() }
        try db.cachedStatement(sql: "UPDATE profile SET properties = ?, updated_at = ? WHERE pk = ?")
            .execute(arguments: [text, now.timeIntervalSince1970, old.pk])
        let changedIdentifiers = changes.map(\.key).filter(Identifiers.isIdentifier)
        if !changedIdentifiers.isEmpty {
            try flush()  // the identifier table sees its writes in row order
            try ProfileStore.reindexIdentifiers(pk: old.pk, old: old.profile, new: new, properties: changedIdentifiers, db: db) { key, owner in
                if let owner { owners[key] = owner } else if owners[key] == .some(old.pk) { owners[key] = .some(nil) }
            }
        }
        profiles[old.pk] = ImportedProfile(pk: old.pk, profile: new, stored: text)
    }

    /// Creates `profile` (its id checked free by the caller), or says which identifier another profile already has.
    mutating func create(_ profile: Profile) throws -> Result<Int64, ImportValueError> {
        let identifiers = ProfileStore.identifierValues(of: profile.properties)
        for (property, value) in identifiers {
            if let owner = try owner(property: property, value: value) {
                let ownerID = try self.profile(pk: owner)?.profile.id ?? "?"
                return .failure(ImportValueError("\(property) '\(value)' already belongs to profile \(ownerID)"))
            }
        }
        let text = PropertyCodec.encode(profile.properties)
        let time = now.timeIntervalSince1970
        // Held back and written with the batch's other new rows (`flush`); this copy answers for them meanwhile.
        let pk = try newRows.add(id: profile.id, stored: text, identifiers: identifiers, at: time, db: db)
        for (property, value) in identifiers { owners[IdentifierKey(property: property, value: value)] = pk }
        ids[profile.id] = true
        profiles[pk] = ImportedProfile(pk: pk, profile: profile, stored: text)
        return .success(pk)
    }

    /// Writes the new profiles and identifiers held back so far, profiles first (identifiers reference them).
    /// Call before anything reads the tables other than through this copy, and before the batch commits.
    mutating func flush() throws {
        try newRows.flush(db)
    }
}
