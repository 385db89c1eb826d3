import GRDB

/// `IN (…)` queries over many keys: the keys in chunks well under SQLite's bound-parameter limit, each
/// chunk's statement cached by its placeholder count (full chunks all share one).
enum InListQuery {
    /// Keys per `IN (…)` list.
    static let chunkSize = 500

    /// Calls `body` with successive chunks of `items`, at most `chunkSize` each.
    static func forEachChunk<T>(of items: [T], _ body: ([T]) throws -> Void) throws {
        var start = 0
        while start < items.count {
            let end = min(start + chunkSize, items.count)
            try body(Array(items[start..<end]))
            start = end
        }
    }

    /// `prefix (?, ?, …)` with `count` placeholders, from the connection's statement cache.
    static func statement(_ prefix: String, count: Int, db: Database) throws -> Statement {
        var sql = prefix
        sql += " ("
        for i in 0..<count { sql += i == 0 ? "?" : ",?" }
        sql += ")"
        return try db.cachedStatement(sql: sql)
    }
}
