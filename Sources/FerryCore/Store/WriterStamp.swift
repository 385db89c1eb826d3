import GRDB

/// What tells a bulk writer whether anyone else has written since it last looked: the file's commits by other
/// connections (`PRAGMA data_version`) and the rows its own connection changed (`total_changes()`: a daemon's
/// goals share the writing connection, and `data_version` does not see them).
///
/// Read on the writing connection. Two equal stamps with nothing written by their reader in between mean the
/// store is as it was; read inside a write transaction, the stamp also holds until that transaction ends.
struct WriterStamp: Equatable, Sendable {
    var dataVersion: Int64
    var totalChanges: Int64

    init(_ db: Database) throws {
        dataVersion = try Int64.fetchOne(db, sql: "PRAGMA data_version") ?? 0
        totalChanges = try Int64.fetchOne(db, sql: "SELECT total_changes()") ?? 0
    }
}
