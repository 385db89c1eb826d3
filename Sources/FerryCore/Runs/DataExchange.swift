import Foundation
import GRDB

/// Each connection's data exchange: the set of unique profiles it has ever imported or exported.
public enum DataExchange {
    /// Adds profiles to a connection's set (inside the caller's transaction, with the data they describe).
    public static func record(connection: String, profiles: some Sequence<Int64>, at now: Date, db: Database) throws {
        let insert = try db.cachedStatement(sql: "INSERT OR IGNORE INTO data_exchange (connection, profile_pk, first_at) VALUES (?, ?, ?)")
        for pk in profiles { try insert.execute(arguments: [connection, pk, now.timeIntervalSince1970]) }
    }

    /// How many unique profiles each connection has exchanged.
    public static func counts(database: AppDatabase) throws -> [String: Int] {
        try database.writer.read { db in
            var counts: [String: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT connection, COUNT(*) AS n FROM data_exchange GROUP BY connection") {
                counts[row["connection"]] = row["n"]
            }
            return counts
        }
    }
}
