import Foundation
import Testing
@testable import FerryCore

@Suite struct RunLedgerTests {
    @Test func aRunGoesFromRunningToFinishedWithItsCountsAndLastFiveProfiles() async throws {
        let ledger = RunLedger(database: try AppDatabase.inMemory())
        let id = try ledger.start(connection: "c", goal: "export vip", trigger: .manual, scheduledAt: nil)
        #expect(try ledger.run(id: id)?.status == .running)
        let recorder = RunRecorder(ledger: ledger, runID: id)
        for n in 1...7 {
            await recorder.touch(TouchedProfile(profileID: "p\(n)", identifier: "p\(n)@x.com", action: "exported"))
            await recorder.count { $0.exported += 1 }
        }
        await recorder.fail(RunRowError(location: "profile p8", reason: "invalid email"))
        try await recorder.finish(status: .partial, error: nil)
        let run = try #require(try ledger.run(id: id))
        #expect(run.status == .partial)
        #expect(run.counts.exported == 7 && run.counts.failed == 1)
        #expect(run.touched.map(\.profileID) == ["p3", "p4", "p5", "p6", "p7"])
        #expect(run.rowErrors == [RunRowError(location: "profile p8", reason: "invalid email")])
        #expect(run.endedAt != nil)
    }

    @Test func runsFromDeadProcessesAreMarkedInterrupted() throws {
        let ledger = RunLedger(database: try AppDatabase.inMemory())
        let dead = try ledger.start(connection: "c", goal: "g", trigger: .schedule, scheduledAt: Date(), pid: 999_999)
        let alive = try ledger.start(connection: "c", goal: "g", trigger: .manual, scheduledAt: nil, pid: 42)
        #expect(try ledger.recoverInterrupted(isAlive: { $0 == 42 }) == 1)
        #expect(try ledger.run(id: dead)?.status == .interrupted)
        #expect(try ledger.run(id: alive)?.status == .running)
    }

    @Test func historyIsNewestFirstAndFiltersByConnection() throws {
        let ledger = RunLedger(database: try AppDatabase.inMemory())
        for (i, c) in ["a", "b", "a"].enumerated() {
            _ = try ledger.start(connection: c, goal: "g", trigger: .manual, scheduledAt: nil, startedAt: Date(timeIntervalSince1970: Double(i)))
        }
        #expect(try ledger.runs().map(\.id) == [3, 2, 1])
        #expect(try ledger.runs(connection: "a", limit: 1).map(\.id) == [3])
    }
}
