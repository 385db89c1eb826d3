import GRDB
import GRDBSQLite

/// One value of a row a bulk writer binds straight to SQLite (``BulkStatement``).
enum BulkValue: Sendable {
    case integer(Int64)
    case real(Double)
    case text(String)
}

/// Runs the bulk writers' hottest statements (multi-row `INSERT`s, an import's `UPDATE`s) through SQLite's C API:
/// values bound in place and one step. Through GRDB's arguments (an existential and a `DatabaseValue` per value, then
/// validating and binding them, and its per-statement hooks) a million-row import's writing thread spent 1.4 s more.
/// Only for statements that return no rows, in ferry's own write transactions (no transaction observer sees them);
/// an error is thrown as GRDB throws it, with the statement's SQL.
enum BulkStatement {
    /// Binds `values` to `statement`'s parameters in order (exactly as many) and runs it once.
    static func execute(_ statement: Statement, values: some Collection<BulkValue>, db: Database) throws {
        let handle = statement.sqliteStatement
        sqlite3_reset(handle)
        var index: CInt = 1
        for value in values {
            let code: CInt
            switch value {
            case .integer(let number): code = sqlite3_bind_int64(handle, index, number)
            case .real(let number): code = sqlite3_bind_double(handle, index, number)
            case .text(var text):
                code = text.withUTF8 { bytes in
                    // A null pointer would bind NULL, not the empty string.
                    guard let base = bytes.baseAddress else { return sqlite3_bind_text(handle, index, "", 0, transient) }
                    return base.withMemoryRebound(to: CChar.self, capacity: bytes.count) {
                        sqlite3_bind_text(handle, index, $0, CInt(bytes.count), transient)
                    }
                }
            }
            guard code == SQLITE_OK else { throw error(code, statement: statement, db: db) }
            index += 1
        }
        let code = sqlite3_step(handle)
        sqlite3_reset(handle)
        guard code == SQLITE_DONE else { throw error(code, statement: statement, db: db) }
    }

    /// SQLite copies each value as it is bound (`SQLITE_TRANSIENT`, a macro Swift does not import).
    private static let transient = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)

    private static func error(_ code: CInt, statement: Statement, db: Database) -> DatabaseError {
        let message = db.sqliteConnection.flatMap { sqlite3_errmsg($0) }.map { String(cString: $0) }
        return DatabaseError(resultCode: ResultCode(rawValue: code), message: message, sql: statement.sql)
    }
}
