import Foundation
import Logging
import Testing
@testable import FerryCore

@Suite struct SchedulerTests {
    /// Runs the scheduler on a clock 3600× real time (an hour a second) for `seconds` of real time.
    func runScheduler(connections: [Connection], database: AppDatabase, factory: TestGoalFactory, start: String,
                      seconds: Double, maxConcurrent: Int = 4) async throws {
        let config = FerryConfig(segments: [], connections: connections, files: [], errors: [])
        let holder = ConfigHolder(load: { config }, logger: Logger(label: "test"))
        var scheduler = Scheduler(holder: holder, database: database, factory: factory,
                                  clock: ScaledWallClock(start: ISO8601.parse(start)!, scale: 3600),
                                  logger: Logger(label: "test"), maxConcurrent: maxConcurrent)
        scheduler.recheckInterval = 600
        let task = Task { try await scheduler.run() }
        try await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
        task.cancel()
        _ = try? await task.value
    }

    @Test func firesEachSlotOnceAtItsScheduledInstant() async throws {
        let database = try AppDatabase.inMemory()
        let journal = Journal()
        let hourly = testConnection(goals: [exportGoal], schedule: .cron(try CronExpression(parsing: "0 * * * *")))
        try await runScheduler(connections: [hourly], database: database,
                               factory: TestGoalFactory { _ in TestGoal(journal: journal, name: "g") },
                               start: "2026-03-08T05:30:00Z", seconds: 3.2)
        let runs = try RunLedger(database: database).runs(limit: 50).reversed()
        // New York: 01:00 EST, then 03:00 EDT (the 02:00 gap shifts onto 03:00, fired once), 04:00 EDT.
        #expect(runs.prefix(3).map { ISO8601.format($0.scheduledAt!) } == [
            "2026-03-08T06:00:00.000Z", "2026-03-08T07:00:00.000Z", "2026-03-08T08:00:00.000Z",
        ])
        #expect(runs.allSatisfy { $0.trigger == .schedule && $0.status == .succeeded })
        #expect(Set(runs.map(\.scheduledAt)).count == runs.count)
    }

    @Test func aFireWhileTheLastRunStillRunsIsRecordedSkipped() async throws {
        let database = try AppDatabase.inMemory()
        let journal = Journal()
        let everyMinute = testConnection(goals: [exportGoal], schedule: .times(Schedule.timesPerDay(1440, startingAt: WallTime(hour: 0, minute: 0)!), days: .everyDay))
        // A minute passes every 1/60 s; each run takes 0.3 s, so most fires find it running.
        try await runScheduler(connections: [everyMinute], database: database,
                               factory: TestGoalFactory { _ in TestGoal(journal: journal, name: "slow", duration: .milliseconds(300)) },
                               start: "2026-06-01T12:00:00Z", seconds: 1.0)
        let runs = try RunLedger(database: database).runs(limit: 500)
        let skipped = runs.filter { $0.status == .skipped }
        #expect(!skipped.isEmpty)
        #expect(skipped.allSatisfy { $0.error == "skipped (overlap): the previous run is still running" })
        #expect(runs.filter { $0.status == .running }.count <= 1)
    }

    @Test func catchUpOnceRunsOneRunForEverythingMissed() async throws {
        let database = try AppDatabase.inMemory()
        let journal = Journal()
        let hourly = testConnection(goals: [exportGoal], schedule: .cron(try CronExpression(parsing: "0 * * * *")))
        let skipping = testConnection(name: "s", goals: [exportGoal], schedule: .cron(try CronExpression(parsing: "30 * * * *")), catchUp: .skip)
        try await database.writer.write { db in
            try db.execute(sql: "INSERT INTO daemon_state (key, value) VALUES ('last_checked_at', ?)",
                           arguments: [ISO8601.parse("2026-06-01T00:00:00Z")!.timeIntervalSince1970])
        }
        try await runScheduler(connections: [hourly, skipping], database: database,
                               factory: TestGoalFactory { _ in TestGoal(journal: journal, name: "g") },
                               start: "2026-06-01T05:10:00Z", seconds: 0.3)
        let runs = try RunLedger(database: database).runs(limit: 50)
        let catchUps = runs.filter { $0.trigger == .catchUp }
        #expect(catchUps.count == 2)
        let once = try #require(catchUps.first { $0.connection == "c" })
        #expect(once.status == .succeeded)
        #expect(ISO8601.format(once.scheduledAt!) == "2026-06-01T05:00:00.000Z")
        let skip = try #require(catchUps.first { $0.connection == "s" })
        #expect(skip.status == .skipped)
        #expect(skip.error == "missed 5 fire(s) while ferry was not running (catch_up: skip)")
    }

    @Test func maxConcurrentCapsRunsAcrossConnections() async throws {
        let database = try AppDatabase.inMemory()
        let journal = Journal()
        let connections = (1...3).map { testConnection(name: "c\($0)", goals: [exportGoal], schedule: .cron(try! CronExpression(parsing: "0 * * * *"))) }
        try await runScheduler(connections: connections, database: database,
                               factory: TestGoalFactory { _ in TestGoal(journal: journal, name: "g", duration: .milliseconds(150)) },
                               start: "2026-06-01T05:59:00Z", seconds: 1.5, maxConcurrent: 1)
        // One slot: the three 06:00 fires run one after another, never two at once.
        let events = journal.all
        #expect(events.count >= 6)
        #expect(events == Array(repeating: ["start g", "end g"], count: events.count / 2).flatMap { $0 })
    }
}
