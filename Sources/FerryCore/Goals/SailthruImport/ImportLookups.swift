import Foundation
import GRDB

/// A profile as an import batch holds it: the properties the import reads or writes, and its stored text.
struct ImportedProfile: Sendable {
    var pk: Int64
    /// The profile with only the properties in ``ImportProfiles/keys``.
    var profile: Profile
    /// The stored properties JSON as read or last written.
    var stored: String
}

/// What an import batch knows of the store: identifier owners, profiles and ids it read or wrote.
///
/// Read up front for a whole batch with a few `IN (…)` queries (``prefetch(rows:createProfiles:keys:filter:db:)``),
/// on the writing connection; for a batch planned ahead (``ImportPlan``), the owners and ids on the writing connection
/// and the profiles on a reading one.
struct ImportLookups: Sendable {
    /// Identifier owners: a pk, or nil when none owns it.
    var owners: [IdentifierKey: Int64?] = [:]
    var profiles: [Int64: ImportedProfile] = [:]
    /// Profile ids: whether a profile has it.
    var ids: [String: Bool] = [:]
    /// The row key the store would give a new profile, when read with the owners ahead of a plan (``ImportPlan``).
    var firstNewPK: Int64?
    /// Row keys of owners whose profiles are not read yet (laid out from the store's answers by ``lay()``).
    private var unreadProfiles: [Int64] = []
    /// Identifiers whose owner is the filter's candidate (``StoreKeyFilter/owner(of:)``), not yet checked against the
    /// profile: the profile holds the value exactly when it owns it (identifiers are indexed from the properties).
    private var unverifiedOwners: [(key: IdentifierKey, pk: Int64)] = []
    /// Whether the ids of rows without an owner are read (`createProfiles`), so one found by ``verifyOwners(keys:db:)`` is too.
    private var readsIDs = false

    /// Reads the owners of every row's identifiers and their profiles (decoding only `keys`); with `createProfiles`,
    /// also whether the id a row without an owner would create (its first identifier's value) is taken. `filter`,
    /// when given, must hold every key of the store `db` reads: keys it surely lacks are not looked up. Without
    /// `readingProfiles`, the profiles are left for ``readProfiles(keys:db:)``, on another connection or thread, and so
    /// is laying the answers into ``owners`` and ``ids``.
    mutating func prefetch(rows: [[IdentifierKey]], createProfiles: Bool, keys: PropertyKeys, filter: StoreKeyFilter?,
                           db: Database, readingProfiles: Bool = true) throws {
        readsIDs = createProfiles
        answers = try Answers(rows: rows, createProfiles: createProfiles, filter: filter, db: db)
        if readingProfiles { try readProfiles(keys: keys, db: db) }
    }

    /// What the store said of a batch's identifiers and ids, read on the writer in the order of the rows' keys; laid
    /// into the lookups' tables (``lay()``) where the batch is worked out. For a batch planned ahead that is the plan's
    /// thread: building the tables took the writer, the thread every batch waits for, half a second a million rows.
    private struct Answers: Sendable {
        /// The rows' keys, and the filter's answer for each in `rows.joined()` order (``StoreKeyFilter/OwnerHint/unknown``
        /// without a filter).
        var rows: [[IdentifierKey]]
        var hints: [StoreKeyFilter.OwnerHint]
        /// Owners found by looking up keys the filter could not answer for.
        var looked: [IdentifierKey: Int64]
        /// The id each row without an owner would create, and those of them a profile has.
        var unowned: [String]
        var taken: [String]

        init(rows: [[IdentifierKey]], createProfiles: Bool, filter: StoreKeyFilter?, db: Database) throws {
            let keyCount = rows.reduce(0) { $0 + $1.count }
            let hints = filter?.owners(of: rows.joined()) ?? [StoreKeyFilter.OwnerHint](repeating: .unknown, count: keyCount)
            var byProperty: [String: [String]] = [:]
            for (key, hint) in zip(rows.joined(), hints) where hint == .unknown {
                byProperty[key.property, default: []].append(key.value)
            }
            var looked: [IdentifierKey: Int64] = [:]
            for (property, values) in byProperty {
                try InListQuery.forEachChunk(of: values) { chunk in
                    let select = try InListQuery.statement("SELECT value, profile_pk FROM identifier WHERE property = ? AND value IN",
                                                           count: chunk.count, db: db)
                    let rows = try Row.fetchCursor(select, arguments: StatementArguments([property] + chunk))
                    while let row = try rows.next() { looked[IdentifierKey(property: property, value: row[0])] = row[1] }
                }
            }
            var (unowned, taken): ([String], [String]) = ([], [])
            if createProfiles {
                var index = 0
                var unknown: [String] = []
                for row in rows {
                    let hintsOfRow = hints[index..<index + row.count]
                    index += row.count
                    // A candidate owns it until its profile says otherwise (`verifyOwners`, which then reads the id too).
                    guard let first = row.first, zip(row, hintsOfRow).allSatisfy({ key, hint in
                        hint == .absent || hint == .unknown && looked[key] == nil
                    }) else { continue }
                    unowned.append(first.value)
                    if filter?.mayContain(id: first.value) ?? true { unknown.append(first.value) }
                }
                try InListQuery.forEachChunk(of: unknown) { chunk in
                    let rows = try String.fetchCursor(try InListQuery.statement("SELECT id FROM profile WHERE id IN", count: chunk.count, db: db),
                                                      arguments: StatementArguments(chunk))
                    while let id = try rows.next() { taken.append(id) }
                }
            }
            (self.rows, self.hints, self.looked, self.unowned, self.taken) = (rows, hints, looked, unowned, taken)
        }
    }

    /// Answers read on the writer and not laid into the tables yet.
    private var answers: Answers?

    /// Lays ``answers`` into ``owners`` and ``ids``, and notes the owners whose profiles are to read and to check.
    private mutating func lay() {
        guard let answers = answers.take() else { return }
        // Sized once for the batch: growing these a row at a time rehashed every key several times over. The owners are
        // the rows' keys and a few more (identifiers a row adds or changes); room for twice the rows doubled the table
        // to 800 KB for a batch matched on one column, and the kernel zeroes every page of it afresh for each batch.
        owners.reserveCapacity(answers.hints.count + answers.rows.count / 4)
        profiles.reserveCapacity(answers.rows.count)
        if readsIDs { ids.reserveCapacity(answers.rows.count) }
        var pks: Set<Int64> = []  // a profile may own several of the batch's identifiers
        for (key, hint) in zip(answers.rows.joined(), answers.hints) where owners[key] == nil {
            switch hint {
            case .absent:
                owners[key] = .some(nil)
            case .candidate(let pk):
                // The filter's answer, checked against the profile once it is read (`readProfiles`).
                owners[key] = pk
                unverifiedOwners.append((key, pk))
                if profiles[pk] == nil { pks.insert(pk) }
            case .unknown:
                let pk = answers.looked[key]
                owners[key] = .some(pk)
                if let pk, profiles[pk] == nil { pks.insert(pk) }
            }
        }
        unreadProfiles = Array(pks)
        for id in answers.unowned where ids[id] == nil { ids[id] = false }
        for id in answers.taken { ids[id] = true }
    }

    /// The store's answers for the owners and ids `rows` need, laid into the tables with their profiles read
    /// (``readProfiles(keys:db:)``), and the row key the store would give a new profile: what a batch planned ahead
    /// (``ImportPlan``) is worked out from, read on the writing connection with the filter current there (or none).
    static func ahead(rows: [[IdentifierKey]], createProfiles: Bool, keys: PropertyKeys, filter: StoreKeyFilter?,
                      db: Database) throws -> ImportLookups {
        var ahead = ImportLookups()
        try ahead.prefetch(rows: rows, createProfiles: createProfiles, keys: keys, filter: filter, db: db, readingProfiles: false)
        if createProfiles { ahead.firstNewPK = (try Int64.fetchOne(db.cachedStatement(sql: "SELECT max(pk) FROM profile")) ?? 0) + 1 }
        return ahead
    }

    /// Reads the owners' profiles ``prefetch(rows:createProfiles:keys:filter:db:readingProfiles:)`` left unread, and
    /// checks the owners the filter named against them. `db` must see the store the owners were read from.
    mutating func readProfiles(keys: PropertyKeys, db: Database) throws {
        lay()
        try read(pks: unreadProfiles, keys: keys, db: db)
        unreadProfiles = []
        try verifyOwners(keys: keys, db: db)
    }

    private mutating func read(pks: [Int64], keys: PropertyKeys, db: Database) throws {
        try InListQuery.forEachChunk(of: pks) { chunk in
            let rows = try Row.fetchCursor(try InListQuery.statement("SELECT pk, id, properties FROM profile WHERE pk IN", count: chunk.count, db: db),
                                           arguments: StatementArguments(chunk))
            while let row = try rows.next() {
                let profile = try Self.decode(row, keys: keys)
                profiles[profile.pk] = profile
            }
        }
    }

    /// Keeps each owner the filter named whose profile holds the identifier's value; looks up the others (another
    /// key sharing the filter's hash bits, or a value the profile has given up). A property the import does not
    /// decode is not in the profile as read, so its identifiers are always looked up.
    private mutating func verifyOwners(keys: PropertyKeys, db: Database) throws {
        var missing: [Int64] = []
        for (key, pk) in unverifiedOwners {
            // Through the table's index: `profiles[pk]` copied the whole profile out (three retains and releases) to read one property.
            if let index = profiles.index(forKey: pk), let values = profiles.values[index].profile.properties[key.property],
               key.isHeld(in: values) { continue }
            let owner = try Int64.fetchOne(db.cachedStatement(sql: "SELECT profile_pk FROM identifier WHERE property = ? AND value = ?"),
                                           arguments: [key.property, key.value])
            owners[key] = .some(owner)
            if let owner, profiles[owner] == nil { missing.append(owner) }
            if owner == nil, readsIDs, ids[key.value] == nil {
                // A row whose identifiers all turn out unowned creates a profile with its first one's value as id.
                ids[key.value] = try Bool.fetchOne(db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM profile WHERE id = ?)"),
                                                   arguments: [key.value]) ?? false
            }
        }
        unverifiedOwners = []
        try read(pks: missing, keys: keys, db: db)
    }

    /// A `pk, id, properties` row with only `keys`' properties decoded.
    static func decode(_ row: Row, keys: PropertyKeys) throws -> ImportedProfile {
        let stored: String = row[2]
        var text = stored
        let properties = try text.withUTF8 { bytes throws(PropertyCodecError) in try PropertyCodec.decode(utf8: bytes, keys: keys) }
        return ImportedProfile(pk: row[0], profile: Profile(id: row[1], properties: properties), stored: stored)
    }
}
