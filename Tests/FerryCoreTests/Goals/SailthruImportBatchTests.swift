import Foundation
import Logging
import Testing
@testable import FerryCore

/// Rows of one import batch see what earlier rows of the same batch wrote (the batch runs against a prefetched cache).
@Suite struct SailthruImportBatchTests {
    @Test(.timeLimit(.minutes(2)))
    func rowsInOneBatchMergeInOrderLinkToProfilesCreatedEarlierAndReportConflicts() async throws {
        let dir = TemporaryDirectory()
        let (connection, goal) = try loadSailthruImportConnection("""
        lists: [L]
        match: { email: email, shopify_id: shopify_id }
        create_profiles: true
        fields:
          - { from: order_total, to: lifetime_spend, mode: sum }
          - { from: tags, to: tags, mode: add }
        """, in: dir)

        let database = try AppDatabase.inMemory()
        let store = ProfileStore(database: database)
        _ = try store.upsert([ProfileUpsert(id: "p", properties: ["email": [.string("p@x.com")]]),
                              ProfileUpsert(id: "q", properties: ["shopify_id": [.string("Q2")]])], segments: [])
        // Line 2 creates a@x.com; line 3 links to it by shopify_id alone; line 4 by email; line 5 matches p and q.
        let csv = """
        email,shopify_id,order_total,tags
        a@x.com,S1,1,x
        ,S1,2,y
        A@x.com,,4,"x, z"
        p@x.com,Q2,8,w

        """
        try keepImportExport(csv, in: dir, database: database)
        let recorder = try await runKeptImport(goal, of: connection, database: database, in: dir, batchSize: 100)

        #expect(try store.count() == 3)
        let a = try #require(try store.find("a@x.com"))
        #expect(a.profile.id == "a@x.com")
        #expect(a.profile["shopify_id"] == [.string("S1")])
        #expect(a.profile["lifetime_spend"] == [.number(7)])
        #expect(a.profile["tags"] == [.string("x"), .string("y"), .string("z")])
        #expect(try store.find("S1")?.pk == a.pk)
        #expect(try store.find("p")?.profile["lifetime_spend"] == [])
        #expect(try store.find("q")?.profile["lifetime_spend"] == [])

        let counts = await recorder.counts
        #expect(counts.read == 4)
        #expect(counts.created == 1)
        #expect(counts.updated == 2)
        let errors = await recorder.rowErrors
        #expect(errors.count == 1)
        #expect(errors.first?.location == "list L line 5")
        #expect(errors.first?.reason.contains("is profile p but shopify_id 'Q2' is profile q") == true)
        #expect(await recorder.touched.map(\.action) == ["created", "updated", "updated"])
    }

    /// New profiles are written 100 rows to a statement after the rows that made them: later rows of the
    /// batch (a repeated email, an identifier another row gave) must still find and update them, and each
    /// gets the row key a one-row INSERT would have given it.
    @Test(.timeLimit(.minutes(2)))
    func manyProfilesCreatedInOneBatchAreLinkedUpdatedAndCountedLikeOneByOne() async throws {
        let dir = TemporaryDirectory()
        let (connection, goal) = try loadSailthruImportConnection(sumOrderTotalByEmail, in: dir)

        let database = try AppDatabase.inMemory()
        let store = ProfileStore(database: database)
        _ = try store.upsert([ProfileUpsert(id: "old", properties: ["email": [.string("old@x.com")], "lifetime_spend": [.number(1)]])],
                             segments: [])
        // 250 new members (three multi-row statements' worth), then every 7th again, and the stored one between them.
        var lines = ["email,order_total"]
        for i in 0..<250 { lines.append("n\(i)@x.com,\(i)") }
        for i in stride(from: 0, to: 250, by: 7) { lines.append("N\(i)@x.com,1000") }
        lines.insert("old@x.com,2", at: 120)
        let csv = lines.joined(separator: "\n") + "\n"
        try keepImportExport(csv, in: dir, database: database)
        let recorder = try await runKeptImport(goal, of: connection, database: database, in: dir, batchSize: 1000)

        #expect(try store.count() == 251)
        let old = try #require(try store.find("old@x.com"))
        #expect(old.profile["lifetime_spend"] == [.number(3)])
        for i in 0..<250 {
            let found = try #require(try store.find("n\(i)@x.com"))
            // Row keys in file order after the stored profile's, as SQLite gives them one INSERT at a time.
            #expect(found.pk == old.pk + 1 + Int64(i))
            #expect(found.profile.id == "n\(i)@x.com")
            #expect(found.profile["lifetime_spend"] == [.number(Double(i) + (i % 7 == 0 ? 1000 : 0))], "n\(i)")
        }
        let counts = await recorder.counts
        #expect(counts.read == 250 + 36 + 1)
        #expect(counts.created == 250)
        #expect(counts.updated == 37)
        #expect(await recorder.rowErrors.isEmpty)
        #expect(try DataExchange.counts(database: database) == ["c": 251])
    }

    /// A list big beside the store keeps the store's keys in a filter across its batches: profiles created by one
    /// batch must be found by the next through the keys it added.
    @Test(.timeLimit(.minutes(2)))
    func profilesCreatedByEarlierBatchesAreFoundByLaterOnesThroughTheKeyFilter() async throws {
        let dir = TemporaryDirectory()
        let (connection, goal) = try loadSailthruImportConnection(sumOrderTotalByEmail, in: dir)
        let database = try AppDatabase.inMemory()
        let store = ProfileStore(database: database)
        _ = try store.upsert([ProfileUpsert(id: "old", properties: ["email": [.string("old@x.com")]])], segments: [])
        #expect(try await database.writer.writeWithoutTransaction { try ProfileStore.keyFilter(forRows: 400, db: $0) } != nil,
                "the store is small enough for the filter")
        var lines = ["email,order_total"]
        for i in 0..<200 { lines.append("n\(i)@x.com,1") }
        for i in 0..<200 { lines.append("N\(i)@X.com,2") }
        lines.append("old@x.com,5")
        try keepImportExport(lines.joined(separator: "\n") + "\n", in: dir, database: database)
        let recorder = try await runKeptImport(goal, of: connection, database: database, in: dir, batchSize: 30)

        #expect(try store.count() == 201)
        for i in 0..<200 { #expect(try store.find("n\(i)@x.com")?.profile["lifetime_spend"] == [.number(3)], "n\(i)") }
        #expect(try store.find("old")?.profile["lifetime_spend"] == [.number(5)])
        let counts = await recorder.counts
        #expect(counts.created == 200)
        #expect(counts.updated == 201)
    }

    @Test func anImportBatchThroughAStaleKeyFilterFindsWhatAnotherConnectionWrote() throws {
        let dir = TemporaryDirectory()
        let path = dir.path + "/f.sqlite"
        let database = try AppDatabase.open(path: path)
        let filter = try #require(try database.writer.writeWithoutTransaction { try ProfileStore.keyFilter(forRows: 100, db: $0) })
        // Another process writes a profile after the filter was read.
        _ = try ProfileStore(database: try AppDatabase.open(path: path))
            .upsert([ProfileUpsert(id: "p1", properties: ["email": [.string("a@x.com")]])], segments: [])

        try database.writer.write { db in
            var profiles = ImportProfiles(db: db, now: Date(), keys: ["email"], filter: filter)
            try profiles.prefetch(rows: [[IdentifierKey(property: "email", value: "a@x.com")]], createProfiles: true)
            #expect(try profiles.owner(property: "email", value: "a@x.com") == 1)
            #expect(try profiles.idExists("p1"))
            #expect(try profiles.takeFilter() == nil, "a stale filter is dropped")
        }
    }
}
