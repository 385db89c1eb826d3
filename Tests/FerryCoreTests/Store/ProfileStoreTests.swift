import Foundation
import GRDB
import Testing
@testable import FerryCore

@Suite struct ProfileStoreTests {
    let segments = [
        SegmentDefinition(name: "big", rule: .condition(property: "spend", .gte(100))),
        SegmentDefinition(name: "vip", rule: nil),
    ]

    func makeStore() throws -> ProfileStore { ProfileStore(database: try AppDatabase.inMemory()) }

    @Test func upsertCreatesThenUpdatesById() throws {
        let store = try makeStore()
        let first = try store.upsert([ProfileUpsert(id: "p1", properties: ["email": [.string("A@X.com")], "spend": [.number(5)]])], segments: segments)
        #expect(first == [.created(pk: 1, id: "p1")])
        let second = try store.upsert([ProfileUpsert(id: "p1", properties: ["spend": [.number(500)]])], segments: segments)
        #expect(second == [.updated(pk: 1, id: "p1")])
        let stored = try #require(try store.find("p1"))
        #expect(stored.profile["email"] == [.string("A@X.com")])
        #expect(stored.profile["spend"] == [.number(500)])
        let again = try store.upsert([ProfileUpsert(id: "p1", properties: ["spend": [.number(500)]])], segments: segments)
        #expect(again == [.unchanged(pk: 1, id: "p1")])
    }

    @Test func upsertWithoutIdFindsTheProfileByIdentifierCaseInsensitively() throws {
        let store = try makeStore()
        _ = try store.upsert([ProfileUpsert(id: "p1", properties: ["email": [.string("a@x.com")]])], segments: [])
        let outcome = try store.upsert([ProfileUpsert(id: nil, properties: ["email": [.string(" A@X.COM ")], "city": [.string("Oslo")]])], segments: [])
        #expect(outcome == [.updated(pk: 1, id: "p1")])
        #expect(try store.find("a@x.com")?.profile["city"] == [.string("Oslo")])
    }

    @Test func aMissingIdIsMadeFromTheFirstIdentifier() throws {
        let store = try makeStore()
        let outcome = try store.upsert([ProfileUpsert(id: nil, properties: ["customer_id": [.string("C-9")], "email": [.string("B@x.com")]])], segments: [])
        #expect(outcome == [.created(pk: 1, id: "b@x.com")])
    }

    @Test func identifierOwnedByAnotherProfileRejectsOnlyThatRow() throws {
        let store = try makeStore()
        let outcomes = try store.upsert([
            ProfileUpsert(id: "p1", properties: ["email": [.string("a@x.com")]]),
            ProfileUpsert(id: "p2", properties: ["email": [.string("a@x.com")]]),
            ProfileUpsert(id: "p3", properties: ["email": [.string("c@x.com")]]),
        ], segments: [])
        #expect(outcomes[0] == .created(pk: 1, id: "p1"))
        #expect(outcomes[1] == .rejected(reason: "email 'a@x.com' already belongs to profile p1"))
        #expect(outcomes[2] == .created(pk: 2, id: "p3"))
        #expect(try store.count() == 2)
    }

    @Test func rowWithNeitherIdNorIdentifierIsRejected() throws {
        let outcome = try makeStore().upsert([ProfileUpsert(id: nil, properties: ["city": [.string("Oslo")]])], segments: [])
        #expect(outcome == [.rejected(reason: "no id and no identifier (email or a property ending in _id)")])
    }

    @Test func changedIdentifierIsReindexed() throws {
        let store = try makeStore()
        _ = try store.upsert([ProfileUpsert(id: "p1", properties: ["email": [.string("old@x.com")]])], segments: [])
        _ = try store.upsert([ProfileUpsert(id: "p1", properties: ["email": [.string("new@x.com")]])], segments: [])
        #expect(try store.find("old@x.com") == nil)
        #expect(try store.find("new@x.com")?.profile.id == "p1")
        let lookupUsesIndex = try store.database.writer.read { db in
            try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN SELECT profile_pk FROM identifier WHERE property = 'email' AND value = 'x'").map { $0["detail"] as String }.joined()
        }
        #expect(lookupUsesIndex.contains("PRIMARY KEY") || lookupUsesIndex.contains("INDEX"))
    }

    @Test func membershipRecordsEntryTimeAndDropsLeavers() throws {
        let store = try makeStore()
        let t0 = Date(timeIntervalSince1970: 1_000_000)
        _ = try store.upsert([
            ProfileUpsert(id: "p1", properties: ["spend": [.number(150)]]),
            ProfileUpsert(id: "p2", properties: ["spend": [.number(5)], "segments": [.string("vip")]]),
        ], segments: segments, now: t0)
        #expect(try store.segmentSizes() == ["big": 1, "vip": 1])
        #expect(try store.memberships(pk: 1).map(\.segment) == ["big"])
        #expect(try store.memberships(pk: 1).first?.enteredAt == t0)

        let t1 = t0.addingTimeInterval(60)
        _ = try store.upsert([ProfileUpsert(id: "p1", properties: ["spend": [.number(1)]]),
                              ProfileUpsert(id: "p2", properties: ["spend": [.number(900)]])], segments: segments, now: t1)
        #expect(try store.memberships(pk: 1).isEmpty)
        #expect(try store.memberships(pk: 2).map(\.segment) == ["big", "vip"])
        #expect(try store.memberships(pk: 2).last?.enteredAt == t0, "staying in a segment keeps the entry time")
    }

    @Test func fullRefreshMatchesIncrementalAndForgetsUndefinedSegments() throws {
        let store = try makeStore()
        _ = try store.upsert((1...50).map { ProfileUpsert(id: "p\($0)", properties: ["spend": [.number(Double($0 * 5))]]) }, segments: segments)
        let incremental = try store.segmentSizes()
        let sizes = try store.refreshSegments(segments)
        #expect(sizes == ["big": 31, "vip": 0])
        #expect(incremental["big"] == 31)
        try store.refreshSegments([segments[1]])
        #expect(try store.segmentSizes()["big"] == nil)
    }

    @Test func storeOnDiskUsesWAL() throws {
        let dir = TemporaryDirectory()
        let database = try AppDatabase.open(path: dir.path + "/f.sqlite")
        let mode = try database.writer.read { try String.fetchOne($0, sql: "PRAGMA journal_mode") }
        #expect(mode == "wal")
    }
}
