import Foundation
import GRDB
import Testing
@testable import FerryCore

/// The batch writer must give exactly what upserting the same rows one at a time gives.
@Suite struct ProfileBatchWriterTests {
    let segments = [
        SegmentDefinition(name: "big", rule: .condition(property: "spend", .gte(100))),
        SegmentDefinition(name: "vip", rule: nil),
    ]
    let now = Date(timeIntervalSince1970: 1_700_000_000)

    func row(_ id: String?, _ properties: [String: [PropertyValue]]) -> ProfileUpsert { ProfileUpsert(id: id, properties: properties) }

    /// Every table the upsert writes, as text, in key order.
    func dump(_ store: ProfileStore) throws -> [String] {
        try store.database.writer.read { db in
            try Row.fetchAll(db, sql: "SELECT pk, id, properties FROM profile ORDER BY pk").map { "\($0)" }
                + Row.fetchAll(db, sql: "SELECT * FROM identifier ORDER BY property, value").map { "\($0)" }
                + Row.fetchAll(db, sql: "SELECT * FROM segment_member ORDER BY segment, profile_pk").map { "\($0)" }
        }
    }

    /// Runs `batches` through the batch path, through it again with the rows prepared beforehand (as a load's reading
    /// thread does) and the store's keys in a filter (as a load keeps them) and, on a third store, row by row; all
    /// three must agree.
    func expectSameAsRowByRow(_ batches: [[ProfileUpsert]]) throws -> [UpsertOutcome] {
        let batched = ProfileStore(database: try AppDatabase.inMemory())
        let prepared = ProfileStore(database: try AppDatabase.inMemory())
        let single = ProfileStore(database: try AppDatabase.inMemory())
        var batchedOutcomes: [UpsertOutcome] = []
        var preparedOutcomes: [UpsertOutcome] = []
        var singleOutcomes: [UpsertOutcome] = []
        var filter: StoreKeyFilter? = try prepared.database.writer.writeWithoutTransaction {
            try StoreKeyFilter.build(db: $0, expectedNewKeys: 16)
        }
        for batch in batches {
            batchedOutcomes += try batched.upsert(batch, segments: segments, now: now)
            preparedOutcomes += try prepared.upsert(batch, prepared: PreparedRows(batch, segments: segments, now: now), filter: &filter).outcomes
            #expect(filter != nil, "nothing else wrote: the filter stays in use")
            for row in batch {
                try single.database.writer.write { db in
                    let (outcome, profile) = try ProfileStore.upsert(row, db: db, now: now)
                    singleOutcomes.append(outcome)
                    switch outcome {
                    case .created(let pk, _), .updated(let pk, _):
                        try ProfileStore.refreshMembership(of: [(pk, profile!)], segments: segments, db: db, now: now)
                    default: break
                    }
                }
            }
        }
        #expect(batchedOutcomes == singleOutcomes)
        #expect(preparedOutcomes == singleOutcomes)
        #expect(try dump(batched) == dump(single))
        #expect(try dump(prepared) == dump(single))
        return batchedOutcomes
    }

    @Test func aRepeatedRowWithAnEmptyListIsUnchangedAsItWouldBeRowByRow() throws {
        let outcomes = try expectSameAsRowByRow([[
            row("p1", ["spend": [.number(5)], "interests": []]),
            row("p1", ["spend": [.number(5)], "interests": []]),
        ]])
        #expect(outcomes == [.created(pk: 1, id: "p1"), .unchanged(pk: 1, id: "p1")])
    }

    @Test func duplicateIdsInOneBatchCreateThenUpdateThenStayUnchanged() throws {
        let outcomes = try expectSameAsRowByRow([[
            row("p1", ["email": [.string("a@x.com")], "spend": [.number(5)]]),
            row("p1", ["spend": [.number(500)]]),
            row("p1", ["spend": [.number(500)]]),
        ]])
        #expect(outcomes == [.created(pk: 1, id: "p1"), .updated(pk: 1, id: "p1"), .unchanged(pk: 1, id: "p1")])
    }

    @Test func aProfileEnteringLeavingAndReenteringASegmentInOneBatchEndsAsRowByRow() throws {
        let outcomes = try expectSameAsRowByRow([
            [row("p0", ["spend": [.number(300)]])],
            [
                row("p1", ["spend": [.number(500)]]),
                row("p1", ["spend": [.number(5)]]),
                row("p0", ["spend": [.number(1)]]),
                row("p1", ["spend": [.number(600)]]),
                row("p0", ["spend": [.number(200)]]),
            ],
        ])
        #expect(outcomes.count == 6)
    }

    @Test func identifierClaimedEarlierInTheBatchRejectsALaterRow() throws {
        let outcomes = try expectSameAsRowByRow([[
            row("p1", ["email": [.string("a@x.com")]]),
            row("p2", ["email": [.string(" A@X.COM")]]),
            row("p3", ["customer_id": [.string("C1")]]),
            row("p4", ["customer_id": [.string("C1")], "email": [.string("d@x.com")]]),
        ]])
        #expect(outcomes[1] == .rejected(reason: "email 'a@x.com' already belongs to profile p1"))
        #expect(outcomes[3] == .rejected(reason: "customer_id 'C1' already belongs to profile p3"))
    }

    @Test func identifierConflictsAcrossBatchesNameTheStoredOwner() throws {
        let outcomes = try expectSameAsRowByRow([
            [row("p1", ["email": [.string("a@x.com")]]), row(nil, ["email": [.string("b@x.com")]])],
            [row("p2", ["email": [.string("a@x.com")]]), row("p3", ["email": [.string("B@x.com")]]), row("p4", ["email": [.string("c@x.com")]])],
        ])
        #expect(outcomes[2] == .rejected(reason: "email 'a@x.com' already belongs to profile p1"))
        #expect(outcomes[3] == .rejected(reason: "email 'b@x.com' already belongs to profile b@x.com"))
        #expect(outcomes[4] == .created(pk: 3, id: "p4"))
    }

    @Test func updatesAndCreatesMixInOneBatch() throws {
        let outcomes = try expectSameAsRowByRow([
            [row("p1", ["email": [.string("a@x.com")], "spend": [.number(5)]]), row("p2", ["spend": [.number(200)], "segments": [.string("vip")]])],
            [
                row(nil, ["email": [.string("a@x.com")], "spend": [.number(150)]]),  // update found by email
                row("p3", ["email": [.string("c@x.com")]]),                             // create
                row("p2", ["spend": [.number(1)]]),                                     // update leaves "big", stays "vip"
                row(nil, ["email": [.string("c@x.com")], "city": [.string("Oslo")]]),   // update of a row created above
                row(nil, ["email": [.string("e@x.com")]]),                              // create with a made id
                row(nil, ["customer_id": [.string("e@x.com")]]),                        // made id already taken
            ],
        ])
        #expect(outcomes.suffix(6) == [
            .updated(pk: 1, id: "p1"), .created(pk: 3, id: "p3"), .updated(pk: 2, id: "p2"), .updated(pk: 3, id: "p3"),
            .created(pk: 4, id: "e@x.com"),
            .rejected(reason: "the id 'e@x.com' made from the first identifier is already another profile's id"),
        ])
    }

    @Test func anIdentifierFreedEarlierInTheBatchCanBeClaimed() throws {
        let outcomes = try expectSameAsRowByRow([
            [row("p1", ["email": [.string("a@x.com")]])],
            [
                row("p1", ["email": [.string("new@x.com")]]),
                row("p2", ["email": [.string("a@x.com")]]),
                row(nil, ["email": [.string("new@x.com")], "spend": [.number(101)]]),
                row("p3", [:]),
            ],
        ])
        #expect(outcomes.suffix(4) == [.updated(pk: 1, id: "p1"), .created(pk: 2, id: "p2"), .updated(pk: 1, id: "p1"),
                                       .created(pk: 3, id: "p3")])
    }

    @Test func aLargeMixedLoadAgreesAcrossManyBatches() throws {
        // Deterministic mix: repeated ids, shared emails, rows keyed only by email, changed emails.
        var rows: [ProfileUpsert] = []
        for i in 0..<1_500 {
            let n = (i * 7919) % 600
            switch i % 5 {
            case 0: rows.append(row("p\(n)", ["email": [.string("u\(n % 450)@x.com")], "spend": [.number(Double(i % 300))]]))
            case 1: rows.append(row(nil, ["email": [.string("U\(n % 450)@x.com")], "city": [.string("c\(i % 7)")]]))
            case 2: rows.append(row("p\(n)", ["spend": [.number(Double(n))], "segments": i % 3 == 0 ? [.string("vip")] : []]))
            case 3: rows.append(row(nil, ["member_id": [.string("m\(n % 300)")], "email": [.string("v\(n)@x.com")]]))
            default: rows.append(row("p\(n % 50)", ["email": [.string("w\(i % 40)@x.com")]]))
            }
        }
        let batches = stride(from: 0, to: rows.count, by: 137).map { Array(rows[$0..<min($0 + 137, rows.count)]) }
        let outcomes = try expectSameAsRowByRow(batches)
        #expect(outcomes.contains { if case .rejected = $0 { true } else { false } })
        #expect(outcomes.contains { if case .updated = $0 { true } else { false } })
    }

    @Test func manyNewProfilesInOneBatchAreWrittenTogetherAndLaterRowsSeeThem() throws {
        // Over 2 × ProfileBatchWriter.insertRows new rows, so full multi-row inserts and single-row ones both run;
        // updates, conflicts and made ids in between force the held-back rows out mid-batch.
        var batch: [ProfileUpsert] = []
        for i in 0..<(2 * ProfileBatchWriter.insertRows + 37) {
            var properties: [String: [PropertyValue]] = ["email": [.string("u\(i)@x.com")], "spend": [.number(Double(i))]]
            if i % 3 == 0 { properties["customer_id"] = [.string("c\(i)")] }
            if i % 7 == 0 { properties["segments"] = [.string("vip")] }
            batch.append(row(i % 11 == 0 ? nil : "p\(i)", properties))
            if i % 50 == 49 {
                batch.append(row(nil, ["email": [.string("U\(i - 1)@x.com")], "city": [.string("Oslo")]]))  // update, found by email
                batch.append(row("q\(i)", ["customer_id": [.string("c\(i - 4)")]]))                      // conflict with a new row
                batch.append(row("p\(i - 2)", ["spend": [.number(1)]]))                                  // leaves "big"
            }
        }
        let outcomes = try expectSameAsRowByRow([batch, Array(batch.prefix(30))])
        #expect(outcomes.filter { if case .created = $0 { true } else { false } }.count >= 2 * ProfileBatchWriter.insertRows + 37)
        #expect(outcomes.contains(.rejected(reason: "customer_id 'c45' already belongs to profile p45")))
    }
}
