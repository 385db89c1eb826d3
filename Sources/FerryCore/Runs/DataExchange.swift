import Foundation
import GRDB

/// Each connection's data exchange: the set of unique profiles it has ever imported or exported.
public enum DataExchange {
    /// Rows per multi-row INSERT: one bound parameter each, plus the connection and the time, stays
    /// under SQLite's oldest default limit of 999 parameters per statement.
    static let rowsPerStatement = 500

    /// Adds profiles to a connection's set (inside the caller's transaction, with the data they describe).
    ///
    /// Profiles go in `rowsPerStatement` at a time, one statement each: an export of 1.5 M profiles costs
    /// 3,000 statements instead of 1.5 M, whose per-statement overhead was most of the time.
    public static func record(connection: String, profiles: some Sequence<Int64>, at now: Date, db: Database) throws {
        var batch: [Int64] = []
        batch.reserveCapacity(rowsPerStatement)
        for pk in profiles {
            batch.append(pk)
            if batch.count == rowsPerStatement {
                try insert(batch, connection: connection, at: now, db: db)
                batch.removeAll(keepingCapacity: true)
            }
        }
        if !batch.isEmpty { try insert(batch, connection: connection, at: now, db: db) }
    }

    /// An INSERT OR IGNORE of `rows` rows: `?1` is the connection, `?2` the time, `?3…` the profiles.
    static func insertSQL(rows: Int) -> String {
        var sql = "INSERT OR IGNORE INTO data_exchange (connection, profile_pk, first_at) VALUES "
        for index in 0..<rows {
            sql += index == 0 ? "(?1, ?3, ?2)" : ", (?1, ?\(index + 3), ?2)"
        }
        return sql
    }

    private static let fullBatchSQL = insertSQL(rows: rowsPerStatement)

    private static func insert(_ pks: [Int64], connection: String, at now: Date, db: Database) throws {
        // Full batches share one cached statement; only the last, shorter one is prepared anew.
        let statement = pks.count == rowsPerStatement
            ? try db.cachedStatement(sql: fullBatchSQL) : try db.makeStatement(sql: insertSQL(rows: pks.count))
        var values: [BulkValue] = [.text(connection), .real(now.timeIntervalSince1970)]
        values.reserveCapacity(pks.count + 2)
        for pk in pks { values.append(.integer(pk)) }
        try BulkStatement.execute(statement, values: values, db: db)
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
