import Foundation
import GRDB

/// Each connection's data exchange: the set of unique profiles it has ever imported or exported.
public enum DataExchange {
    /// Profiles per INSERT: an import's batch, or an export's in a few hundred statements.
    static let rowsPerStatement = 5_000

    /// The profiles' row keys go in as one JSON array (`?3`), unpacked by `json_each`. A `VALUES` list of hundreds of
    /// rows takes over a millisecond to prepare, and an import's batches prepare their statements anew (turning
    /// foreign-key checks off and on expires a connection's statements): that was 0.3 s of the writer's time in a
    /// million-row import. A statement as short as this one is prepared in microseconds.
    static let insertSQL = """
        INSERT OR IGNORE INTO data_exchange (connection, profile_pk, first_at) SELECT ?1, value, ?2 FROM json_each(?3)
        """

    /// Adds profiles to a connection's set (inside the caller's transaction, with the data they describe).
    ///
    /// Profiles go in `rowsPerStatement` at a time, one statement each: an export of 1.5 M profiles costs
    /// 300 statements instead of 1.5 M, whose per-statement overhead was most of the time.
    public static func record(connection: String, profiles: some Sequence<Int64>, at now: Date, db: Database) throws {
        var array: [UInt8] = []
        var count = 0
        for pk in profiles {
            array.append(count == 0 ? UInt8(ascii: "[") : UInt8(ascii: ","))
            DecimalDigits.append(pk, to: &array)
            count += 1
            if count == rowsPerStatement {
                try insert(&array, connection: connection, at: now, db: db)
                count = 0
            }
        }
        if count > 0 { try insert(&array, connection: connection, at: now, db: db) }
    }

    /// Inserts the profiles of `array`, a JSON array still open, and empties it.
    private static func insert(_ array: inout [UInt8], connection: String, at now: Date, db: Database) throws {
        array.append(UInt8(ascii: "]"))
        let values: [BulkValue] = [.text(connection), .real(now.timeIntervalSince1970), .text(String(decoding: array, as: UTF8.self))]
        try BulkStatement.execute(db.cachedStatement(sql: insertSQL), values: values, db: db)
        array.removeAll(keepingCapacity: true)
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
