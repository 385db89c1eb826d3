import Foundation
import GRDB
import Logging
import ServiceLifecycle
import UnixSignals

/// The configuration the daemon runs on, replaced as a whole on reload.
public actor ConfigHolder {
    public private(set) var config: FerryConfig
    private let load: @Sendable () -> FerryConfig
    private let logger: Logger

    public init(load: @escaping @Sendable () -> FerryConfig, logger: Logger) {
        self.load = load
        self.config = load()
        self.logger = logger
    }

    /// Reads the files again; an invalid set keeps the old configuration and logs every problem.
    @discardableResult
    public func reload() -> Bool {
        let fresh = load()
        guard fresh.errors.isEmpty else {
            for error in fresh.errors { logger.error("reload refused: \(error.description)") }
            logger.error("reload refused: keeping the previous configuration (\(config.connections.count) connections)")
            return false
        }
        config = fresh
        logger.info("reloaded", metadata: ["connections": "\(fresh.connections.count)"])
        return true
    }
}

/// Reloads the configuration on SIGHUP; a service beside the scheduler.
public struct ReloadOnHangup: Service {
    public let holder: ConfigHolder

    public init(holder: ConfigHolder) { self.holder = holder }

    public func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            await holder.reload()
        }
    }
}

/// The daemon: fires every enabled connection when due, records each fire, never runs a connection twice at once.
///
/// It sleeps until the next due fire but wakes at least every minute to re-read the wall clock, so a clock
/// jump or new zone data is noticed. Each fire's (connection, instant) is claimed in the `fire` table first:
/// a unique key, so a slot fires once across restarts and across daemons sharing the store.
public struct Scheduler: Service {
    public var holder: ConfigHolder
    public var database: AppDatabase
    public var factory: any GoalExecutorFactory
    public var clock: any WallClock
    public var logger: Logger
    public var maxConcurrent: Int
    /// The longest the daemon sleeps before looking at the clock again.
    public var recheckInterval: TimeInterval = 60

    public init(holder: ConfigHolder, database: AppDatabase, factory: any GoalExecutorFactory, clock: any WallClock,
                logger: Logger, maxConcurrent: Int = 4) {
        self.holder = holder
        self.database = database
        self.factory = factory
        self.clock = clock
        self.logger = logger
        self.maxConcurrent = max(1, maxConcurrent)
    }

    static let lastCheckedKey = "last_checked_at"
    static let heartbeatKey = "heartbeat_at"
    static let pidKey = "pid"

    public func run() async throws {
        let ledger = RunLedger(database: database)
        let recovered = try ledger.recoverInterrupted(isAlive: ConnectionLock.processIsAlive)
        if recovered > 0 { logger.warning("marked \(recovered) run(s) interrupted: their process stopped before they finished") }
        let slots = RunSlots(limit: maxConcurrent)
        let engine = ScheduleEngine()
        let startedAt = clock.now()
        var lastChecked = try readLastChecked() ?? startedAt
        logger.info("daemon started", metadata: ["pid": "\(getpid())", "max_concurrent": "\(maxConcurrent)"])

        await withDiscardingTaskGroup { group in
            var isCatchUp = true
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                let now = clock.now()
                let config = await holder.config
                if now < lastChecked {
                    logger.warning("the wall clock went back \(Int(lastChecked.timeIntervalSince(now)))s; not refiring claimed slots")
                    lastChecked = now
                }
                for connection in config.connections where connection.isEnabled {
                    let due = engine.fires(of: connection.schedule, from: lastChecked, through: now)
                    guard let latest = due.last else { continue }
                    let trigger: RunTrigger = isCatchUp ? .catchUp : .schedule
                    if due.count > 1 {
                        logger.info("\(due.count - 1) earlier fire(s) folded into one run", metadata: ["connection": "\(connection.name)"])
                    }
                    do {
                        guard try claim(connection.name, at: latest, trigger: trigger, now: now) else { continue }
                    } catch {
                        logger.error("cannot claim a fire: \(error)", metadata: ["connection": "\(connection.name)"])
                        continue
                    }
                    if isCatchUp && connection.catchUp == .skip {
                        recordSkipped(connection.name, trigger: .catchUp, scheduledAt: latest, reason: "missed \(due.count) fire(s) while ferry was not running (catch_up: skip)", at: now)
                        continue
                    }
                    logger.info("fire", metadata: ["connection": "\(connection.name)", "scheduled": "\(ISO8601.format(latest))", "trigger": "\(trigger.rawValue)"])
                    let segments = config.segments
                    group.addTask {
                        await execute(connection, segments: segments, trigger: trigger, scheduledAt: latest, slots: slots)
                    }
                }
                isCatchUp = false
                lastChecked = now
                do {
                    try writeState(lastChecked: now)
                } catch {
                    // The heartbeat and catch-up mark are lost for this round; the next round writes them again.
                    logger.error("cannot write the daemon state: \(error)")
                }

                let next = config.connections.filter(\.isEnabled)
                    .compactMap { engine.nextFire(of: $0.schedule, after: now) }.min()
                let wake = min(next ?? .distantFuture, now.addingTimeInterval(recheckInterval))
                do {
                    try await cancelWhenGracefulShutdown { [clock] in try await clock.sleep(until: wake) }
                } catch {
                    break
                }
            }
            logger.info("daemon stopping: no new runs; waiting for running runs to finish")
        }
        logger.info("daemon stopped")
    }

    /// Runs one fire, unless the connection is already running here (recorded `skipped (overlap)`).
    private func execute(_ connection: Connection, segments: [SegmentDefinition], trigger: RunTrigger,
                         scheduledAt: Date, slots: RunSlots) async {
        guard await slots.begin(connection.name) else {
            recordSkipped(connection.name, trigger: trigger, scheduledAt: scheduledAt, reason: "skipped (overlap): the previous run is still running", at: clock.now())
            logger.info("skipped (overlap)", metadata: ["connection": "\(connection.name)"])
            return
        }
        await slots.waitForCapacity()
        if Task.isCancelled || Task.isShuttingDownGracefully {
            // The daemon is stopping: a fire still waiting for a slot is not started.
            recordSkipped(connection.name, trigger: trigger, scheduledAt: scheduledAt, reason: "the daemon stopped before this run could start", at: clock.now())
            await slots.end(connection.name)
            return
        }
        let runner = ConnectionRunner(database: database, factory: factory, logger: logger)
        do {
            _ = try await runner.run(connection, segments: segments, trigger: trigger, scheduledAt: scheduledAt,
                                     now: { [clock] in clock.now() })
        } catch {
            logger.error("run could not be recorded: \(error)", metadata: ["connection": "\(connection.name)"])
        }
        await slots.end(connection.name)
    }

    /// Records a fire that did not run; a failure to record it is logged, never thrown (the fire itself is already claimed).
    private func recordSkipped(_ connection: String, trigger: RunTrigger, scheduledAt: Date, reason: String, at now: Date) {
        do {
            try RunLedger(database: database).recordSkipped(connection: connection, goal: "all goals", trigger: trigger,
                                                            scheduledAt: scheduledAt, reason: reason, at: now)
        } catch {
            logger.error("cannot record a skipped fire (\(reason)): \(error)", metadata: ["connection": "\(connection)"])
        }
    }

    /// Claims a (connection, instant) slot; false when it was already claimed (by this or another daemon).
    func claim(_ connection: String, at instant: Date, trigger: RunTrigger, now: Date) throws -> Bool {
        try database.writer.write { db in
            try db.execute(sql: "INSERT OR IGNORE INTO fire (connection, scheduled_at, trigger, claimed_at) VALUES (?, ?, ?, ?)",
                           arguments: [connection, instant.timeIntervalSince1970, trigger.rawValue, now.timeIntervalSince1970])
            return db.changesCount == 1
        }
    }

    private func readLastChecked() throws -> Date? {
        try database.writer.read { db in
            try String.fetchOne(db, sql: "SELECT value FROM daemon_state WHERE key = ?", arguments: [Self.lastCheckedKey])
                .flatMap(Double.init).map(Date.init(timeIntervalSince1970:))
        }
    }

    private func writeState(lastChecked: Date) throws {
        try database.writer.write { db in
            for (key, value) in [(Self.lastCheckedKey, String(lastChecked.timeIntervalSince1970)),
                                 (Self.heartbeatKey, String(Date().timeIntervalSince1970)),
                                 (Self.pidKey, String(getpid()))] {
                try db.execute(sql: "INSERT INTO daemon_state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                               arguments: [key, value])
            }
        }
    }
}

/// Which connections are running in this daemon, and a cap on how many run at once.
actor RunSlots {
    private let limit: Int
    private var running = Set<String>()
    private var active = 0
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(limit: Int) { self.limit = limit }

    /// Marks the connection running; false when it already is (an overlap).
    func begin(_ connection: String) -> Bool {
        running.insert(connection).inserted
    }

    /// Waits until fewer than `limit` runs are active, then counts this one.
    func waitForCapacity() async {
        guard active < limit else {
            // `end` hands its slot straight to the first waiter (`active` already counts it), so a caller
            // arriving between that resume and this waiter's return cannot take the slot too.
            await withCheckedContinuation { waiters.append($0) }
            return
        }
        active += 1
    }

    func end(_ connection: String) {
        running.remove(connection)
        if waiters.isEmpty { active -= 1 } else { waiters.removeFirst().resume() }
    }
}
