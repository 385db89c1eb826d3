import Foundation
import GRDB
import Testing
@testable import FerryCore

/// An import batch is planned from reads made before the batch ahead of it writes: the plan must be thrown
/// away when that batch wrote something it read, and otherwise make, on the writer, the writes the writer would have.
@Suite struct ImportPlanTests {
    static let keys: PropertyKeys = ["email", "shopify_id", "lifetime_spend"]

    static func email(_ value: String) -> IdentifierKey { IdentifierKey(property: "email", value: value) }

    /// Plans, on a reading connection, rows that each add `spend` to the profile with that email or create it.
    static func plan(_ rows: [(email: String, spend: Double)], database: AppDatabase) async throws -> ImportPlan {
        try await database.writer.read { db in
            var store = ImportProfiles(db: db, now: Date(), keys: keys, planning: true)
            try store.prefetch(rows: rows.map { [email($0.email)] }, createProfiles: true)
            try sum(rows, into: &store)
            return store.finishPlan(result: .init(), changed: [:], exchanged: [])
        }
    }

    static func sum(_ rows: [(email: String, spend: Double)], into store: inout ImportProfiles) throws {
        for (address, spend) in rows {
            if let pk = try store.owner(of: email(address)), let stored = try store.profile(pk: pk) {
                var profile = stored.profile
                profile["lifetime_spend"] = [.number((profile["lifetime_spend"].first.flatMap { if case .number(let n) = $0 { n } else { nil } } ?? 0) + spend)]
                try store.update(stored, to: profile, changes: [("lifetime_spend", profile["lifetime_spend"])])
            } else {
                guard case .success = try store.create(Profile(id: address, properties: ["email": [.string(address)],
                                                                                          "lifetime_spend": [.number(spend)]])) else {
                    throw ImportPlanAbandoned()
                }
            }
        }
    }

    @Test func aPlanReadBeforeTheBatchAheadWroteWhatItReadIsRefusedAndOneThatReadNoneOfItReplaysShiftedPastItsNewRows() async throws {
        let dir = TemporaryDirectory()
        let database = try AppDatabase.open(path: dir.path + "/store.sqlite")
        let store = ProfileStore(database: database)
        _ = try store.upsert([
            ProfileUpsert(id: "a", properties: ["email": [.string("a@x.com")], "lifetime_spend": [.number(1)]]),
            ProfileUpsert(id: "u", properties: ["email": [.string("u@x.com")], "lifetime_spend": [.number(10)]]),
        ], segments: [])
        // Planned before the batch ahead commits: each reads one thing that batch writes (a's profile, c's email, c's
        // id through its email), or nothing it writes.
        let readsUpdated = try await Self.plan([("u@x.com", 1), ("a@x.com", 2)], database: database)
        let readsCreated = try await Self.plan([("c@x.com", 3)], database: database)
        let readsNone = try await Self.plan([("u@x.com", 4), ("n1@x.com", 5), ("n2@x.com", 6), ("n1@x.com", 7)], database: database)
        #expect(readsNone.firstNewPK == 3, "the reading connection's store ends at u")

        // The batch ahead, on the writer: it adds to a and creates c and d.
        let wrote = try await database.writer.write { db in
            var batch = ImportProfiles(db: db, now: Date(), keys: Self.keys)
            try batch.prefetch(rows: [[Self.email("a@x.com")], [Self.email("c@x.com")], [Self.email("d@x.com")]], createProfiles: true)
            try Self.sum([("a@x.com", 100), ("c@x.com", 200), ("d@x.com", 300)], into: &batch)
            try batch.flush()
            return batch.wrote
        }
        #expect(readsUpdated.conflicts(with: wrote))
        #expect(readsCreated.conflicts(with: wrote))
        #expect(!readsNone.conflicts(with: wrote))

        let shift = try await database.writer.write { db in
            var batch = ImportProfiles(db: db, now: Date(), keys: Self.keys, known: readsNone.known)
            let shift = try batch.replay(readsNone)
            try batch.flush()
            return shift
        }
        #expect(shift == 2, "c and d took the plan's first two row keys")
        #expect(try store.find("u")?.profile["lifetime_spend"] == [.number(14)])
        let n1 = try #require(try store.find("n1@x.com"))
        #expect(n1.pk == 5)
        #expect(n1.profile["lifetime_spend"] == [.number(12)], "the plan's own new profile, updated by a later row of it")
        #expect(try store.find("n2@x.com")?.pk == 6)
        #expect(try store.find("a")?.profile["lifetime_spend"] == [.number(101)], "the refused plans wrote nothing")
        #expect(try store.count() == 6)
    }

    @Test func aPlanMadeWithoutAConnectionGivesUpOnWhatWasNotReadForIt() throws {
        var known = ImportLookups()
        known.owners[Self.email("a@x.com")] = .some(nil)
        var store = ImportProfiles(db: nil, now: Date(), keys: Self.keys, known: known, planning: true)
        #expect(try store.owner(of: Self.email("a@x.com")) == nil, "read for it")
        #expect(throws: ImportPlanNeedsStore.self) { try store.owner(of: Self.email("b@x.com")) }
    }

    @Test func aRowThatChangesIdentifiersCannotBePlanned() async throws {
        let dir = TemporaryDirectory()
        let database = try AppDatabase.open(path: dir.path + "/store.sqlite")
        _ = try ProfileStore(database: database).upsert([ProfileUpsert(id: "a", properties: ["email": [.string("a@x.com")]])], segments: [])
        let abandoned = try await database.writer.read { db -> Bool in
            var store = ImportProfiles(db: db, now: Date(), keys: Self.keys, planning: true)
            try store.prefetch(rows: [[Self.email("a@x.com")]], createProfiles: true)
            let pk = try #require(try store.owner(of: Self.email("a@x.com")))
            let stored = try #require(try store.profile(pk: pk))
            var profile = stored.profile
            profile["shopify_id"] = [.string("S1")]
            do { try store.update(stored, to: profile, changes: [("shopify_id", profile["shopify_id"])]) } catch is ImportPlanAbandoned { return true }
            return false
        }
        #expect(abandoned)
    }
}
