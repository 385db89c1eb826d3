import Foundation
import GRDB

/// What `ferry status` shows: is the daemon alive, what it last fired, what comes next, what is failing.
public struct DaemonStatus: Sendable {
    public var pid: Int32?
    public var heartbeat: Date?
    public var isAlive: Bool
    /// The newest claimed fire per connection.
    public var lastFires: [(connection: String, at: Date)]
    /// Connections whose newest finished run failed or was partial, with that run.
    public var failing: [RunRecord]

    /// A daemon counts as alive when its process exists and it wrote a heartbeat in the last `staleAfter` seconds.
    public static func read(database: AppDatabase, now: Date = Date(), staleAfter: TimeInterval = 180,
                            isAlive: (Int32) -> Bool = ConnectionLock.processIsAlive) throws -> DaemonStatus {
        try database.writer.read { db in
            let state = Dictionary(uniqueKeysWithValues: try Row.fetchAll(db, sql: "SELECT key, value FROM daemon_state")
                .map { ($0["key"] as String, $0["value"] as String) })
            let pid = state["pid"].flatMap { Int32($0) }
            let heartbeat = state["heartbeat_at"].flatMap(Double.init).map(Date.init(timeIntervalSince1970:))
            let alive = pid.map(isAlive) == true && heartbeat.map { now.timeIntervalSince($0) < staleAfter } == true
            let lastFires = try Row.fetchAll(db, sql: "SELECT connection, MAX(scheduled_at) AS at FROM fire GROUP BY connection ORDER BY connection")
                .map { ($0["connection"] as String, Date(timeIntervalSince1970: $0["at"])) }
            let newest = try Row.fetchAll(db, sql: """
                SELECT * FROM run r WHERE r.status NOT IN ('running', 'skipped') AND r.id = (
                    SELECT id FROM run WHERE connection = r.connection AND status NOT IN ('running', 'skipped')
                    ORDER BY started_at DESC, id DESC LIMIT 1)
                ORDER BY r.connection
                """).map(RunLedger.record)
            return DaemonStatus(pid: pid, heartbeat: heartbeat, isAlive: alive, lastFires: lastFires,
                                failing: newest.filter { $0.status == .failed || $0.status == .partial || $0.status == .interrupted })
        }
    }
}
