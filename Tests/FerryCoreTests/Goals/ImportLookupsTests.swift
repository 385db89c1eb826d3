import Foundation
import GRDB
import Testing
@testable import FerryCore

/// An import batch's lookahead is read on another connection before the batch ahead of it commits; laid under what
/// that batch knew as it committed, it must say what a fresh read would.
@Suite struct ImportLookupsTests {
    static let keys: Set<String> = ["email", "shopify_id", "lifetime_spend"]

    static func rows(_ emails: [String]) -> [[IdentifierKey]] {
        emails.map { [IdentifierKey(property: "email", value: $0)] }
    }

    static func read(_ emails: [String], db: Database) throws -> ImportLookups {
        var known = ImportLookups()
        try known.prefetch(rows: rows(emails), createProfiles: true, keys: keys, filter: nil, db: db)
        return known
    }

    @Test func aLookaheadReadBeforeTheLastBatchCommittedMatchesAFreshReadOnceOverlaid() async throws {
        let dir = TemporaryDirectory()
        let database = try AppDatabase.open(path: dir.path + "/store.sqlite")
        _ = try ProfileStore(database: database).upsert([
            ProfileUpsert(id: "a", properties: ["email": [.string("a@x.com")], "lifetime_spend": [.number(1)]]),
            ProfileUpsert(id: "b", properties: ["email": [.string("b@x.com")], "shopify_id": [.string("S-B")]]),
            ProfileUpsert(id: "untouched", properties: ["email": [.string("u@x.com")]]),
        ], segments: [])
        // The next batch's rows: one profile the batch before updates, one it creates, one whose email it takes away,
        // one it leaves alone, one nobody has, and the id a new profile for that one would take.
        let next = ["a@x.com", "c@x.com", "b@x.com", "u@x.com", "nobody@x.com"]
        let lookahead = try await database.writer.read { try Self.read(next, db: $0) }
        #expect(lookahead.owners[IdentifierKey(property: "email", value: "c@x.com")] == .some(nil), "read before c exists")

        // The batch before: it reads a and b (b through its shop id only), updates a, creates c, drops b's email.
        let committed = try await database.writer.write { db in
            var batch = ImportProfiles(db: db, now: Date(), keys: Self.keys)
            try batch.prefetch(rows: [[IdentifierKey(property: "email", value: "a@x.com")], [IdentifierKey(property: "shopify_id", value: "S-B")],
                                      [IdentifierKey(property: "email", value: "c@x.com")]], createProfiles: true)
            let aPK = try #require(try batch.owner(property: "email", value: "a@x.com"))
            let a = try #require(try batch.profile(pk: aPK))
            var spent = a.profile
            spent["lifetime_spend"] = [.number(5)]
            try batch.update(a, to: spent)
            guard case .success = try batch.create(Profile(id: "c@x.com", properties: ["email": [.string("c@x.com")]])) else {
                Issue.record("c not created")
                return ImportLookups()
            }
            let bPK = try #require(try batch.owner(property: "shopify_id", value: "S-B"))
            let b = try #require(try batch.profile(pk: bPK))
            var withoutEmail = b.profile
            withoutEmail["email"] = []
            try batch.update(b, to: withoutEmail)
            try batch.flush()
            return try batch.finish().known
        }

        var overlaid = lookahead
        overlaid.overlay(committed)
        let fresh = try await database.writer.read { try Self.read(next, db: $0) }
        #expect(overlaid.owners == fresh.owners)
        #expect(Set(overlaid.profiles.keys).isSuperset(of: fresh.profiles.keys), "every profile the rows need is known")
        // Whatever else it holds is true of the store now (what it lacks is read from the store when needed).
        try await database.writer.read { [overlaid] db in
            for (pk, known) in overlaid.profiles {
                let row = try #require(try Row.fetchOne(db, sql: "SELECT pk, id, properties FROM profile WHERE pk = ?", arguments: [pk]))
                let stored = try ImportLookups.decode(row, keys: Self.keys)
                #expect(known.profile == stored.profile, "profile \(pk)")
                #expect(known.stored == stored.stored, "profile \(pk)")
            }
            for (id, exists) in overlaid.ids {
                #expect(try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM profile WHERE id = ?)", arguments: [id]) == exists, "id \(id)")
            }
        }
        // The point of the test: without the overlay, the lookahead is wrong about each of these.
        #expect(lookahead.owners != fresh.owners)
        #expect(lookahead.profiles.values.first { $0.profile.id == "a" }?.profile["lifetime_spend"] == [.number(1)])
        #expect(overlaid.profiles.values.first { $0.profile.id == "a" }?.profile["lifetime_spend"] == [.number(5)])
    }
}
