import Foundation
import Logging
import Testing
@testable import FerryCore

/// A gate a test goal waits at until the test opens it.
final class Gate: Sendable {
    private let stream: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation
    init() { (stream, continuation) = AsyncStream.makeStream() }
    func open() { continuation.finish() }
    func wait() async { for await _ in stream {} }
}

/// A goal that waits at a gate, so a run lasts exactly as long as the test wants.
struct GatedGoal: GoalExecutor {
    let journal: Journal
    let gate: Gate
    func run(in context: GoalContext) async throws {
        journal.append("start \(context.connection.name)")
        await gate.wait()
        journal.append("end \(context.connection.name)")
    }
}

@Suite struct SchedulerTests {
    /// A running scheduler on a manual clock.
    struct Harness {
        let database: AppDatabase
        let clock: ManualWallClock
        let task: Task<Void, any Error>
        var ledger: RunLedger { RunLedger(database: database) }

        init(connections: [Connection], factory: any GoalExecutorFactory, start: String, maxConcurrent: Int = 4,
             database: AppDatabase? = nil) throws {
            let database = try database ?? AppDatabase.inMemory()
            self.database = database
            clock = ManualWallClock(ISO8601.parse(start)!)
            let config = FerryConfig(segments: [], connections: connections, files: [], errors: [])
            let holder = ConfigHolder(load: { config }, logger: Logger(label: "test"))
            let scheduler = Scheduler(holder: holder, database: database, factory: factory, clock: clock,
                                      logger: Logger(label: "test"), maxConcurrent: maxConcurrent)
            task = Task { try await scheduler.run() }
        }

        /// Moves the clock once the scheduler is asleep, so every step is seen.
        func advance(to instant: String) async {
            _ = await eventually { clock.sleeperCount > 0 }
            clock.advance(to: ISO8601.parse(instant)!)
        }

        func stop() async {
            task.cancel()
            _ = try? await task.value
        }
    }

    @Test func firesEachSlotOnceAtItsScheduledInstantAcrossTheSpringGap() async throws {
        let journal = Journal()
        let hourly = testConnection(goals: [exportGoal], schedule: .cron(try CronExpression(parsing: "0 * * * *")))
        let h = try Harness(connections: [hourly], factory: TestGoalFactory { _ in TestGoal(journal: journal, name: "g") },
                            start: "2026-03-08T05:30:00Z")
        for step in ["2026-03-08T06:00:00Z", "2026-03-08T06:30:00Z", "2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z"] {
            await h.advance(to: step)
        }
        #expect(try await eventually { try h.ledger.runs().count == 3 })
        await h.stop()
        let runs = try h.ledger.runs(limit: 50).reversed()
        // New York: 01:00 EST, then 03:00 EDT (the 02:00 gap shifts onto 03:00, fired once), 04:00 EDT.
        #expect(runs.map { ISO8601.format($0.scheduledAt!) } == [
            "2026-03-08T06:00:00.000Z", "2026-03-08T07:00:00.000Z", "2026-03-08T08:00:00.000Z",
        ])
        #expect(runs.allSatisfy { $0.trigger == .schedule && $0.status == .succeeded })
    }

    @Test func aFireWhileTheLastRunStillRunsIsRecordedSkipped() async throws {
        let journal = Journal()
        let gate = Gate()
        let hourly = testConnection(goals: [exportGoal], schedule: .cron(try CronExpression(parsing: "0 * * * *")))
        let h = try Harness(connections: [hourly], factory: TestGoalFactory { _ in GatedGoal(journal: journal, gate: gate) },
                            start: "2026-06-01T05:30:00Z")
        await h.advance(to: "2026-06-01T06:00:00Z")
        #expect(await eventually { journal.all == ["start c"] })
        await h.advance(to: "2026-06-01T07:00:00Z")
        #expect(try await eventually { try h.ledger.runs().contains { $0.status == .skipped } })
        gate.open()
        #expect(try await eventually { try h.ledger.runs().allSatisfy { $0.status != .running } })
        await h.stop()
        let runs = try h.ledger.runs().reversed()
        #expect(runs.map(\.status) == [.succeeded, .skipped])
        #expect(runs.last?.error == "skipped (overlap): the previous run is still running")
        #expect(runs.last.map { ISO8601.format($0.scheduledAt!) } == "2026-06-01T07:00:00.000Z")
    }

    @Test func catchUpOnceRunsOneRunForEverythingMissedAndSkipRecordsIt() async throws {
        let journal = Journal()
        let database = try AppDatabase.inMemory()
        try await database.writer.write { db in
            try db.execute(sql: "INSERT INTO daemon_state (key, value) VALUES ('last_checked_at', ?)",
                           arguments: [ISO8601.parse("2026-06-01T00:00:00Z")!.timeIntervalSince1970])
        }
        let hourly = testConnection(goals: [exportGoal], schedule: .cron(try CronExpression(parsing: "0 * * * *")))
        let skipping = testConnection(name: "s", goals: [exportGoal], schedule: .cron(try CronExpression(parsing: "30 * * * *")), catchUp: .skip)
        let h = try Harness(connections: [hourly, skipping], factory: TestGoalFactory { _ in TestGoal(journal: journal, name: "g") },
                            start: "2026-06-01T05:10:00Z", database: database)
        #expect(try await eventually { try h.ledger.runs().count == 2 && h.ledger.runs().allSatisfy { $0.status != .running } })
        await h.stop()
        let runs = try h.ledger.runs(limit: 50)
        #expect(runs.allSatisfy { $0.trigger == .catchUp })
        let once = try #require(runs.first { $0.connection == "c" })
        #expect(once.status == .succeeded)
        #expect(ISO8601.format(once.scheduledAt!) == "2026-06-01T05:00:00.000Z")
        let skip = try #require(runs.first { $0.connection == "s" })
        #expect(skip.status == .skipped)
        #expect(skip.error == "missed 5 fire(s) while ferry was not running (catch_up: skip)")
    }

    @Test func maxConcurrentCapsRunsAcrossConnections() async throws {
        let journal = Journal()
        let gates = ["c1": Gate(), "c2": Gate(), "c3": Gate()]
        let connections = ["c1", "c2", "c3"].map {
            testConnection(name: $0, goals: [exportGoal], schedule: .cron(try! CronExpression(parsing: "0 * * * *")))
        }
        let h = try Harness(connections: connections, factory: GatedFactory(journal: journal, gates: gates),
                            start: "2026-06-01T05:59:00Z", maxConcurrent: 1)
        await h.advance(to: "2026-06-01T06:00:00Z")
        #expect(await eventually { journal.all.count == 1 })
        // One slot: the other two fires wait for it.
        try await Task.sleep(for: .milliseconds(200))
        #expect(journal.all.count == 1)
        for gate in gates.values { gate.open() }
        #expect(await eventually { journal.all.count == 6 })
        await h.stop()
        let events = journal.all
        for (start, end) in zip(stride(from: 0, to: 6, by: 2).map { events[$0] }, stride(from: 1, to: 6, by: 2).map { events[$0] }) {
            #expect(start.hasPrefix("start ") && end == "end " + start.dropFirst(6), "runs overlapped: \(events)")
        }
    }
}

/// Gives each connection's goal its own gate.
struct GatedFactory: GoalExecutorFactory {
    let journal: Journal
    let gates: [String: Gate]
    func executor(for goal: Goal, of connection: Connection) throws -> any GoalExecutor {
        GatedGoal(journal: journal, gate: gates[connection.name]!)
    }
}
