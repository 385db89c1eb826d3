import Foundation
import GRDB

/// A profile as stored: its row key, and the profile itself.
public struct StoredProfile: Hashable, Sendable {
    /// The store's internal row key (stable for the profile's life).
    public var pk: Int64
    public var profile: Profile
    public var createdAt: Date
    public var updatedAt: Date
}

/// What happened to one upserted profile.
public enum UpsertOutcome: Hashable, Sendable {
    case created(pk: Int64, id: String)
    case updated(pk: Int64, id: String)
    case unchanged(pk: Int64, id: String)
    case rejected(reason: String)
}

/// One profile to upsert: an optional id and the properties it sets (each replaces that property's values).
public struct ProfileUpsert: Hashable, Sendable {
    public var id: String?
    public var properties: [String: [PropertyValue]]

    public init(id: String?, properties: [String: [PropertyValue]]) {
        self.id = id
        self.properties = properties
    }
}

/// Profiles, identifiers and segment membership in the store.
public struct ProfileStore: Sendable {
    public let database: AppDatabase

    public init(database: AppDatabase) {
        self.database = database
    }

    // MARK: - Writing

    /// Upserts `batch` in one transaction: by id, else by the first identifier that finds a profile.
    ///
    /// A row whose identifiers belong to another profile is rejected, not merged; the others still apply.
    public func upsert(_ batch: [ProfileUpsert], segments: [SegmentDefinition], now: Date = Date()) throws -> [UpsertOutcome] {
        var noFilter: StoreKeyFilter?
        return try upsert(batch, prepared: nil, segments: segments, now: now, filter: &noFilter).outcomes
    }

    /// `upsert(_:segments:now:)` with the rows prepared (by a parsing thread) for `segments` at `now`, looking up
    /// only the keys `filter` (when given; brought up to date) says the store may hold; also returns what the batch
    /// held in memory, for the caller to free where it costs least.
    func upsert(_ batch: [ProfileUpsert], prepared: PreparedRows,
                filter: inout StoreKeyFilter?) throws -> (outcomes: [UpsertOutcome], leftovers: BatchLeftovers) {
        try upsert(batch, prepared: prepared, segments: prepared.segments, now: prepared.now, filter: &filter)
    }

    /// The one upsert: `prepared` (when a parsing thread made it) and `filter` (when the caller keeps one) are optional.
    func upsert(_ batch: [ProfileUpsert], prepared: PreparedRows?, segments: [SegmentDefinition], now: Date,
                filter: inout StoreKeyFilter?) throws -> (outcomes: [UpsertOutcome], leftovers: BatchLeftovers) {
        var kept = filter.take()  // moved, not copied: the writer adds the batch's keys to it
        let result = try database.writer.write { db in
            var writer = ProfileBatchWriter(db: db, now: now, filter: kept.take())
            let (outcomes, touched) = try writer.upsert(batch, prepared: prepared)
            try Self.refreshMembership(of: touched, segments: segments, db: db, now: now, prepared: prepared)
            kept = writer.takeFilter()
            try kept?.stamp(db)
            return (outcomes, BatchLeftovers(known: writer.takeKnown(), touched: touched))
        }
        filter = kept
        return result
    }

    /// A filter of the store's ids and identifiers for a load of the file at `path` (about `bytesPerRow` bytes a
    /// row), or nil when reading every key of the store would cost more than the lookups it saves.
    func keyFilter(forFile path: String, bytesPerRow: Int) throws -> StoreKeyFilter? {
        let rows = Self.estimatedRows(inFile: path, bytesPerRow: bytesPerRow)
        return try database.writer.writeWithoutTransaction { try Self.keyFilter(forRows: rows, db: $0) }
    }

    /// About how many rows the file at `path` holds, at about `bytesPerRow` bytes a row (0 when it cannot be read).
    static func estimatedRows(inFile path: String, bytesPerRow: Int) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0) / bytesPerRow
    }

    /// `keyFilter(forFile:bytesPerRow:)` for about `rows` rows, on `db`, the writing connection, outside a transaction.
    static func keyFilter(forRows rows: Int, db: Database) throws -> StoreKeyFilter? {
        guard keyFilterPays(storedPK: try largestPK(db), rows: rows) else { return nil }
        return try StoreKeyFilter.build(db: db, expectedNewKeys: rows * 2)
    }

    /// Whether a key filter pays for a write of about `rows` rows into a store whose largest row key is `storedPK`.
    static func keyFilterPays(storedPK: Int, rows: Int) -> Bool {
        // Measured at 1,000,000 profiles: reading the store's keys (an id and an email each) took 1.0-1.1 s, about
        // what skipping the lookups of 500,000 new rows' two keys saved. A store more than twice the file's rows
        // loses even when every row is new.
        storedPK <= rows * 2
    }

    /// The largest profile row key: about the store's size, read from the end of the table (a count reads all of it).
    static func largestPK(_ db: Database) throws -> Int {
        try Int.fetchOne(db, sql: "SELECT max(pk) FROM profile") ?? 0
    }

    /// Runs `body` (a load) with the writer set for bulk writes, then puts the usual settings back.
    ///
    /// Each batch dirties pages all over the identifier index, so the page cache grows to hold the identifier
    /// index of a few million profiles. The writer does not checkpoint: a `BackgroundCheckpointer`, told of each
    /// committed batch through `committed(rows:)`, does it on its own thread (an in-memory store has no WAL).
    func withBulkLoadSettings<T>(_ body: (_ committed: (Int) -> Void) throws -> T) throws -> T {
        let checkpointer = database.writer is DatabasePool ? try BackgroundCheckpointer(path: database.writer.path) : nil
        let usual: (checkpoint: Int, cache: Int)
        do {
            usual = try database.writer.writeWithoutTransaction { db in
                let usual = (checkpoint: try Int.fetchOne(db, sql: "PRAGMA wal_autocheckpoint") ?? 1000,
                             cache: try Int.fetchOne(db, sql: "PRAGMA cache_size") ?? -2000)
                if checkpointer != nil { try db.execute(sql: "PRAGMA wal_autocheckpoint = 0") }
                try db.execute(sql: "PRAGMA cache_size = \(min(usual.cache, -65536))")
                return usual
            }
        } catch {
            try? checkpointer?.stop()  // its thread would otherwise wait for rows forever
            throw error
        }
        func restore() throws {
            try database.writer.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA wal_autocheckpoint = \(usual.checkpoint)")
                try db.execute(sql: "PRAGMA cache_size = \(usual.cache)")
            }
        }
        let result: T
        do {
            result = try body { checkpointer?.committed(rows: $0) }
            try checkpointer?.stop()
        } catch {
            // The load's own error is the one to report; the settings only matter to a connection that lives on.
            try? checkpointer?.stop()
            try? restore()
            throw error
        }
        try restore()
        return result
    }

    static func upsert(_ row: ProfileUpsert, db: Database, now: Date) throws -> (UpsertOutcome, Profile?) {
        let identifierValues = identifierValues(of: row)

        var existing: (pk: Int64, profile: Profile)?
        if let id = row.id {
            existing = try load(id: id, db: db).map { ($0.pk, $0.profile) }
        } else {
            for (property, value) in identifierValues {
                if let pk = try owner(property: property, value: value, db: db) {
                    existing = try load(pk: pk, db: db).map { ($0.pk, $0.profile) }
                    break
                }
            }
        }
        for (property, value) in identifierValues {
            if let owner = try owner(property: property, value: value, db: db), owner != existing?.pk {
                let ownerID = try String.fetchOne(db, sql: "SELECT id FROM profile WHERE pk = ?", arguments: [owner]) ?? "?"  // rare: rejections only
                return (.rejected(reason: "\(property) '\(value)' already belongs to profile \(ownerID)"), nil)
            }
        }

        if let existing {
            var merged = existing.profile
            for (key, values) in row.properties { merged[key] = values }
            guard merged != existing.profile else { return (.unchanged(pk: existing.pk, id: merged.id), nil) }
            try db.cachedStatement(sql: "UPDATE profile SET properties = ?, updated_at = ? WHERE pk = ?")
                .execute(arguments: [PropertyCodec.encode(merged.properties), now.timeIntervalSince1970, existing.pk])
            try reindexIdentifiers(pk: existing.pk, old: existing.profile, new: merged, db: db)
            return (.updated(pk: existing.pk, id: merged.id), merged)
        }

        guard let id = row.id ?? identifierValues.first?.1 else {
            return (.rejected(reason: "no id and no identifier (email or a property ending in _id)"), nil)
        }
        if try load(id: id, db: db) != nil {
            return (.rejected(reason: "the id '\(id)' made from the first identifier is already another profile's id"), nil)
        }
        // As stored: an empty value list is no property (the codec writes none), so a later equal row is "unchanged".
        let profile = Profile(id: id, properties: row.properties.filter { !$0.value.isEmpty })
        try db.cachedStatement(sql: "INSERT INTO profile (id, properties, created_at, updated_at) VALUES (?, ?, ?, ?)")
            .execute(arguments: [id, PropertyCodec.encode(profile.properties), now.timeIntervalSince1970, now.timeIntervalSince1970])
        let pk = db.lastInsertedRowID
        try reindexIdentifiers(pk: pk, old: Profile(id: id), new: profile, db: db)
        return (.created(pk: pk, id: id), profile)
    }

    private static func reindexIdentifiers(pk: Int64, old: Profile, new: Profile, db: Database) throws {
        var owners: [IdentifierKey: Int64] = [:]
        try reindexIdentifiers(pk: pk, old: old, new: new, db: db, owners: &owners)
    }

    // MARK: - Reading

    /// The profile whose identifier `property` is `value`, in O(log n) through the identifier index.
    public static func owner(property: String, value: String, db: Database) throws -> Int64? {
        let statement = try db.cachedStatement(sql: "SELECT profile_pk FROM identifier WHERE property = ? AND value = ?")
        return try Int64.fetchOne(statement, arguments: [property, Identifiers.normalized(value, property: property)])
    }

    static func load(id: String, db: Database) throws -> StoredProfile? {
        let statement = try db.cachedStatement(sql: "SELECT pk, id, properties, created_at, updated_at FROM profile WHERE id = ?")
        return try Row.fetchOne(statement, arguments: [id]).map(decode)
    }

    /// The profile with row key `pk`.
    public static func load(pk: Int64, db: Database) throws -> StoredProfile? {
        let statement = try db.cachedStatement(sql: "SELECT pk, id, properties, created_at, updated_at FROM profile WHERE pk = ?")
        return try Row.fetchOne(statement, arguments: [pk]).map(decode)
    }

    static func decode(_ row: Row) throws -> StoredProfile {
        let properties = try PropertyCodec.decode(row["properties"])
        return StoredProfile(pk: row["pk"], profile: Profile(id: row["id"], properties: properties),
                             createdAt: Date(timeIntervalSince1970: row["created_at"]),
                             updatedAt: Date(timeIntervalSince1970: row["updated_at"]))
    }

    /// A profile by id, or by any identifier value (an email, a platform id).
    public func find(_ idOrIdentifier: String) throws -> StoredProfile? {
        try database.writer.read { db in
            if let p = try Self.load(id: idOrIdentifier, db: db) { return p }
            let pks = try Int64.fetchAll(db, sql: "SELECT DISTINCT profile_pk FROM identifier WHERE value = ? OR value = ?",
                                         arguments: [idOrIdentifier, idOrIdentifier.lowercased()])
            return try pks.first.flatMap { try Self.load(pk: $0, db: db) }
        }
    }

    /// The segments a profile is a member of, with the time it entered each.
    public func memberships(pk: Int64) throws -> [(segment: String, enteredAt: Date)] {
        try database.writer.read { db in
            try Row.fetchAll(db, sql: "SELECT segment, entered_at FROM segment_member WHERE profile_pk = ? ORDER BY segment", arguments: [pk])
                .map { ($0["segment"], Date(timeIntervalSince1970: $0["entered_at"])) }
        }
    }

    /// How many profiles the store holds.
    public func count() throws -> Int {
        try database.writer.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM profile") ?? 0 }
    }

    // MARK: - Segments

    /// Re-evaluates every segment for every profile, recording entries (with their time) and removing leavers.
    /// Returns each segment's size. Records the definitions' fingerprint, so later runs can skip the work.
    @discardableResult
    public func refreshSegments(_ segments: [SegmentDefinition], now: Date = Date()) throws -> [String: Int] {
        try database.writer.write { db in
            try Self.refreshAll(segments, now: now, db: db)
            var sizes: [String: Int] = Dictionary(uniqueKeysWithValues: segments.map { ($0.name, 0) })
            for row in try Row.fetchAll(db, sql: "SELECT segment, COUNT(*) AS n FROM segment_member GROUP BY segment") {
                let name: String = row["segment"]
                if sizes[name] != nil { sizes[name] = row["n"] }
            }
            return sizes
        }
    }

    /// Re-evaluates the segments of just these profiles (after a load or an import touched them).
    public static func refreshMembership(of profiles: [(Int64, Profile)], segments: [SegmentDefinition], db: Database, now: Date) throws {
        try refreshMembership(of: profiles.enumerated().map { ProfileBatchWriter.Touched(pk: $1.0, profile: $1.1, isNew: false, row: $0) },
                              segments: segments, db: db, now: now, prepared: nil)
    }

    /// Profiles the batch created have no stored memberships, so only the others are read back, all with a
    /// few `IN (…)` queries; the batch's own changes are then tracked in memory (a profile may be touched twice).
    /// A created profile's membership comes from `prepared` when given (worked out on the reading thread), or from its
    /// `membershipIfNew`.
    static func refreshMembership(of profiles: [ProfileBatchWriter.Touched], segments: [SegmentDefinition], db: Database, now: Date,
                                  prepared: PreparedRows?) throws {
        guard !profiles.isEmpty, !segments.isEmpty else { return }
        try SegmentRefreshState.forget(unlessEvaluatedWith: segments, db: db)
        var current = try storedMemberships(of: profiles.filter { !$0.isNew }.map(\.pk), db: db)
        let delete = try db.cachedStatement(sql: "DELETE FROM segment_member WHERE segment = ? AND profile_pk = ?")
        let time = now.timeIntervalSince1970
        var pending = PendingRows(table: "segment_member (segment, profile_pk, entered_at)", columns: 3)
        let names = segments.map { BulkValue.text($0.name) }
        // A profile the batch created and touched once has no memberships to compare: its rows are only added,
        // without the set of names the others keep (in a load or an import, that is every profile either creates).
        var seen = Set<Int64>(minimumCapacity: profiles.count)
        var touchedAgain = Set<Int64>()
        for position in profiles.indices where !seen.insert(profiles[position].pk).inserted { touchedAgain.insert(profiles[position].pk) }
        for position in profiles.indices {
            // A created profile touched once whose membership the import's plan worked out (one bit a segment): read in
            // place, since a copy of each, its profile retained and released, cost as much as the rules did.
            if profiles[position].isNew, prepared == nil, segments.count <= 64, let worked = profiles[position].membershipIfNew,
               !touchedAgain.contains(profiles[position].pk) {
                for index in segments.indices where worked & (1 << UInt64(index)) != 0 {
                    pending.append(names[index], .integer(profiles[position].pk), .real(time))
                }
                continue
            }
            let touched = profiles[position]
            // A created profile's membership as the reading thread worked it out, when it did; otherwise its rules'.
            let explicit = touched.isNew && prepared != nil ? [] : touched.profile[Profile.segmentsProperty]
            func belongs(_ index: Int) -> Bool {
                if touched.isNew, let prepared { return prepared.isMember(row: touched.row, segment: index) }
                return segments[index].contains(touched.profile, explicit: explicit, now: now)
            }
            if touched.isNew, !touchedAgain.contains(touched.pk) {
                for index in segments.indices where belongs(index) { pending.append(names[index], .integer(touched.pk), .real(time)) }
                continue
            }
            var memberOf = current[touched.pk] ?? []
            for (index, segment) in segments.enumerated() {
                let isMember = belongs(index)
                if isMember && !memberOf.contains(segment.name) {
                    pending.append(names[index], .integer(touched.pk), .real(time))
                    memberOf.insert(segment.name)
                } else if !isMember && memberOf.contains(segment.name) {
                    try pending.flush(db)  // the row may be one this batch just entered
                    try delete.execute(arguments: [segment.name, touched.pk])
                    memberOf.remove(segment.name)
                }
            }
            current[touched.pk] = memberOf
        }
        try pending.flush(db)
    }

    /// The segments each of `pks` is stored as a member of (absent: none).
    private static func storedMemberships(of pks: [Int64], db: Database) throws -> [Int64: Set<String>] {
        var memberships: [Int64: Set<String>] = [:]
        try InListQuery.forEachChunk(of: pks) { chunk in
            let select = try InListQuery.statement("SELECT profile_pk, segment FROM segment_member WHERE profile_pk IN",
                                                   count: chunk.count, db: db)
            let rows = try Row.fetchCursor(select, arguments: StatementArguments(chunk))
            while let row = try rows.next() { memberships[row[0], default: []].insert(row[1]) }
        }
        return memberships
    }

    /// Each segment's stored size.
    public func segmentSizes() throws -> [String: Int] {
        try database.writer.read { db in
            var sizes: [String: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT segment, COUNT(*) AS n FROM segment_member GROUP BY segment") {
                sizes[row["segment"]] = row["n"]
            }
            return sizes
        }
    }

    /// Up to `limit` members of a segment, in the order they entered.
    public func members(of segment: String, limit: Int) throws -> [(profile: StoredProfile, enteredAt: Date)] {
        try database.writer.read { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT p.pk, p.id, p.properties, p.created_at, p.updated_at, m.entered_at
                FROM segment_member m JOIN profile p ON p.pk = m.profile_pk
                WHERE m.segment = ? ORDER BY m.entered_at, p.pk LIMIT ?
                """, arguments: [segment, limit])
            return try rows.map { (try Self.decode($0), Date(timeIntervalSince1970: $0["entered_at"])) }
        }
    }
}

extension Row {
    /// The stored properties JSON in column `index`, decoded straight from SQLite's bytes, keeping only `keys`
    /// (nil: all). A NULL column (none is stored) reads as no properties.
    func decodedProperties(atIndex index: Int, keys: PropertyKeys?) throws -> [String: [PropertyValue]] {
        try withUnsafeData(atIndex: index) { data in
            guard let data else { return [:] }
            return try data.withUnsafeBytes { raw in try PropertyCodec.decode(utf8: raw.bindMemory(to: UInt8.self), keys: keys) }
        }
    }
}
