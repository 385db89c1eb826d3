import Foundation
import GRDB
import Testing
@testable import FerryCore

/// An import batch's owners come from the key filter's owner table without a lookup, and are kept only when the
/// profile the table names holds the value.
@Suite struct ImportLookupsTests {
    static func email(_ value: String) -> IdentifierKey { IdentifierKey(property: "email", value: value) }

    /// A store with profiles a and b, and an import's filter of it in which a@x.com still belongs to a, after it moved
    /// to b (as a re-index moves it), and new@x.com, which nobody owns, is named a's (keys sharing 32 hash bits).
    /// Returns the store, the filter and a's and b's row keys.
    func storeWithAStaleFilter(in dir: TemporaryDirectory) async throws -> (AppDatabase, StoreKeyFilter, a: Int64, b: Int64) {
        let database = try AppDatabase.open(path: dir.path + "/store.sqlite")
        let outcomes = try ProfileStore(database: database).upsert([
            ProfileUpsert(id: "a", properties: ["email": [.string("a@x.com")]]),
            ProfileUpsert(id: "b", properties: ["email": [.string("b@x.com")]]),
            ProfileUpsert(id: "new@x.com", properties: [:]),
        ], segments: [])
        guard case .created(let a, _) = outcomes[0], case .created(let b, _) = outcomes[1] else { throw NoProfile() }
        var filter = try await StoreKeyFilter.build(reading: database.writer)
        filter.insert(Self.email("new@x.com"), owner: a)
        try await database.writer.write { db in
            try db.execute(sql: "UPDATE profile SET properties = ? WHERE pk = ?",
                           arguments: [PropertyCodec.encode(["email": [.string("a2@x.com")]]), a])
            try db.execute(sql: "UPDATE profile SET properties = ? WHERE pk = ?",
                           arguments: [PropertyCodec.encode(["email": [.string("b@x.com"), .string("A@x.com")]]), b])
            try db.execute(sql: "UPDATE identifier SET profile_pk = ? WHERE property = 'email' AND value = 'a@x.com'", arguments: [b])
            try db.execute(sql: "INSERT INTO identifier (property, value, profile_pk) VALUES ('email', 'a2@x.com', ?)", arguments: [a])
        }
        return (database, filter, a, b)
    }

    struct NoProfile: Error {}

    static let rows = [[email("a@x.com")], [email("new@x.com")], [email("b@x.com")]]

    func expectLookedUpPast(_ known: ImportLookups, b: Int64) {
        #expect(known.owners[Self.email("a@x.com")] == .some(b), "a no longer holds a@x.com, so its owner is looked up")
        #expect(known.owners[Self.email("new@x.com")] == .some(nil), "a does not hold new@x.com: nobody owns it")
        #expect(known.owners[Self.email("b@x.com")] == .some(b))
        #expect(known.profiles[b]?.profile["email"] == [.string("b@x.com"), .string("A@x.com")])
        #expect(known.ids["new@x.com"] == true, "the row new@x.com would create a profile whose id is taken")
    }

    @Test func anOwnerTheFilterNamesIsKeptOnlyWhenItsProfileHoldsTheValueOnTheWriter() async throws {
        let dir = TemporaryDirectory()
        let (database, filter, _, b) = try await storeWithAStaleFilter(in: dir)
        let known = try await database.writer.write { db in
            var known = ImportLookups()
            try known.prefetch(rows: Self.rows, createProfiles: true, keys: ["email"], filter: filter, db: db)
            return known
        }
        expectLookedUpPast(known, b: b)
    }

    /// A batch planned ahead reads its owners on the writer and their profiles on a reading connection, where the
    /// filter's are checked and the answers laid into the tables (not on the writer, which every batch waits for);
    /// without a filter (a store too large for the export, or one another connection wrote to) every key is looked up.
    @Test(arguments: [true, false])
    func aPlannedBatchsOwnersAreCheckedWhereItsProfilesAreRead(withFilter: Bool) async throws {
        let dir = TemporaryDirectory()
        let (database, staleFilter, _, b) = try await storeWithAStaleFilter(in: dir)
        let filter = withFilter ? staleFilter : nil
        let ahead = try await database.writer.write { db in
            try ImportLookups.ahead(rows: Self.rows, createProfiles: true, keys: ["email"], filter: filter, db: db)
        }
        #expect(ahead.owners.isEmpty && ahead.ids.isEmpty, "the answers are laid into the tables where profiles are read")
        let known = try await database.writer.read { db in
            var read = ahead
            try read.readProfiles(keys: ["email"], db: db)
            return read
        }
        expectLookedUpPast(known, b: b)
        #expect(known.firstNewPK == 4)
    }
}
