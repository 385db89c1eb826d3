import Foundation
import GRDB

/// What `ProfileStore.refreshSegmentsIfNeeded` had to do to make segment membership current.
public enum SegmentRefresh: Hashable, Sendable {
    /// The definitions changed since the last full refresh (or there was none): every segment was re-evaluated.
    case full
    /// Nothing changed but these segments depend on the clock (`within_days`), so only they were re-evaluated.
    case clockDependent([String])
    /// Membership was already current: loads and imports keep it so profile by profile.
    case none
}

/// The store's record of the segment definitions membership was last fully evaluated with.
public struct SegmentRefreshState: Hashable, Sendable {
    /// The fingerprint of the definitions of the last full refresh.
    public var fingerprint: String
    /// When membership was last (fully or partly) re-evaluated.
    public var refreshedAt: Date
    /// How many full refreshes the store has had.
    public var fullRefreshes: Int
    /// How many clock-only refreshes the store has had.
    public var clockRefreshes: Int

    /// Adds the state table to `migrator` (called once, at the end of `AppDatabase.migrator`).
    static func register(in migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v4-segments: fingerprint of the definitions membership was evaluated with") { db in
            try db.execute(sql: """
                CREATE TABLE segment_refresh (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    fingerprint TEXT NOT NULL,
                    refreshed_at REAL NOT NULL,
                    full_refreshes INTEGER NOT NULL DEFAULT 0,
                    clock_refreshes INTEGER NOT NULL DEFAULT 0
                )
                """)
        }
    }

    static func load(db: Database) throws -> SegmentRefreshState? {
        try Row.fetchOne(db, sql: "SELECT fingerprint, refreshed_at, full_refreshes, clock_refreshes FROM segment_refresh WHERE id = 1")
            .map { SegmentRefreshState(fingerprint: $0["fingerprint"], refreshedAt: Date(timeIntervalSince1970: $0["refreshed_at"]),
                                       fullRefreshes: $0["full_refreshes"], clockRefreshes: $0["clock_refreshes"]) }
    }

    static func save(_ state: SegmentRefreshState, db: Database) throws {
        try db.execute(sql: """
            INSERT OR REPLACE INTO segment_refresh (id, fingerprint, refreshed_at, full_refreshes, clock_refreshes)
            VALUES (1, ?, ?, ?, ?)
            """, arguments: [state.fingerprint, state.refreshedAt.timeIntervalSince1970, state.fullRefreshes, state.clockRefreshes])
    }

    /// Loads and imports evaluate the profiles they touch with the definitions they were given; when those are not the
    /// ones of the last full refresh, membership follows two sets of definitions, so the next refresh must be full.
    static func forget(unlessEvaluatedWith segments: [SegmentDefinition], db: Database) throws {
        guard let state = try load(db: db), state.fingerprint != fingerprint(of: segments) else { return }
        try db.execute(sql: "UPDATE segment_refresh SET fingerprint = '' WHERE id = 1")
    }

    /// A stable text naming every definition (sorted by name), hashed: equal definitions give equal fingerprints across runs.
    public static func fingerprint(of segments: [SegmentDefinition]) -> String {
        let text = segments.sorted { $0.name < $1.name }
            .map { "\($0.name)=\($0.rule.map { String(reflecting: $0) } ?? "explicit")" }
            .joined(separator: "\n")
        // FNV-1a, 64 bits: stable across processes, unlike Hasher.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return String(hash, radix: 16) + "-\(text.utf8.count)"
    }
}

extension SegmentRule {
    /// Whether membership can change with the clock alone (a `within_days` condition anywhere in the rule).
    public var dependsOnClock: Bool {
        switch self {
        case .all(let rules), .any(let rules): return rules.contains(where: \.dependsOnClock)
        case .not(let rule): return rule.dependsOnClock
        case .condition(_, let op):
            if case .withinDays = op { return true }
            return false
        }
    }

    /// Every property the rule reads.
    var properties: Set<String> {
        switch self {
        case .all(let rules), .any(let rules): return rules.reduce(into: []) { $0.formUnion($1.properties) }
        case .not(let rule): return rule.properties
        case .condition(let property, _): return [property]
        }
    }
}

extension SegmentDefinition {
    /// Every property membership in `segments` follows: those their rules read, and the explicit `segments`.
    static func membershipInputs(of segments: [SegmentDefinition]) -> Set<String> {
        var inputs: Set<String> = [Profile.segmentsProperty]
        for segment in segments { inputs.formUnion(segment.rule?.properties ?? []) }
        return inputs
    }
}

extension ProfileStore {
    /// Makes membership current for `segments` with as little work as possible.
    ///
    /// Loads and imports re-evaluate the profiles they touch, so membership only goes stale when the
    /// definitions change (then every segment is re-evaluated over every profile) or with the clock
    /// (then only the `within_days` segments are). Export runs call this once, before their goals.
    @discardableResult
    public func refreshSegmentsIfNeeded(_ segments: [SegmentDefinition], now: Date = Date()) throws -> SegmentRefresh {
        try database.writer.write { db in
            let fingerprint = SegmentRefreshState.fingerprint(of: segments)
            guard var state = try SegmentRefreshState.load(db: db), state.fingerprint == fingerprint else {
                try Self.refreshAll(segments, now: now, db: db)
                return .full
            }
            let clocked = segments.filter { $0.rule?.dependsOnClock ?? false }
            guard !clocked.isEmpty else { return .none }
            try Self.evaluate(clocked, now: now, db: db)
            state.refreshedAt = now
            state.clockRefreshes += 1
            try SegmentRefreshState.save(state, db: db)
            return .clockDependent(clocked.map(\.name))
        }
    }

    /// The record of the last refresh, if any.
    public func segmentRefreshState() throws -> SegmentRefreshState? {
        try database.writer.read { try SegmentRefreshState.load(db: $0) }
    }

    /// Re-evaluates every segment over every profile, drops undefined segments' members, and records the fingerprint.
    static func refreshAll(_ segments: [SegmentDefinition], now: Date, db: Database) throws {
        let names = segments.map(\.name)
        // Segments no longer defined lose their members.
        let placeholders = names.map { _ in "?" }.joined(separator: ",")
        try db.execute(sql: "DELETE FROM segment_member WHERE segment NOT IN (\(placeholders.isEmpty ? "''" : placeholders))",
                       arguments: StatementArguments(names))
        try evaluate(segments, now: now, db: db)
        let previous = try SegmentRefreshState.load(db: db)
        try SegmentRefreshState.save(SegmentRefreshState(fingerprint: SegmentRefreshState.fingerprint(of: segments), refreshedAt: now,
                                                         fullRefreshes: (previous?.fullRefreshes ?? 0) + 1,
                                                         clockRefreshes: previous?.clockRefreshes ?? 0), db: db)
    }

    /// Re-evaluates `segments` over every profile, recording entries (with their time) and removing leavers.
    ///
    /// One pass in row-key order over the profiles, decoding only the properties the rules read, beside
    /// one cursor per segment over its current members in the same order (a merge, so no set of a million
    /// keys is held); the changes are applied once the cursors are done.
    static func evaluate(_ segments: [SegmentDefinition], now: Date, db: Database) throws {
        guard !segments.isEmpty else { return }
        let keys = PropertyKeys(SegmentDefinition.membershipInputs(of: segments))
        var entering: [[Int64]] = Array(repeating: [], count: segments.count)
        var leaving: [[Int64]] = Array(repeating: [], count: segments.count)
        do {
            let current = try segments.map {
                try Int64.fetchCursor(db, sql: "SELECT profile_pk FROM segment_member WHERE segment = ? ORDER BY profile_pk",
                                      arguments: [$0.name])
            }
            var heads: [Int64?] = try current.map { try $0.next() }
            let profiles = try Row.fetchCursor(db, sql: "SELECT pk, properties FROM profile ORDER BY pk")
            var profile = Profile(id: "")
            while let row = try profiles.next() {
                let pk: Int64 = row[0]
                profile.properties = try row.decodedProperties(atIndex: 1, keys: keys)
                for (i, segment) in segments.enumerated() {
                    // Members whose profile is gone are removed by the foreign key; skip past them.
                    while let head = heads[i], head < pk { heads[i] = try current[i].next() }
                    let wasMember = heads[i] == pk
                    let isMember = segment.contains(profile, now: now)
                    if isMember && !wasMember { entering[i].append(pk) }
                    if !isMember && wasMember { leaving[i].append(pk) }
                }
            }
        }
        let insert = try db.cachedStatement(sql: "INSERT INTO segment_member (segment, profile_pk, entered_at) VALUES (?, ?, ?)")
        let delete = try db.cachedStatement(sql: "DELETE FROM segment_member WHERE segment = ? AND profile_pk = ?")
        for (i, segment) in segments.enumerated() {
            for pk in entering[i] { try insert.execute(arguments: [segment.name, pk, now.timeIntervalSince1970]) }
            for pk in leaving[i] { try delete.execute(arguments: [segment.name, pk]) }
        }
    }
}
