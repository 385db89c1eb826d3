import Foundation
import GRDB

/// An identifier as the `identifier` table keys it: the property and its normalized value.
///
/// A key carries the store key filter's 64-bit hash of its text, worked out once where it is made: an import hashes
/// each row's key some eight times (its batch's tables, the filter, what a batch wrote, the plan's checks), and every
/// time Swift hashed both strings anew. Sets and dictionaries hash that number alone; equality still compares the text.
/// The hash is not seeded (FNV-1a): keys made to collide would slow the tables, as they would the filter already, but
/// never make two keys equal.
struct IdentifierKey: Hashable, Sendable {
    let property: String
    let value: String
    /// ``StoreKeyFilter``'s hash of the key: equal keys have equal hashes.
    let storeHash: UInt64

    init(property: String, value: String) {
        self.property = property
        self.value = value
        storeHash = StoreKeyFilter.hash(property: property, value: value)
    }

    static func == (a: IdentifierKey, b: IdentifierKey) -> Bool {
        a.storeHash == b.storeHash && a.value == b.value && a.property == b.property
    }

    func hash(into hasher: inout Hasher) {
        hasher.combine(storeHash)
    }

    /// Whether `values`, a profile's values of ``property``, hold this identifier (whose value is normalized).
    func isHeld(in values: [PropertyValue]) -> Bool {
        values.contains { held in
            // Most values are stored as they are indexed (normalizing is idempotent, so equal text is a match).
            if case .string(let text) = held, text == value { return true }
            return Identifiers.normalized(held.description, property: property) == value
        }
    }
}

/// What the writer needs of each row that can be worked out before the write, on another thread.
///
/// A load's writing thread bounds its speed (SQLite writes on one thread); everything here depends on the row
/// alone, so the reading thread computes it while the previous batch is written.
struct PreparedRows: Sendable {
    /// `PropertyCodec.encode(row.properties)`: the stored JSON of a profile the row creates.
    private(set) var encoded: [String] = []
    /// `ProfileStore.identifierValues(of: row)`.
    private(set) var identifiers: [[(String, String)]] = []
    /// Whether the profile row `i` creates belongs to segment `s` (`isMemberIfCreated[i * segmentCount + s]`):
    /// a created profile holds exactly the row's properties, so its membership is known before the write.
    private var isMemberIfCreated: [Bool] = []
    let segments: [SegmentDefinition]
    let now: Date

    init(segments: [SegmentDefinition], now: Date) {
        self.segments = segments
        self.now = now
    }

    /// Prepares every row of `rows`.
    init(_ rows: [ProfileUpsert], segments: [SegmentDefinition], now: Date) {
        self.init(segments: segments, now: now)
        for row in rows { append(row) }
    }

    /// Prepares the next row.
    mutating func append(_ row: ProfileUpsert) {
        encoded.append(PropertyCodec.encode(row.properties))
        identifiers.append(ProfileStore.identifierValues(of: row))
        guard !segments.isEmpty else { return }
        let profile = Profile(id: row.id ?? "", properties: row.properties)
        let explicit = profile[Profile.segmentsProperty]
        for segment in segments { isMemberIfCreated.append(segment.contains(profile, explicit: explicit, now: now)) }
    }

    /// Whether the profile row `row` created is in `segments[segment]` (the segments and time it was prepared with).
    func isMember(row: Int, segment: Int) -> Bool {
        isMemberIfCreated[row * segments.count + segment]
    }
}

/// Upserts a batch with the same outcome as upserting its rows one by one, in far fewer statements.
///
/// The rows' profiles (by id) and identifier owners are read with a few `IN (…)` queries up front;
/// the batch then runs in order against that snapshot, which it keeps current as it writes, so a
/// later row sees what earlier rows of the same batch created, changed or re-indexed. Only writes
/// reach SQLite per row.
struct ProfileBatchWriter {
    /// New rows per multi-row `INSERT`: one statement (one bind-and-step round trip through GRDB) instead of one per row.
    static let insertRows = 100

    let db: Database
    let now: Date
    /// Row key of each id looked up or written; an id looked up and absent has no entry.
    private var pkByID: [String: Int64] = [:]
    /// The profiles read or written so far, by row key.
    private var profiles: [Int64: Profile] = [:]
    /// Owner of each identifier looked up or written; looked up and absent has no entry.
    private var owners: [IdentifierKey: Int64] = [:]
    /// New profiles and their identifiers not yet written.
    private var newRows = NewProfileRows()
    /// The store's keys, when the caller keeps them: ids and identifiers it surely lacks are not looked up.
    private var filter: StoreKeyFilter?

    init(db: Database, now: Date, filter: StoreKeyFilter? = nil) {
        self.db = db
        self.now = now
        self.filter = filter
    }

    /// Hands over what the batch read and wrote (a dictionary entry per row), leaving the writer empty.
    mutating func takeKnown() -> BatchLeftovers.Known {
        defer { (pkByID, profiles, owners) = ([:], [:], [:]) }
        return BatchLeftovers.Known(pkByID: pkByID, profiles: profiles, owners: owners)
    }

    /// Hands over the filter with the batch's keys added, leaving the writer without one.
    mutating func takeFilter() -> StoreKeyFilter? {
        filter.take()
    }

    /// A profile the batch created or changed, for segment membership.
    struct Touched: Sendable {
        var pk: Int64
        var profile: Profile
        /// Created by this batch: it has no stored memberships yet.
        var isNew: Bool
        /// The batch row that created or changed it.
        var row: Int
        /// For a profile the batch created and did not change after: bit `i` set when it belongs to segment `i` of the
        /// batch's segments, worked out wherever the batch was (an import's plan, off the writer's thread). Nil: the
        /// writer evaluates the rules.
        var membershipIfNew: UInt64? = nil
    }

    /// Runs `batch`; `prepared`, when given, holds its rows' encodings and identifiers computed elsewhere.
    mutating func upsert(_ batch: [ProfileUpsert], prepared: PreparedRows? = nil) throws -> (outcomes: [UpsertOutcome], touched: [Touched]) {
        let identifiers = prepared?.identifiers ?? batch.map(ProfileStore.identifierValues)
        let encoded = prepared?.encoded
        try preload(batch, identifiers: identifiers)
        var outcomes: [UpsertOutcome] = []
        outcomes.reserveCapacity(batch.count)
        var touched: [Touched] = []
        touched.reserveCapacity(batch.count)
        for (index, row) in batch.enumerated() {
            let outcome = try upsert(row, identifiers: identifiers[index], encoded: encoded?[index])
            outcomes.append(outcome)
            switch outcome {
            case .created(let pk, _): touched.append(Touched(pk: pk, profile: profiles[pk]!, isNew: true, row: index))
            case .updated(let pk, _): touched.append(Touched(pk: pk, profile: profiles[pk]!, isNew: false, row: index))
            default: break
            }
        }
        try flushPendingInserts()
        if filter != nil {
            // Everything the batch found or wrote: the store may hold each of them from now on.
            for id in pkByID.keys { filter!.insert(id: id) }
            for key in owners.keys { filter!.insert(key) }
        }
        return (outcomes, touched)
    }

    /// Writes the new rows held back so far, profiles first (identifiers reference them).
    ///
    /// Every other statement of the batch runs after a flush, so SQLite sees the writes in row order.
    private mutating func flushPendingInserts() throws {
        try newRows.flush(db)
    }

    /// Mirrors `ProfileStore.upsert(_:db:now:)` row for row, reading the snapshot instead of the database.
    private mutating func upsert(_ row: ProfileUpsert, identifiers: [(String, String)], encoded: String?) throws -> UpsertOutcome {
        var existing: (pk: Int64, profile: Profile)?
        if let id = row.id {
            if let pk = pkByID[id] { existing = (pk, profiles[pk]!) }
        } else {
            for (property, value) in identifiers {
                if let pk = owners[IdentifierKey(property: property, value: value)] {
                    existing = profiles[pk].map { (pk, $0) }
                    break
                }
            }
        }
        for (property, value) in identifiers {
            if let owner = owners[IdentifierKey(property: property, value: value)], owner != existing?.pk {
                if profiles[owner] == nil { try flushPendingInserts() }
                let ownerID = try profiles[owner]?.id
                    ?? String.fetchOne(db, sql: "SELECT id FROM profile WHERE pk = ?", arguments: [owner]) ?? "?"
                return .rejected(reason: "\(property) '\(value)' already belongs to profile \(ownerID)")
            }
        }

        if let existing {
            var merged = existing.profile
            for (key, values) in row.properties { merged[key] = values }
            guard merged != existing.profile else { return .unchanged(pk: existing.pk, id: merged.id) }
            try flushPendingInserts()
            try db.cachedStatement(sql: "UPDATE profile SET properties = ?, updated_at = ? WHERE pk = ?")
                .execute(arguments: [PropertyCodec.encode(merged.properties), now.timeIntervalSince1970, existing.pk])
            try ProfileStore.reindexIdentifiers(pk: existing.pk, old: existing.profile, new: merged, db: db, owners: &owners)
            profiles[existing.pk] = merged
            return .updated(pk: existing.pk, id: merged.id)
        }

        guard let id = row.id ?? identifiers.first?.1 else {
            return .rejected(reason: "no id and no identifier (email or a property ending in _id)")
        }
        if pkByID[id] != nil {
            return .rejected(reason: "the id '\(id)' made from the first identifier is already another profile's id")
        }
        // As stored: an empty value list is no property (the codec writes none), so a later equal row is "unchanged".
        let properties = row.properties.values.contains(where: \.isEmpty) ? row.properties.filter { !$0.value.isEmpty } : row.properties
        let profile = Profile(id: id, properties: properties)
        let time = now.timeIntervalSince1970
        // A new profile's identifiers are exactly the row's, already normalized.
        let pk = try newRows.add(id: id, stored: encoded ?? PropertyCodec.encode(profile.properties), identifiers: identifiers,
                                 at: time, db: db)
        for (property, value) in identifiers { owners[IdentifierKey(property: property, value: value)] = pk }
        pkByID[id] = pk
        profiles[pk] = profile
        return .created(pk: pk, id: id)
    }


    /// Reads every profile and identifier owner the batch can ask about (those the filter says the store may hold).
    private mutating func preload(_ batch: [ProfileUpsert], identifiers: [[(String, String)]]) throws {
        if let current = filter, try !current.isCurrent(db) { filter = nil }  // another connection wrote: look everything up
        var ids: Set<String> = []
        var valuesByProperty: [String: Set<String>] = [:]
        for (row, rowIdentifiers) in zip(batch, identifiers) {
            if let id = row.id ?? rowIdentifiers.first?.1, filter?.mayContain(id: id) ?? true { ids.insert(id) }
            for (property, value) in rowIdentifiers
            where filter?.mayContain(IdentifierKey(property: property, value: value)) ?? true {
                valuesByProperty[property, default: []].insert(value)
            }
        }
        try loadProfiles(where: "id", in: Array(ids))
        var ownersToLoad: Set<Int64> = []
        for (property, values) in valuesByProperty {
            try InListQuery.forEachChunk(of: Array(values)) { chunk in
                let rows = try Row.fetchCursor(try InListQuery.statement(
                    "SELECT value, profile_pk FROM identifier WHERE property = ? AND value IN", count: chunk.count, db: db),
                    arguments: StatementArguments([property] + chunk))
                while let row = try rows.next() {
                    let pk: Int64 = row[1]
                    owners[IdentifierKey(property: property, value: row[0])] = pk
                    if profiles[pk] == nil { ownersToLoad.insert(pk) }
                }
            }
        }
        try loadProfiles(where: "pk", in: Array(ownersToLoad))
    }

    /// Reads the profiles whose `column` (id or pk) is one of `keys` into the batch's copy.
    private mutating func loadProfiles(where column: String, in keys: [some DatabaseValueConvertible]) throws {
        try InListQuery.forEachChunk(of: keys) { chunk in
            let rows = try Row.fetchCursor(try InListQuery.statement(
                "SELECT pk, id, properties, created_at, updated_at FROM profile WHERE \(column) IN", count: chunk.count, db: db),
                arguments: StatementArguments(chunk))
            while let row = try rows.next() {
                let stored = try ProfileStore.decode(row)
                pkByID[stored.profile.id] = stored.pk
                profiles[stored.pk] = stored.profile
            }
        }
    }

}

/// What a batch held in memory once written: freeing it (a dictionary entry and a profile per row) is work a load
/// hands to another thread.
struct BatchLeftovers: Sendable {
    /// The batch writer's copy of what it read and wrote.
    struct Known: Sendable {
        var pkByID: [String: Int64]
        var profiles: [Int64: Profile]
        var owners: [IdentifierKey: Int64]
    }
    var known: Known
    var touched: [ProfileBatchWriter.Touched]
}

/// New profiles and their identifier rows, held back for multi-row `INSERT`s (profiles first: identifiers
/// reference them), with the row keys SQLite would give them (the largest stored one plus one, read once).
struct NewProfileRows {
    private var nextPK: Int64?
    /// The row key of the first profile added: anything from there on may not be written yet.
    private(set) var firstPK: Int64?
    private var profiles = PendingRows(table: "profile (pk, id, properties, created_at, updated_at)", columns: 5)
    private var identifiers = PendingRows(table: "identifier (property, value, profile_pk)", columns: 3)

    /// Holds back a profile with its stored text and identifier values (each written once); returns its row key.
    mutating func add(id: String, stored: String, identifiers values: [(String, String)], at time: Double, db: Database) throws -> Int64 {
        let pk = try nextPK ?? (Int64.fetchOne(db.cachedStatement(sql: "SELECT max(pk) FROM profile")) ?? 0) + 1
        if firstPK == nil { firstPK = pk }
        nextPK = pk + 1
        profiles.append(.integer(pk), .text(id), .text(stored), .real(time), .real(time))
        for (index, (property, value)) in values.enumerated()
        where !values[..<index].contains(where: { $0.0 == property && $0.1 == value }) {
            identifiers.append(.text(property), .text(value), .integer(pk))
        }
        return pk
    }

    /// Writes every row held back, in order.
    mutating func flush(_ db: Database) throws {
        try profiles.flush(db)
        try identifiers.flush(db)
    }
}

/// Rows held back for multi-row `INSERT`s into one table: one statement (one bind-and-step round trip) per
/// `ProfileBatchWriter.insertRows` rows instead of one per row, bound through ``BulkStatement``.
struct PendingRows {
    /// `name (column, …)`.
    let table: String
    let columns: Int
    /// The held rows' values, row after row.
    private var values: [BulkValue] = []
    /// The statement of a full chunk of ``ProfileBatchWriter/insertRows`` rows: built once, when the first full chunk
    /// is written, not for every chunk (an import's writer built 60 a batch, 0.17 s a million rows).
    private lazy var fullChunkSQL = Self.sql(table: table, columns: columns, rows: ProfileBatchWriter.insertRows)

    init(table: String, columns: Int) {
        self.table = table
        self.columns = columns
    }

    /// Holds back one row of `columns` values.
    mutating func append(_ row: BulkValue...) {
        precondition(row.count == columns, "a row of \(table) has \(columns) values")  // `flush` cuts statements by whole rows
        values.append(contentsOf: row)
    }

    /// Writes every held-back row, in order, and forgets them.
    mutating func flush(_ db: Database) throws {
        var start = 0
        while start < values.count {
            let rows = min(ProfileBatchWriter.insertRows, (values.count - start) / columns)
            let end = start + rows * columns
            let sql = rows == ProfileBatchWriter.insertRows ? fullChunkSQL : Self.sql(table: table, columns: columns, rows: rows)
            try BulkStatement.execute(try db.cachedStatement(sql: sql), values: values[start..<end], db: db)
            start = end
        }
        values.removeAll(keepingCapacity: true)
    }

    private static func sql(table: String, columns: Int, rows: Int) -> String {
        let row = "(" + Array(repeating: "?", count: columns).joined(separator: ",") + ")"
        // OR FAIL, not the default OR ABORT: a statement that may abort part-way needs a statement journal (see BulkWriteTables).
        return "INSERT OR FAIL INTO \(table) VALUES " + Array(repeating: row, count: rows).joined(separator: ",")
    }
}

extension ProfileStore {
    /// A row's identifier values, normalized: email first, then other identifiers by name; empty ones dropped.
    static func identifierValues(of row: ProfileUpsert) -> [(String, String)] {
        identifierValues(of: row.properties)
    }

    /// The identifier values among `properties`, normalized: email first, then other identifiers by name; empty ones dropped.
    static func identifierValues(of properties: [String: [PropertyValue]]) -> [(String, String)] {
        var keys: [String] = []
        for key in properties.keys where Identifiers.isIdentifier(key) { keys.append(key) }
        if keys.isEmpty { return [] }
        keys.sort { ($0 == "email" ? "" : $0) < ($1 == "email" ? "" : $1) }
        var result: [(String, String)] = []
        for key in keys {
            for value in properties[key]! {
                let normalized = Identifiers.normalized(value.description, property: key)
                if !normalized.isEmpty { result.append((key, normalized)) }
            }
        }
        return result
    }

    /// Brings the identifier index of `pk` from `old`'s identifiers to `new`'s, keeping `owners` in step.
    static func reindexIdentifiers(pk: Int64, old: Profile, new: Profile, db: Database, owners: inout [IdentifierKey: Int64]) throws {
        try reindexIdentifiers(pk: pk, old: old, new: new, properties: Set(old.properties.keys).union(new.properties.keys), db: db) { key, owner in
            if let owner { owners[key] = owner } else if owners[key] == pk { owners[key] = nil }
        }
    }

    /// Brings the identifier index of `pk` from `old`'s to `new`'s values of the identifier `properties`; `ownerChanged`
    /// hears of each identifier `pk` took (its pk) or gave up (nil).
    static func reindexIdentifiers(pk: Int64, old: Profile, new: Profile, properties: some Sequence<String>, db: Database,
                                   ownerChanged: (IdentifierKey, _ owner: Int64?) -> Void) throws {
        for property in properties where Identifiers.isIdentifier(property) {
            let before = Set(old[property].map { Identifiers.normalized($0.description, property: property) })
            let after = Set(new[property].map { Identifiers.normalized($0.description, property: property) })
            guard before != after else { continue }
            for value in before.subtracting(after) {
                try db.cachedStatement(sql: "DELETE FROM identifier WHERE property = ? AND value = ? AND profile_pk = ?")
                    .execute(arguments: [property, value, pk])
                ownerChanged(IdentifierKey(property: property, value: value), nil)
            }
            for value in after.subtracting(before) where !value.isEmpty {
                try db.cachedStatement(sql: "INSERT INTO identifier (property, value, profile_pk) VALUES (?, ?, ?)")
                    .execute(arguments: [property, value, pk])
                ownerChanged(IdentifierKey(property: property, value: value), pk)
            }
        }
    }
}
