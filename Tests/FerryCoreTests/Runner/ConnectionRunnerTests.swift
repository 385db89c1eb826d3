import Foundation
import Logging
import Testing
@testable import FerryCore

@Suite struct ConnectionRunnerTests {
    @Test func runsImportsBeforeExportsEachRecordedWithItsStatus() async throws {
        let database = try AppDatabase.inMemory()
        let journal = Journal()
        let factory = TestGoalFactory { goal in
            goal.isImport ? TestGoal(journal: journal, name: "import", failedRows: 2) : TestGoal(journal: journal, name: "export")
        }
        let runner = ConnectionRunner(database: database, factory: factory, logger: Logger(label: "test"))
        // The parser orders imports first; the runner keeps the order it is given.
        let result = try await runner.run(testConnection(goals: [importGoal, exportGoal]), segments: [], trigger: .manual, scheduledAt: nil)
        guard case .ran(let records) = result else { Issue.record("expected runs"); return }
        #expect(journal.all == ["start import", "end import", "start export", "end export"])
        #expect(records.map(\.status) == [.partial, .succeeded])
        #expect(records.map(\.goal) == ["import L", "export vip"])
        #expect(records[0].counts.failed == 2 && records[0].counts.exported == 3)
        #expect(records[1].touched == [TouchedProfile(profileID: "p1", identifier: "a@x.com", action: "exported")])
    }

    @Test func aThrowingGoalFailsItsRunAndTheNextGoalStillRuns() async throws {
        let database = try AppDatabase.inMemory()
        let journal = Journal()
        let factory = TestGoalFactory { goal in
            goal.isImport ? TestGoal(journal: journal, name: "import", throwing: "list export expired twice") : TestGoal(journal: journal, name: "export")
        }
        let runner = ConnectionRunner(database: database, factory: factory, logger: Logger(label: "test"))
        guard case .ran(let records) = try await runner.run(testConnection(goals: [importGoal, exportGoal]), segments: [], trigger: .manual, scheduledAt: nil)
        else { Issue.record("expected runs"); return }
        #expect(records.map(\.status) == [.failed, .succeeded])
        #expect(records[0].error == "list export expired twice")
    }

    @Test func aSecondRunOfTheSameConnectionIsSkippedAsOverlap() async throws {
        let database = try AppDatabase.inMemory()
        let journal = Journal()
        let factory = TestGoalFactory { _ in TestGoal(journal: journal, name: "slow", duration: .milliseconds(400)) }
        let runner = ConnectionRunner(database: database, factory: factory, logger: Logger(label: "test"))
        let connection = testConnection(goals: [exportGoal])
        async let first = runner.run(connection, segments: [], trigger: .manual, scheduledAt: nil)
        try await Task.sleep(for: .milliseconds(100))
        let second = try await runner.run(connection, segments: [], trigger: .schedule, scheduledAt: Date())
        guard case .skippedOverlap(let skipped) = second else { Issue.record("expected an overlap skip"); return }
        #expect(skipped.status == .skipped)
        #expect(skipped.error == "skipped (overlap): the previous run is still running")
        guard case .ran(let records) = try await first else { Issue.record("expected runs"); return }
        #expect(records.map(\.status) == [.succeeded])
        // The lock is released: a third run goes ahead.
        guard case .ran = try await runner.run(connection, segments: [], trigger: .manual, scheduledAt: nil) else {
            Issue.record("lock not released"); return
        }
    }

    @Test func aLockHeldByADeadProcessIsTakenOver() throws {
        let database = try AppDatabase.inMemory()
        let dead = ConnectionLock(database: database, pid: 999_999, isAlive: { _ in false })
        #expect(try dead.acquire("c"))
        let live = ConnectionLock(database: database, pid: 42, isAlive: { $0 == 42 })
        #expect(try live.acquire("c"))
        #expect(try !ConnectionLock(database: database, pid: 43, isAlive: { $0 == 42 }).acquire("c"))
    }
}
