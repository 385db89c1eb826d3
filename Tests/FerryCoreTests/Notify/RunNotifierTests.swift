import Foundation
import Logging
import Synchronization
import Testing
@testable import FerryCore

/// Keeps the messages it is given, or refuses them all; the SMTP path itself is tested against `ferry-sandbox smtp`.
final class CapturingMailSender: MailSender {
    private let sent = Mutex<[MailMessage]>([])
    let refusal: MailError?

    init(refusal: MailError? = nil) { self.refusal = refusal }

    func send(_ message: MailMessage) async throws {
        if let refusal { throw refusal }
        sent.withLock { $0.append(message) }
    }

    var messages: [MailMessage] { sent.withLock { $0 } }
}

/// A factory of test goals that mails through `notifier`.
struct NotifyingFactory: GoalExecutorFactory {
    var base: TestGoalFactory
    var notifier: RunNotifier
    func executor(for goal: Goal, of connection: Connection) throws -> any GoalExecutor { try base.executor(for: goal, of: connection) }
}

@Suite struct RunNotifierTests {
    func record(status: RunStatus, rowErrors: Int = 0, error: String? = nil) -> RunRecord {
        var counts = RunCounts()
        counts.read = 10
        counts.exported = 10 - rowErrors
        counts.failed = rowErrors
        return RunRecord(id: 42, connection: "sendgrid-daily", goal: "sendgrid export vip", trigger: .schedule, scheduledAt: nil,
                         startedAt: Date(timeIntervalSince1970: 1_795_435_338), endedAt: Date(timeIntervalSince1970: 1_795_435_341),
                         status: status, counts: counts, error: error,
                         rowErrors: (0..<rowErrors).map { RunRowError(location: "profile p\($0)", reason: "invalid email") },
                         touched: [])
    }

    @Test func theMailNamesConnectionGoalStatusCountsFirstErrorsAndTheHistoryCommand() {
        let message = RunNotifier.message(for: record(status: .partial, rowErrors: 7), from: "ferry@example.com",
                                          to: ["ops@example.com"], now: Date(timeIntervalSince1970: 1_795_435_342))
        #expect(message.subject == "[ferry] partial: sendgrid-daily / sendgrid export vip (run 42)")
        let body = message.body
        #expect(body.contains("Connection: sendgrid-daily"))
        #expect(body.contains("Status:     partial"))
        #expect(body.contains("Counts:     read 10, exported 3, failed 7"))
        #expect(body.contains("First errors (5 of 7):\n  profile p0: invalid email"))
        #expect(body.contains("profile p4: invalid email") && !body.contains("profile p5"))
        #expect(body.hasSuffix("More: ferry history show 42"))
        #expect(message.messageID.hasPrefix("ferry.run-42.") && message.messageID.hasSuffix("@example.com"))
    }

    @Test func aWholeRunFailureShowsItsError() {
        let body = RunNotifier.body(for: record(status: .failed, error: "SendGrid answered 401: bad API key"))
        #expect(body.contains("Error: SendGrid answered 401: bad API key"))
    }

    @Test func onlyTheChosenOutcomesAreMailedAndPartialOrInterruptedCountAsFailure() async {
        let sender = CapturingMailSender()
        let notifier = RunNotifier(sender: sender, from: "ferry@example.com")
        let onFailure = NotifySettings(email: ["ops@example.com"], on: [.failure])
        let logger = Logger(label: "test")
        #expect(await notifier.notify(record(status: .succeeded), settings: onFailure, logger: logger) == nil)
        #expect(await notifier.notify(record(status: .partial, rowErrors: 1), settings: onFailure, logger: logger)
            == "notification mailed to ops@example.com")
        #expect(await notifier.notify(record(status: .interrupted), settings: onFailure, logger: logger) != nil)
        #expect(await notifier.notify(record(status: .skipped), settings: onFailure, logger: logger) == nil)
        #expect(sender.messages.map(\.to) == [["ops@example.com"], ["ops@example.com"]])
    }

    @Test func eachFinishedGoalRunIsMailedAndTheNoteIsRecordedOnTheRun() async throws {
        let database = try AppDatabase.inMemory()
        let sender = CapturingMailSender()
        let factory = NotifyingFactory(base: TestGoalFactory { goal in
            goal.isImport ? TestGoal(journal: Journal(), name: "import", throwing: "bad key") : TestGoal(journal: Journal(), name: "export")
        }, notifier: RunNotifier(sender: sender, from: "ferry@example.com"))
        var connection = testConnection(goals: [importGoal, exportGoal])
        connection.notify = NotifySettings(email: ["ops@example.com"], on: [.failure, .success])
        let runner = ConnectionRunner(database: database, factory: factory, logger: Logger(label: "test"))
        guard case .ran(let records) = try await runner.run(connection, segments: [], trigger: .manual, scheduledAt: nil)
        else { Issue.record("expected runs"); return }
        #expect(records.map(\.status) == [.failed, .succeeded])
        #expect(sender.messages.map(\.subject) == ["[ferry] failed: c / import L (run \(records[0].id))",
                                                   "[ferry] succeeded: c / export vip (run \(records[1].id))"])
        let stored = try RunLedger(database: database).run(id: records[0].id)
        #expect(stored?.notes == ["notification mailed to ops@example.com"])
        #expect(stored?.status == .failed && stored?.error == "bad key")
    }

    @Test func aMailThatCannotBeSentIsANoteAndLeavesTheRunAlone() async throws {
        let database = try AppDatabase.inMemory()
        let refusal = MailError(server: "smtp://127.0.0.1:25", detail: "Recipient rejected", replyCode: 550)
        let factory = NotifyingFactory(base: TestGoalFactory { _ in TestGoal(journal: Journal(), name: "export") },
                                       notifier: RunNotifier(sender: CapturingMailSender(refusal: refusal), from: "ferry@example.com"))
        var connection = testConnection(goals: [exportGoal])
        connection.notify = NotifySettings(email: ["ops@example.com"], on: [.success])
        let runner = ConnectionRunner(database: database, factory: factory, logger: Logger(label: "test"))
        guard case .ran(let records) = try await runner.run(connection, segments: [], trigger: .manual, scheduledAt: nil)
        else { Issue.record("expected runs"); return }
        #expect(records.map(\.status) == [.succeeded])
        let stored = try #require(try RunLedger(database: database).run(id: records[0].id))
        #expect(stored.status == .succeeded && stored.error == nil)
        #expect(stored.notes == ["notification to ops@example.com not sent: mail to smtp://127.0.0.1:25 failed: Recipient rejected (SMTP 550)"])
    }

    @Test func withoutAMailServerTheRunNoteSaysSoAndDryRunsMailNothing() async throws {
        let database = try AppDatabase.inMemory()
        var connection = testConnection(goals: [exportGoal])
        connection.notify = NotifySettings(email: ["ops@example.com"], on: [.success])
        let unconfigured = ConnectionRunner(database: database, factory: TestGoalFactory { _ in TestGoal(journal: Journal(), name: "e") },
                                            logger: Logger(label: "test"))
        guard case .ran(let records) = try await unconfigured.run(connection, segments: [], trigger: .manual, scheduledAt: nil)
        else { Issue.record("expected runs"); return }
        #expect(records[0].notes == ["notification to ops@example.com not sent: FERRY_SMTP_URL is not set"])

        let sender = CapturingMailSender()
        let factory = NotifyingFactory(base: TestGoalFactory { _ in TestGoal(journal: Journal(), name: "e") },
                                       notifier: RunNotifier(sender: sender, from: "ferry@example.com"))
        let dryRunner = ConnectionRunner(database: database, factory: factory, logger: Logger(label: "test"))
        _ = try await dryRunner.run(connection, segments: [], trigger: .manual, scheduledAt: nil, isDryRun: true)
        #expect(sender.messages.isEmpty)
    }
}
