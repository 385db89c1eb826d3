import Foundation
import Synchronization
@testable import FerryCore

/// Goals defined in the test target, so the runner and scheduler are tested without a platform.
struct TestGoalFactory: GoalExecutorFactory {
    /// What each goal does when run, by goal label.
    var behaviour: @Sendable (Goal) -> any GoalExecutor

    func executor(for goal: Goal, of connection: Connection) throws -> any GoalExecutor { behaviour(goal) }
}

/// A goal that records its start, optionally waits, counts, and fails some rows or all of it.
struct TestGoal: GoalExecutor {
    var journal: Journal
    var name: String
    var duration: Duration = .zero
    var failedRows = 0
    var throwing: String?

    func run(in context: GoalContext) async throws {
        journal.append("start \(name)")
        if duration > .zero { try await Task.sleep(for: duration) }
        await context.recorder.count { $0.exported += 3 }
        await context.recorder.touch(TouchedProfile(profileID: "p1", identifier: "a@x.com", action: "exported"))
        for n in 0..<failedRows { await context.recorder.fail(RunRowError(location: "profile f\(n)", reason: "rejected")) }
        if let throwing { throw GoalFailure(throwing) }
        journal.append("end \(name)")
    }
}

/// A thread-safe list of events, in order.
final class Journal: Sendable {
    private let events = Mutex<[String]>([])
    func append(_ event: String) { events.withLock { $0.append(event) } }
    var all: [String] { events.withLock { $0 } }
}

/// A minimal valid connection for tests.
func testConnection(name: String = "c", goals: [Goal], schedule: ScheduleRule = .times([WallTime(hour: 2, minute: 30)!], days: .everyDay),
                    zone: String = "America/New_York", catchUp: CatchUpPolicy = .once) -> Connection {
    Connection(name: name, description: nil, isEnabled: true,
               schedule: Schedule(rule: schedule, timeZoneIdentifier: zone), catchUp: catchUp, notify: nil, objectives: [],
               destination: .sendgrid(SendGridDestination(apiKey: Secret(value: "k", variable: "K"), baseURL: "http://127.0.0.1:9")),
               goals: goals, file: "c.yaml")
}

let exportGoal = Goal.mappExport(MappExportGoal(segment: "vip", filePrefix: "x", columns: []))
let importGoal = Goal.sailthruImport(SailthruImportGoal(lists: ["L"], match: [], createProfiles: false, listNameProperty: nil, fields: []))
