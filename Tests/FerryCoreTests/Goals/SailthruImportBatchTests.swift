import Foundation
import GRDB
import Logging
import Testing
@testable import FerryCore

/// Rows of one import batch see what earlier rows of the same batch wrote (the batch runs against a prefetched cache).
@Suite struct SailthruImportBatchTests {
    /// Connection `c` with `sumOrderTotalByEmail`, and an empty store in a file: a reading connection can plan batches.
    func sumImportInAFile(in dir: TemporaryDirectory) throws -> (Connection, SailthruImportGoal, AppDatabase, ProfileStore) {
        let (connection, goal) = try loadSailthruImportConnection(sumOrderTotalByEmail, in: dir)
        let database = try AppDatabase.open(path: dir.path + "/store.sqlite")
        return (connection, goal, database, ProfileStore(database: database))
    }

    /// The segments the profile with `id` is stored as a member of, by name.
    func memberships(_ id: String, in store: ProfileStore) throws -> [String] {
        try store.memberships(pk: try #require(try store.find(id)?.pk, "\(id)")).map(\.segment).sorted()
    }

    /// Two fields merged into one property: a row whose second field puts back what its first changed leaves the
    /// profile unchanged, and one whose fields both change it is updated to the last.
    @Test(.timeLimit(.minutes(2)))
    func aPropertyTwoFieldsChangeAndChangeBackIsUnchangedAndOneTheyBothChangeTakesTheLast() async throws {
        let dir = TemporaryDirectory()
        let (connection, goal) = try loadSailthruImportConnection("""
        lists: [L]
        match: { email: email }
        create_profiles: false
        fields:
          - { from: nick, to: nickname, mode: set }
          - { from: alias, to: nickname, mode: set }
        """, in: dir)
        let database = try AppDatabase.inMemory()
        let store = ProfileStore(database: database)
        _ = try store.upsert([ProfileUpsert(id: "a", properties: ["email": [.string("a@x.com")], "nickname": [.string("Al")]]),
                              ProfileUpsert(id: "b", properties: ["email": [.string("b@x.com")], "nickname": [.string("Bo")]])],
                             segments: [])
        try keepImportExport("email,nick,alias\na@x.com,Ally,Al\nb@x.com,Bee,Bea\n", in: dir, database: database)
        let recorder = try await runKeptImport(goal, of: connection, database: database, in: dir, batchSize: 100)

        #expect(try store.find("a")?.profile["nickname"] == [.string("Al")])
        #expect(try store.find("b")?.profile["nickname"] == [.string("Bea")])
        let counts = await recorder.counts
        #expect(counts.unchanged == 1)
        #expect(counts.updated == 1)
    }

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

    /// On a store in a file, each batch is planned on another thread while the batch before is written: a member
    /// spread over two or three batches must be created once and summed once a row, whichever batch wrote last.
    @Test(.timeLimit(.minutes(2)))
    func membersSpreadOverConsecutiveBatchesAreCreatedOnceAndSummedOnceARowWithBatchesPlannedAhead() async throws {
        let dir = TemporaryDirectory()
        let (connection, goal, database, store) = try sumImportInAFile(in: dir)
        // Every fourth member is stored already, with 1000 spent.
        _ = try store.upsert(stride(from: 0, to: 200, by: 4).map {
            ProfileUpsert(id: "m\($0)", properties: ["email": [.string("m\($0)@x.com")], "lifetime_spend": [.number(1000)]])
        }, segments: [])
        // Three rows a member, in batches of four: most members straddle a batch boundary.
        var lines = ["email,order_total"]
        for row in 0..<600 { lines.append("M\(row / 3)@x.com,\(row % 3 + 1)") }
        try keepImportExport(lines.joined(separator: "\n") + "\n", in: dir, database: database)
        let log = CapturedLog()
        let recorder = try await runKeptImport(goal, of: connection, database: database, in: dir, batchSize: 4, log: log)

        #expect(try store.count() == 200)
        for member in 0..<200 {
            let found = try #require(try store.find("m\(member)@x.com"), "m\(member)")
            #expect(found.profile["lifetime_spend"] == [.number(member % 4 == 0 ? 1006 : 6)], "m\(member)")
        }
        let counts = await recorder.counts
        #expect(counts.created == 150)
        #expect(counts.updated == 450)
        #expect(await recorder.rowErrors.isEmpty)
        // A batch that starts on a new member holds its plan; one that goes on with the last batch's member does not.
        if SailthruImportExecutor.plansAhead { #expect(log.metadata(of: "list applied")?["planned_ahead"] == "49") }
    }

    /// On a store in a file, each batch after the first is worked out on another thread while the batch before is
    /// written, and the writer only makes its writes: new profiles must get the row keys, sums, memberships and data
    /// exchange entries that working each batch out on the writer gives.
    @Test(.timeLimit(.minutes(2)))
    func batchesPlannedAheadWriteWhatBatchesWorkedOutOnTheWriterWould() async throws {
        let dir = TemporaryDirectory()
        let (connection, goal) = try loadSailthruImportConnection(sumOrderTotalByEmail, in: dir)
        let everyone = [SegmentDefinition(name: "everyone", rule: .condition(property: "email", .exists(true)))]
        let database = try AppDatabase.open(path: dir.path + "/store.sqlite")
        let store = ProfileStore(database: database)
        // Every other member of the first 200 is stored already, with 1000 spent.
        _ = try store.upsert(stride(from: 0, to: 200, by: 2).map {
            ProfileUpsert(id: "m\($0)", properties: ["email": [.string("m\($0)@x.com")], "lifetime_spend": [.number(1000)]])
        }, segments: everyone)
        var lines = ["email,order_total"]
        for member in 0..<300 { lines.append("M\(member)@x.com,\(member % 7 + 1)") }
        try keepImportExport(lines.joined(separator: "\n") + "\n", in: dir, database: database)
        let log = CapturedLog()
        let recorder = try await runKeptImport(goal, of: connection, database: database, in: dir, batchSize: 10, segments: everyone, log: log)

        #expect(try store.count() == 300)
        var created: Int64 = 0
        for member in 0..<300 {
            let found = try #require(try store.find("m\(member)@x.com"), "m\(member)")
            let stored = member < 200 && member % 2 == 0
            #expect(found.profile["lifetime_spend"] == [.number(Double(member % 7 + 1) + (stored ? 1000 : 0))], "m\(member)")
            if !stored {
                created += 1
                #expect(found.pk == 100 + created, "m\(member): row keys in file order after the stored profiles'")
                #expect(try store.memberships(pk: found.pk).map(\.segment) == ["everyone"], "m\(member)")
            }
        }
        let counts = await recorder.counts
        #expect(counts.created == 200)
        #expect(counts.updated == 100)
        #expect(await recorder.rowErrors.isEmpty)
        #expect(try DataExchange.counts(database: database) == ["c": 300])
        // The batches ran with foreign keys unchecked: every row they wrote still names a profile, and the writer checks again.
        let (orphans, checked) = try await database.writer.writeWithoutTransaction { db in
            (try Row.fetchAll(db, sql: "PRAGMA foreign_key_check").count, try Bool.fetchOne(db, sql: "PRAGMA foreign_keys"))
        }
        #expect(orphans == 0)
        #expect(checked == true)
        let applied = try #require(log.metadata(of: "list applied"))
        #expect(applied["batches"] == "30")
        // All but the first, which no batch before it read for.
        if SailthruImportExecutor.plansAhead { #expect(applied["planned_ahead"] == "29") }
    }

    /// A batch's plan is worked out from owners read as the batch two before it ended. Another connection's write
    /// after that batch commits changes the store the batch in between begins on: both plans made before it must be
    /// refused (the second one although the batch in between wrote nothing it read), or a row creates a profile that
    /// the other connection has created meanwhile.
    @Test(.timeLimit(.minutes(2)))
    func aWriteByAnotherConnectionBetweenBatchesRefusesThePlansReadBeforeIt() async throws {
        let dir = TemporaryDirectory()
        let (connection, goal, database, store) = try sumImportInAFile(in: dir)
        // Six batches of ten rows; the third adds 5 to y, whom another connection creates after the first batch.
        var lines = ["email,order_total"]
        for member in 0..<60 { lines.append(member == 25 ? "y@x.com,5" : "m\(member)@x.com,1") }
        try keepImportExport(lines.joined(separator: "\n") + "\n", in: dir, database: database)
        let other = try AppDatabase.open(path: dir.path + "/store.sqlite")
        let writeAfterFirstBatch = WriteWhenDone(rows: 10) {
            _ = try ProfileStore(database: other).upsert([ProfileUpsert(id: "y", properties: ["email": [.string("y@x.com")],
                                                                                              "lifetime_spend": [.number(2000)]])],
                                                         segments: [])
        }
        let log = CapturedLog()
        let recorder = try await runKeptImport(goal, of: connection, database: database, in: dir, batchSize: 10, log: log,
                                               progress: writeAfterFirstBatch)

        #expect(writeAfterFirstBatch.wrote)
        #expect(await recorder.rowErrors.isEmpty)
        #expect(try store.find("y")?.profile["lifetime_spend"] == [.number(2005)], "the row is summed into the profile created meanwhile")
        #expect(try store.count() == 60)
        #expect(await recorder.counts.created == 59)
        // The second batch's plan (read as the first began) and the third's (read as the first ended) are refused.
        if SailthruImportExecutor.plansAhead { #expect(log.metadata(of: "list applied")?["planned_ahead"] == "3") }
    }

    /// A progress sink that makes one write, through its own connection, when a run reports `rows` done.
    final class WriteWhenDone: ProgressSink, @unchecked Sendable {
        // `done` is only touched with `lock` held.
        private let lock = NSLock()
        private var done = false
        private let rows: Int
        private let write: @Sendable () throws -> Void

        init(rows: Int, write: @escaping @Sendable () throws -> Void) {
            self.rows = rows
            self.write = write
        }

        var wrote: Bool { lock.withLock { done } }

        func progress(label: String, done rowsDone: Int, total: Int?) async {
            guard rowsDone == rows else { return }
            try? write()
            lock.withLock { done = true }
        }
    }

    /// A row that gives a stored profile another identifier re-indexes it, reading and writing the identifier table row
    /// by row, which a plan made ahead cannot: such batches are worked out on the writer, the others still planned.
    @Test(.timeLimit(.minutes(2)))
    func batchesThatGiveProfilesNewIdentifiersAreWorkedOutOnTheWriter() async throws {
        let dir = TemporaryDirectory()
        let (connection, goal) = try loadSailthruImportConnection("""
        lists: [L]
        match: { email: email, shop: shopify_id }
        create_profiles: true
        fields:
          - { from: order_total, to: lifetime_spend, mode: sum }
        """, in: dir)
        let database = try AppDatabase.open(path: dir.path + "/store.sqlite")
        let store = ProfileStore(database: database)
        _ = try store.upsert((0..<20).map { ProfileUpsert(id: "m\($0)", properties: ["email": [.string("m\($0)@x.com")]]) }, segments: [])
        // The first two batches give stored members a shop id; the last four create members with both.
        var lines = ["email,shop,order_total"]
        for member in 0..<60 { lines.append("m\(member)@x.com,S\(member),\(member)") }
        try keepImportExport(lines.joined(separator: "\n") + "\n", in: dir, database: database)
        let log = CapturedLog()
        let recorder = try await runKeptImport(goal, of: connection, database: database, in: dir, batchSize: 10, log: log)

        for member in 0..<60 {
            let found = try #require(try store.find("S\(member)"), "S\(member)")
            #expect(found.profile["email"] == [.string("m\(member)@x.com")])
            #expect(found.profile["lifetime_spend"] == [.number(Double(member))])
        }
        #expect(await recorder.counts.created == 40)
        #expect(await recorder.counts.updated == 20)
        if SailthruImportExecutor.plansAhead { #expect(log.metadata(of: "list applied")?["planned_ahead"] == "4") }
    }

    /// A profile a batch creates gets the memberships its batch's plan worked out for it, one bit a segment, off the
    /// writer's thread; one that a later row of the same batch changes again is evaluated again by the writer.
    @Test(.timeLimit(.minutes(2)))
    func newProfilesJoinTheSegmentsTheirPlansWorkedOutAndOnesChangedAgainInTheirBatchAreEvaluatedAgain() async throws {
        let dir = TemporaryDirectory()
        let (connection, goal) = try loadSailthruImportConnection("""
        lists: [L]
        match: { email: email }
        create_profiles: true
        fields:
          - { from: order_total, to: lifetime_spend, mode: sum }
          - { from: tags, to: tags, mode: add }
        """, in: dir)
        let segments = [SegmentDefinition(name: "big", rule: .condition(property: "lifetime_spend", .gte(100))),
                        SegmentDefinition(name: "everyone", rule: .condition(property: "email", .exists(true))),
                        SegmentDefinition(name: "tagged", rule: .condition(property: "tags", .exists(true)))]
        let database = try AppDatabase.open(path: dir.path + "/store.sqlite")
        // Batches of two, each after the first planned ahead. "twice" is created by its batch's first row, then made big
        // by the second; "grows" is created small and made big two batches later.
        try keepImportExport("""
        email,order_total,tags
        a@x.com,5,
        b@x.com,500,
        c@x.com,5,gold
        d@x.com,500,gold
        twice@x.com,60,
        twice@x.com,50,
        grows@x.com,60,
        e@x.com,5,
        f@x.com,500,silver
        h@x.com,5,
        grows@x.com,50,
        g@x.com,500,

        """, in: dir, database: database)
        let log = CapturedLog()
        _ = try await runKeptImport(goal, of: connection, database: database, in: dir, batchSize: 2, segments: segments, log: log)

        let store = ProfileStore(database: database)
        #expect(try memberships("a@x.com", in: store) == ["everyone"])
        #expect(try memberships("b@x.com", in: store) == ["big", "everyone"])
        #expect(try memberships("c@x.com", in: store) == ["everyone", "tagged"])
        #expect(try memberships("d@x.com", in: store) == ["big", "everyone", "tagged"])
        #expect(try memberships("twice@x.com", in: store) == ["big", "everyone"])
        #expect(try memberships("e@x.com", in: store) == ["everyone"])
        #expect(try memberships("f@x.com", in: store) == ["big", "everyone", "tagged"])
        #expect(try memberships("grows@x.com", in: store) == ["big", "everyone"])
        #expect(try memberships("h@x.com", in: store) == ["everyone"])
        #expect(try memberships("g@x.com", in: store) == ["big", "everyone"])
        if SailthruImportExecutor.plansAhead { #expect(log.metadata(of: "list applied")?["planned_ahead"] == "5") }
    }

    /// Membership follows the properties segments read: an import moves a profile in or out when it changes one of
    /// them, and leaves it where it is when it changes only others.
    @Test(.timeLimit(.minutes(2)))
    func importedChangesToWhatSegmentsReadMoveProfilesInAndOutAndOtherChangesLeaveThemBe() async throws {
        let dir = TemporaryDirectory()
        let (connection, goal) = try loadSailthruImportConnection("""
        lists: [L]
        match: { email: email }
        create_profiles: true
        fields:
          - { from: order_total, to: lifetime_spend, mode: sum }
          - { from: tags, to: tags, mode: add }
          - { from: city, to: city, mode: set }
        """, in: dir)
        let segments = [SegmentDefinition(name: "big", rule: .condition(property: "lifetime_spend", .gte(100))),
                        SegmentDefinition(name: "tagged", rule: .condition(property: "tags", .exists(true)))]
        let database = try AppDatabase.open(path: dir.path + "/store.sqlite")
        let store = ProfileStore(database: database)
        _ = try store.upsert([ProfileUpsert(id: "rises", properties: ["email": [.string("rises@x.com")], "lifetime_spend": [.number(50)]]),
                              ProfileUpsert(id: "stays", properties: ["email": [.string("stays@x.com")], "lifetime_spend": [.number(150)]]),
                              ProfileUpsert(id: "falls", properties: ["email": [.string("falls@x.com")], "lifetime_spend": [.number(200)]])],
                             segments: segments)
        try keepImportExport("""
        email,order_total,tags,city
        rises@x.com,60,,
        stays@x.com,,gold,
        falls@x.com,-150,,
        new@x.com,500,,
        stays@x.com,,,Oslo

        """, in: dir, database: database)
        _ = try await runKeptImport(goal, of: connection, database: database, in: dir, batchSize: 2, segments: segments)

        #expect(try memberships("rises", in: store) == ["big"])
        #expect(try memberships("stays", in: store) == ["big", "tagged"])
        #expect(try memberships("falls", in: store) == [])
        #expect(try memberships("new@x.com", in: store) == ["big"])
        #expect(try store.find("stays")?.profile["city"] == [.string("Oslo")])
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
            #expect(try profiles.owner(of: IdentifierKey(property: "email", value: "a@x.com")) == 1)
            #expect(try profiles.idExists("p1"))
            #expect(try profiles.takeFilter() == nil, "a stale filter is dropped")
        }
    }
}
