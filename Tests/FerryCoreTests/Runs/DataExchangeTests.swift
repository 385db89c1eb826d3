@testable import FerryCore
import Foundation
import GRDB
import Testing

/// The per-connection set of exchanged profiles, recorded many rows per statement.
@Suite struct DataExchangeTests {
    /// A store of `count` profiles; returns their row keys in order.
    func store(_ count: Int) throws -> (AppDatabase, [Int64]) {
        let database = try AppDatabase.inMemory()
        _ = try ProfileStore(database: database).upsert(
            (0..<count).map { ProfileUpsert(id: "p\($0)", properties: ["email": [.string("p\($0)@x.com")]]) }, segments: [])
        let pks = try database.writer.read { db in try Int64.fetchAll(db, sql: "SELECT pk FROM profile ORDER BY pk") }
        return (database, pks)
    }

    @Test func recordsMoreProfilesThanOneStatementHoldsEachOnceKeepingTheFirstTime() throws {
        let full = DataExchange.rowsPerStatement
        let (database, pks) = try store(2 * full + 234)
        let first = Date(timeIntervalSince1970: 1_000), later = Date(timeIntervalSince1970: 2_000)
        // Two full statements and a short one, with repeats inside the call.
        try database.writer.write { db in
            try DataExchange.record(connection: "c", profiles: pks.prefix(2 * full + 100) + pks.prefix(3), at: first, db: db)
        }
        #expect(try DataExchange.counts(database: database) == ["c": 2 * full + 100])
        try database.writer.write { db in
            try DataExchange.record(connection: "c", profiles: pks, at: later, db: db)
            try DataExchange.record(connection: "other", profiles: pks.suffix(7), at: later, db: db)
            try DataExchange.record(connection: "none", profiles: [Int64](), at: later, db: db)
        }
        #expect(try DataExchange.counts(database: database) == ["c": 2 * full + 234, "other": 7])
        let times = try database.writer.read { db in
            try Row.fetchAll(db, sql: "SELECT first_at, COUNT(*) FROM data_exchange WHERE connection = 'c' GROUP BY first_at ORDER BY first_at")
                .map { [$0[0] as Double, Double($0[1] as Int)] }
        }
        #expect(times == [[1_000, Double(2 * full + 100)], [2_000, 134]])
        // Row keys are stored as the integers they are, each naming its profile.
        let strays = try database.writer.read { db in
            try Int.fetchOne(db, sql: """
                SELECT COUNT(*) FROM data_exchange d LEFT JOIN profile p ON p.pk = d.profile_pk
                WHERE typeof(d.profile_pk) != 'integer' OR p.pk IS NULL
                """)
        }
        #expect(strays == 0)
    }

    @Test func anUnknownProfileFailsTheWholeCall() throws {
        let (database, pks) = try store(3)
        #expect(throws: (any Error).self) {
            try database.writer.write { db in
                try DataExchange.record(connection: "c", profiles: pks + [pks.last! + 1_000], at: Date(), db: db)
            }
        }
        #expect(try DataExchange.counts(database: database).isEmpty)
    }
}
