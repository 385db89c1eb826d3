import Foundation
import GRDB
import Testing
@testable import FerryCore

@Suite struct StoreKeyFilterTests {
    /// An empty store's filter, built the way a load builds it.
    func emptyFilter(_ database: AppDatabase, expectedNewKeys: Int = 10) throws -> StoreKeyFilter {
        try database.writer.writeWithoutTransaction { try StoreKeyFilter.build(db: $0, expectedNewKeys: expectedNewKeys) }
    }

    @Test func everyInsertedKeyIsReportedPresentEvenAfterTheFilterGrows() throws {
        var filter = try emptyFilter(try AppDatabase.inMemory())
        // The first layer holds 65,536 keys; 150,000 ids and as many identifiers fill three layers.
        for i in 0..<150_000 {
            filter.insert(id: "id-\(i)")
            filter.insert(IdentifierKey(property: "email", value: "u\(i)@example.com"))
        }
        for i in 0..<150_000 {
            #expect(filter.mayContain(id: "id-\(i)"))
            #expect(filter.mayContain(IdentifierKey(property: "email", value: "u\(i)@example.com")))
        }
    }

    @Test func falsePositivesStayNearOnePercent() throws {
        var filter = try emptyFilter(try AppDatabase.inMemory(), expectedNewKeys: 100_000)
        for i in 0..<100_000 { filter.insert(IdentifierKey(property: "email", value: "stored\(i)@example.com")) }
        let absent = (0..<100_000).filter { filter.mayContain(IdentifierKey(property: "email", value: "absent\($0)@example.com")) }
        #expect(absent.count < 2_000, "\(absent.count) of 100,000 absent keys reported as maybe present")
        // The same value under another property, or as an id, is another key.
        let crossed = (0..<100_000).filter { filter.mayContain(id: "stored\($0)@example.com") }
        #expect(crossed.count < 2_000)
        let otherProperty = (0..<100_000).filter {
            filter.mayContain(IdentifierKey(property: "customer_id", value: "stored\($0)@example.com"))
        }
        #expect(otherProperty.count < 2_000)
    }

    @Test func buildReadsEveryStoredIdAndIdentifier() throws {
        let database = try AppDatabase.inMemory()
        let store = ProfileStore(database: database)
        let rows = (0..<500).map { ProfileUpsert(id: "p\($0)", properties: ["email": [.string("U\($0)@X.com")], "customer_id": [.string("C\($0)")]]) }
        _ = try store.upsert(rows, segments: [])
        let filter = try emptyFilter(database)
        for i in 0..<500 {
            #expect(filter.mayContain(id: "p\(i)"))
            #expect(filter.mayContain(IdentifierKey(property: "email", value: "u\(i)@x.com")))  // stored normalized
            #expect(filter.mayContain(IdentifierKey(property: "customer_id", value: "C\(i)")))
        }
    }

    /// An empty store in a file (so another connection can open it), its path, and its filter.
    func emptyStoreOnDisk(in dir: TemporaryDirectory) throws -> (path: String, store: ProfileStore, filter: StoreKeyFilter?) {
        let path = dir.path + "/f.sqlite"
        let database = try AppDatabase.open(path: path)
        return (path, ProfileStore(database: database), try emptyFilter(database))
    }

    @Test func aFilterIsStaleOnceAnotherConnectionCommitsButNotAfterItsOwnWritesOrAPassiveCheckpoint() throws {
        let dir = TemporaryDirectory()
        var (path, store, filter) = try emptyStoreOnDisk(in: dir)
        let database = store.database
        func isCurrent() throws -> Bool { try database.writer.writeWithoutTransaction { try filter!.isCurrent($0) } }
        #expect(try isCurrent())

        _ = try store.upsert([ProfileUpsert(id: "mine", properties: [:])], prepared: nil, segments: [], now: Date(), filter: &filter)
        #expect(filter != nil)
        #expect(try isCurrent())

        let other = try DatabaseQueue(path: path)
        // The passive checkpoints a load's checkpointing thread runs leave it current (a truncating one would not:
        // stale is only slower).
        try other.writeWithoutTransaction { _ = try $0.checkpoint(.passive) }
        #expect(try isCurrent())

        try other.write { try $0.execute(sql: "CREATE TABLE other_connection_was_here (x)") }
        #expect(try !isCurrent())
    }

    @Test func anUpsertThroughAStaleFilterFindsWhatAnotherConnectionWrote() throws {
        let dir = TemporaryDirectory()
        var (path, store, filter) = try emptyStoreOnDisk(in: dir)

        // Another process (a scheduled import, say) adds a profile the filter has never seen.
        let otherStore = ProfileStore(database: try AppDatabase.open(path: path))
        _ = try otherStore.upsert([ProfileUpsert(id: "p1", properties: ["email": [.string("a@x.com")]])], segments: [])

        let outcome = try store.upsert([ProfileUpsert(id: nil, properties: ["email": [.string("A@X.com")], "city": [.string("Oslo")]])],
                                       prepared: nil, segments: [], now: Date(), filter: &filter).outcomes
        #expect(outcome == [.updated(pk: 1, id: "p1")])
        #expect(filter == nil, "a stale filter is dropped, not trusted")
        #expect(try store.find("p1")?.profile["city"] == [.string("Oslo")])
    }

    @Test func aWriteOnTheSameConnectionNotThroughTheFilterMakesItStale() throws {
        let database = try AppDatabase.inMemory()
        let store = ProfileStore(database: database)
        var filter: StoreKeyFilter? = try emptyFilter(database)
        // Another goal of the same daemon writes through the shared connection, which `data_version` does not see.
        _ = try store.upsert([ProfileUpsert(id: "p1", properties: ["email": [.string("c@x.com")]])], segments: [])
        #expect(try database.writer.writeWithoutTransaction { try filter!.isCurrent($0) } == false)

        let outcome = try store.upsert([ProfileUpsert(id: nil, properties: ["email": [.string("c@x.com")], "city": [.string("Oslo")]])],
                                       prepared: nil, segments: [], now: Date(), filter: &filter).outcomes
        #expect(outcome == [.updated(pk: 1, id: "p1")])
        #expect(filter == nil)
    }

    @Test func anUpsertThroughACurrentFilterFindsWhatEarlierBatchesWroteThroughIt() throws {
        let database = try AppDatabase.inMemory()
        let store = ProfileStore(database: database)
        var filter: StoreKeyFilter? = try emptyFilter(database)
        let first = try store.upsert([ProfileUpsert(id: nil, properties: ["email": [.string("b@x.com")]])],
                                     prepared: nil, segments: [], now: Date(), filter: &filter).outcomes
        #expect(first == [.created(pk: 1, id: "b@x.com")])
        let byIdentifier = try store.upsert([ProfileUpsert(id: nil, properties: ["email": [.string("B@x.com")], "city": [.string("Oslo")]])],
                                            prepared: nil, segments: [], now: Date(), filter: &filter).outcomes
        #expect(byIdentifier == [.updated(pk: 1, id: "b@x.com")])
        let byID = try store.upsert([ProfileUpsert(id: "b@x.com", properties: ["city": [.string("Bergen")]])],
                                    prepared: nil, segments: [], now: Date(), filter: &filter).outcomes
        #expect(byID == [.updated(pk: 1, id: "b@x.com")])
        #expect(filter != nil)
    }

    /// An import reads the store's keys on a reading connection while the platform prepares its export.
    @Test func aFilterReadOnAReaderHoldsTheStoreAndIsStaleAfterAnyWriteSinceItBegan() async throws {
        let dir = TemporaryDirectory()
        let path = dir.path + "/f.sqlite"
        let database = try AppDatabase.open(path: path)
        let store = ProfileStore(database: database)
        _ = try store.upsert((0..<300).map { ProfileUpsert(id: "p\($0)", properties: ["email": [.string("u\($0)@x.com")]]) }, segments: [])
        func isCurrent(_ filter: StoreKeyFilter) throws -> Bool { try database.writer.writeWithoutTransaction { try filter.isCurrent($0) } }

        let filter = try await StoreKeyFilter.build(reading: database.writer)
        for i in 0..<300 {
            #expect(filter.mayContain(id: "p\(i)"))
            #expect(filter.mayContain(IdentifierKey(property: "email", value: "u\(i)@x.com")))
        }
        #expect(try isCurrent(filter))

        // A write on the writer (another goal of the daemon) and one by another process each make a new build stale.
        _ = try store.upsert([ProfileUpsert(id: "mine", properties: [:])], segments: [])
        #expect(try !isCurrent(filter))
        let second = try await StoreKeyFilter.build(reading: database.writer)
        #expect(second.mayContain(id: "mine"))
        #expect(try isCurrent(second))
        _ = try ProfileStore(database: try AppDatabase.open(path: path)).upsert([ProfileUpsert(id: "theirs", properties: [:])], segments: [])
        #expect(try !isCurrent(second))
    }

    /// An import's filter keeps each identifier with its owner, so a key it holds needs no lookup, only a check
    /// against the profile it names (``ImportLookups``).
    @Test func anImportsFilterNamesEachIdentifiersOwnerBeforeAndAfterItGrows() async throws {
        let dir = TemporaryDirectory()
        let database = try AppDatabase.open(path: dir.path + "/f.sqlite")
        let store = ProfileStore(database: database)
        let outcomes = try store.upsert((0..<300).map { ProfileUpsert(id: "p\($0)", properties: ["email": [.string("U\($0)@x.com")]]) },
                                        segments: [])
        var filter = try await StoreKeyFilter.build(reading: database.writer)
        for (i, outcome) in outcomes.enumerated() {
            guard case .created(let pk, _) = outcome else { Issue.record("\(outcome)"); continue }
            #expect(filter.owner(of: IdentifierKey(property: "email", value: "u\(i)@x.com")) == .candidate(pk))
            #expect(filter.mayContain(id: "p\(i)"))
        }
        // The table starts at 1,024 slots for 300 keys; 5,000 more make it grow three times.
        for i in 0..<5_000 { filter.insert(IdentifierKey(property: "customer_id", value: "C\(i)"), owner: Int64(10_000 + i)) }
        filter.insert(IdentifierKey(property: "customer_id", value: "unowned"), owner: nil)
        for i in 0..<5_000 { #expect(filter.owner(of: IdentifierKey(property: "customer_id", value: "C\(i)")) == .candidate(Int64(10_000 + i))) }
        #expect(filter.owner(of: IdentifierKey(property: "email", value: "u7@x.com")) == .candidate(8))
        #expect(filter.owner(of: IdentifierKey(property: "customer_id", value: "unowned")) == .unknown)
        let absent = (0..<10_000).filter { filter.owner(of: IdentifierKey(property: "email", value: "absent\($0)@x.com")) != .absent }
        #expect(absent.count < 10, "only keys sharing a stored key's 32 hash bits are not surely absent: \(absent.count)")

        // A batch's keys looked up together get the answers they get one by one, in order: with owners and without.
        let mixed = (0..<300).flatMap { i in
            [IdentifierKey(property: "email", value: "u\(i)@x.com"), IdentifierKey(property: "customer_id", value: "C\(i * 17)"),
             IdentifierKey(property: "email", value: "absent\(i)@x.com"), IdentifierKey(property: "customer_id", value: "unowned")]
        }
        let hints = filter.owners(of: mixed)
        #expect(hints == mixed.map { filter.owner(of: $0) })
        #expect(hints.contains(.candidate(8)) && hints.contains(.unknown) && hints.contains(.absent), "all three answers are among them")
        var withoutOwners = try emptyFilter(try AppDatabase.inMemory())
        for key in mixed.prefix(600) { withoutOwners.insert(key) }
        #expect(withoutOwners.owners(of: mixed) == mixed.map { withoutOwners.owner(of: $0) })
        #expect(withoutOwners.owners(of: mixed).contains(.unknown) && withoutOwners.owners(of: mixed).contains(.absent))
    }

    /// Keys are kept by 32 bits of their hash: two that share them, or one key whose owner changes, must never turn
    /// into an answer that a stored key is absent.
    @Test func twoOwnersMeetingInOneSlotLeaveItToALookupNeverAbsent() {
        var table = StoreKeyFilter.OwnerTable(slots: 16)
        let shared: UInt64 = 0xDEAD_BEEF_0000_0001
        let sameTopBits: UInt64 = 0xDEAD_BEEF_0000_0002
        table.insert(shared, owner: 5)
        #expect(table.owner(of: shared) == .candidate(5))
        #expect(table.owner(of: sameTopBits) == .candidate(5), "the other key is checked against profile 5, and fails there")
        table.insert(shared, owner: 5)
        #expect(table.owner(of: shared) == .candidate(5), "the same owner again changes nothing")
        table.insert(sameTopBits, owner: 6)
        #expect(table.owner(of: shared) == .unknown)
        #expect(table.owner(of: sameTopBits) == .unknown)
        table.insert(0x1234_5678_0000_0000, owner: Int64(UInt32.max) + 1)
        #expect(table.owner(of: 0x1234_5678_0000_0000) == .unknown, "a row key beyond 32 bits is looked up")
        #expect(table.owner(of: 0x0BAD_F00D_0000_0000) == .absent)
        #expect(table.count == 2)
    }

    /// A key carries the filter's hash of its text, and sets and dictionaries hash that alone: keys are equal exactly
    /// when their property and value are, however the text splits between the two.
    @Test func identifierKeysCarryTheFiltersHashAndAreEqualOnTheirText() {
        let a = IdentifierKey(property: "email", value: "ann@x.com")
        #expect(a == IdentifierKey(property: "email", value: "ann@x.com"))
        #expect(a.storeHash == StoreKeyFilter.hash(property: "email", value: "ann@x.com"))
        #expect(a != IdentifierKey(property: "emai", value: "lann@x.com"))
        #expect(a != IdentifierKey(property: "customer_id", value: "ann@x.com"))
        #expect(a.storeHash != StoreKeyFilter.hash(property: nil, value: "ann@x.com"), "an id and an identifier hash apart")
        let keys = (0..<5_000).map { IdentifierKey(property: $0 % 2 == 0 ? "email" : "shop_id", value: "v\($0 / 2)") }
        let set = Set(keys + keys.prefix(100))
        #expect(set.count == keys.count)
        #expect(keys.allSatisfy { set.contains(IdentifierKey(property: $0.property, value: $0.value)) })
        #expect(!set.contains(IdentifierKey(property: "email", value: "v2500")))
    }
}
