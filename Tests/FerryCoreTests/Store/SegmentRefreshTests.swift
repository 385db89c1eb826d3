import Foundation
import GRDB
import Logging
import Testing
@testable import FerryCore

/// Membership is brought up to date once per run, fully only when the definitions change, else only for clock rules.
@Suite struct SegmentRefreshTests {
    static let day: TimeInterval = 86_400
    static let t0 = Date(timeIntervalSince1970: 1_780_000_000)

    func makeStore(_ spends: [Double], segments: [SegmentDefinition] = []) throws -> ProfileStore {
        let store = ProfileStore(database: try AppDatabase.inMemory())
        let rows = spends.enumerated().map { i, spend in
            ProfileUpsert(id: "p\(i + 1)", properties: ["email": [.string("p\(i + 1)@x.com")], "spend": [.number(spend)],
                                                       "last_order": [.date(Self.t0)]])
        }
        _ = try store.upsert(rows, segments: segments, now: Self.t0)
        return store
    }

    func members(_ segment: String, _ store: ProfileStore) throws -> [String: Date] {
        try store.database.writer.read { db in
            var result: [String: Date] = [:]
            for row in try Row.fetchAll(db, sql: """
                SELECT p.id, m.entered_at FROM segment_member m JOIN profile p ON p.pk = m.profile_pk WHERE m.segment = ?
                """, arguments: [segment]) {
                result[row["id"]] = Date(timeIntervalSince1970: row["entered_at"])
            }
            return result
        }
    }

    @Test func aChangedDefinitionTriggersAFullRefreshAndMembersEnterAndLeave() throws {
        let store = try makeStore([50, 150, 500])
        let v1 = [SegmentDefinition(name: "big", rule: .condition(property: "spend", .gte(100)))]
        #expect(try store.refreshSegmentsIfNeeded(v1, now: Self.t0) == .full)
        #expect(Set(try members("big", store).keys) == ["p2", "p3"])
        #expect(try store.refreshSegmentsIfNeeded(v1, now: Self.t0 + 60) == .none)

        let v2 = [SegmentDefinition(name: "big", rule: .condition(property: "spend", .gte(200))),
                  SegmentDefinition(name: "small", rule: .condition(property: "spend", .lt(100)))]
        #expect(try store.refreshSegmentsIfNeeded(v2, now: Self.t0 + 120) == .full)
        let big = try members("big", store)
        #expect(Set(big.keys) == ["p3"], "p2 left")
        #expect(big["p3"] == Self.t0, "a member who stays keeps the time it entered")
        #expect(try members("small", store) == ["p1": Self.t0 + 120])
        let state = try #require(try store.segmentRefreshState())
        #expect(state.fullRefreshes == 2 && state.fingerprint == SegmentRefreshState.fingerprint(of: v2))

        // A segment removed from the definitions loses its members.
        #expect(try store.refreshSegmentsIfNeeded([v2[0]], now: Self.t0 + 180) == .full)
        #expect(try members("small", store).isEmpty)
    }

    @Test func aLoadWithOtherDefinitionsMakesTheNextRefreshFull() throws {
        let store = try makeStore([50, 150])
        let current = [SegmentDefinition(name: "big", rule: .condition(property: "spend", .gte(100)))]
        #expect(try store.refreshSegmentsIfNeeded(current, now: Self.t0) == .full)
        let other = [SegmentDefinition(name: "big", rule: .condition(property: "spend", .gte(1000)))]
        _ = try store.upsert([ProfileUpsert(id: "p2", properties: ["spend": [.number(160)]])], segments: other, now: Self.t0 + 60)
        #expect(try members("big", store).isEmpty, "p2 was evaluated with the other rule and left")
        #expect(try store.refreshSegmentsIfNeeded(current, now: Self.t0 + 120) == .full)
        #expect(Set(try members("big", store).keys) == ["p2"])
        // Loads with the current definitions keep the refresh record.
        _ = try store.upsert([ProfileUpsert(id: "p1", properties: ["spend": [.number(170)]])], segments: current, now: Self.t0 + 180)
        #expect(try store.refreshSegmentsIfNeeded(current, now: Self.t0 + 240) == .none)
        #expect(Set(try members("big", store).keys) == ["p1", "p2"])
    }

    @Test func clockSegmentsStillMoveMembersAsTimePassesAndOnlyThoseAreReevaluated() throws {
        let segments = [SegmentDefinition(name: "recent", rule: .condition(property: "last_order", .withinDays(30))),
                        SegmentDefinition(name: "big", rule: .not(.condition(property: "spend", .lt(100))))]
        #expect(segments[0].rule!.dependsOnClock && !segments[1].rule!.dependsOnClock)
        let store = try makeStore([50, 150], segments: segments)
        #expect(try store.refreshSegmentsIfNeeded(segments, now: Self.t0 + Self.day) == .full)
        #expect(Set(try members("recent", store).keys) == ["p1", "p2"])

        // Behind the store's back, so only a re-evaluation of "big" would notice.
        try store.database.writer.write { try $0.execute(sql: "UPDATE profile SET properties = ? WHERE id = 'p1'",
                                                          arguments: [PropertyCodec.encode(["spend": [.number(999)], "last_order": [.date(Self.t0)]])]) }
        #expect(try store.refreshSegmentsIfNeeded(segments, now: Self.t0 + 40 * Self.day) == .clockDependent(["recent"]))
        #expect(try members("recent", store).isEmpty, "30 days passed: both left")
        #expect(Set(try members("big", store).keys) == ["p2"], "big was not re-evaluated")
        #expect(try store.segmentRefreshState()?.clockRefreshes == 1)
    }

    @Test func aRunWithSeveralExportsRefreshesMembershipOnce() async throws {
        let segments = [SegmentDefinition(name: "vip", rule: .condition(property: "last_order", .withinDays(30)))]
        let store = try makeStore([50, 150], segments: segments)
        let seen = Journal()
        let factory = TestGoalFactory { _ in MembershipReadingGoal(journal: seen) }
        let runner = ConnectionRunner(database: store.database, factory: factory, logger: Logger(label: "test"))
        let connection = testConnection(goals: [exportGoal, exportGoal, exportGoal])

        _ = try await runner.run(connection, segments: segments, trigger: .manual, scheduledAt: Self.t0 + Self.day)
        var state = try #require(try store.segmentRefreshState())
        #expect(state.fullRefreshes == 1 && state.clockRefreshes == 0, "first run: one full refresh for three exports")
        #expect(seen.all == Array(repeating: "current 2", count: 3))

        _ = try await runner.run(connection, segments: segments, trigger: .manual, scheduledAt: Self.t0 + 40 * Self.day)
        state = try #require(try store.segmentRefreshState())
        #expect(state.fullRefreshes == 1 && state.clockRefreshes == 1, "second run: one clock refresh for three exports")
        #expect(state.refreshedAt == Self.t0 + 40 * Self.day)
        #expect(seen.all.suffix(3) == Array(repeating: "current 0", count: 3), "every export saw the members leave")
    }

    @Test func aGoalRunOutsideTheRunnerBringsMembershipUpToDateItself() throws {
        let store = try makeStore([50, 150])
        let segments = [SegmentDefinition(name: "big", rule: .condition(property: "spend", .gte(100)))]
        let context = GoalContext(connection: testConnection(goals: [exportGoal]), segments: segments, database: store.database,
                                  recorder: RunRecorder(ledger: RunLedger(database: store.database), runID: 0),
                                  progress: SilentProgress(), logger: Logger(label: "test"), now: Self.t0)
        try context.ensureSegmentsCurrent()
        #expect(Set(try members("big", store).keys) == ["p2"])
    }
}

/// An export that records whether the runner made membership current and how many members it then sees.
struct MembershipReadingGoal: GoalExecutor {
    var journal: Journal

    func run(in context: GoalContext) async throws {
        try context.ensureSegmentsCurrent()
        let count = try await context.database.writer.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM segment_member WHERE segment = 'vip'") ?? 0 }
        journal.append("\(context.segmentsAreCurrent ? "current" : "stale") \(count)")
    }
}
