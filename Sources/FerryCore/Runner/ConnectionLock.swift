import Foundation
import GRDB

/// Makes sure one connection never has two runs at once, across processes sharing the store.
///
/// A row per running connection, holding the owner's pid; a row whose process is gone is taken over.
public struct ConnectionLock: Sendable {
    public let database: AppDatabase
    /// Whether a pid names a live process (injected so tests can fake dead owners).
    public var isAlive: @Sendable (Int32) -> Bool
    public var pid: Int32

    public init(database: AppDatabase, pid: Int32 = ProcessInfo.processInfo.processIdentifier,
                isAlive: @escaping @Sendable (Int32) -> Bool = ConnectionLock.processIsAlive) {
        self.database = database
        self.pid = pid
        self.isAlive = isAlive
    }

    /// Takes the lock; false when a live process (or this one, in another task) holds it.
    public func acquire(_ connection: String, now: Date = Date()) throws -> Bool {
        try database.writer.write { db in
            if let holder = try Int32.fetchOne(db, sql: "SELECT pid FROM connection_lock WHERE connection = ?", arguments: [connection]) {
                if holder == pid || isAlive(holder) { return false }
                try db.execute(sql: "DELETE FROM connection_lock WHERE connection = ?", arguments: [connection])
            }
            try db.execute(sql: "INSERT INTO connection_lock (connection, pid, acquired_at) VALUES (?, ?, ?)",
                           arguments: [connection, pid, now.timeIntervalSince1970])
            return true
        }
    }

    /// Gives the lock back.
    public func release(_ connection: String) throws {
        try database.writer.write { db in
            try db.execute(sql: "DELETE FROM connection_lock WHERE connection = ? AND pid = ?", arguments: [connection, pid])
        }
    }

    /// `kill(pid, 0)`: the process exists (EPERM means it exists but is not ours).
    @Sendable public static func processIsAlive(_ pid: Int32) -> Bool {
        guard pid > 0 else { return false }
        return kill(pid, 0) == 0 || errno == EPERM
    }
}
