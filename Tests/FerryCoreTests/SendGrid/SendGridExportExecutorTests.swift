import Foundation
import Logging
import Testing
@testable import FerryCore

/// An in-memory SendGrid that can refuse batches and reject emails, to test the goal's bookkeeping.
actor FakeSendGrid: SendGridAPI {
    var fields: [SendGridFieldDefinition] = []
    var listsStore: [SendGridList] = []
    var segmentsStore: [SendGridSegment] = []
    /// Membership field value by email, as last accepted.
    var membership: [String: String] = [:]
    /// Emails of each accepted or refused upsert, in order.
    var upserts: [[String]] = []
    var failNextUpserts = 0
    var fatal = false
    var rejectEmails: Set<String> = []
    /// Jobs whose status cannot be read (a non-fatal error on every poll).
    var unreadableJobs: Set<String> = []
    /// `upsert <first email>` and `wait <job id>`, in the order they were called.
    var calls: [String] = []
    private var jobs: [String: SendGridImportJob] = [:]

    func configure(failNextUpserts: Int = 0, fatal: Bool = false, rejectEmails: Set<String> = [], unreadableJobs: Set<String> = []) {
        self.unreadableJobs = unreadableJobs
        self.failNextUpserts = failNextUpserts
        self.fatal = fatal
        self.rejectEmails = rejectEmails
    }

    func fieldDefinitions() async throws -> [SendGridFieldDefinition] { fields }
    func createField(name: String, kind: SendGridFieldKind) async throws -> SendGridFieldDefinition {
        let field = SendGridFieldDefinition(id: "e\(fields.count + 1)_T", name: name, fieldType: kind.rawValue)
        fields.append(field)
        return field
    }
    func lists() async throws -> [SendGridList] { listsStore }
    func createList(name: String) async throws -> SendGridList {
        let list = SendGridList(id: "list-\(listsStore.count + 1)", name: name)
        listsStore.append(list)
        return list
    }
    func segments() async throws -> [SendGridSegment] { segmentsStore }
    func createSegment(name: String, queryDSL: String) async throws -> SendGridSegment {
        let segment = SendGridSegment(id: "seg-\(segmentsStore.count + 1)", name: name, queryDSL: queryDSL)
        segmentsStore.append(segment)
        return segment
    }
    func updateSegment(id: String, queryDSL: String) async throws -> SendGridSegment {
        let index = segmentsStore.firstIndex { $0.id == id }!
        segmentsStore[index].queryDSL = queryDSL
        return segmentsStore[index]
    }
    func upsertContacts(body: Data) async throws -> String {
        let contacts = try JSONValue.parse(body)["contacts"]?.arrayValue ?? []
        let emails = contacts.compactMap { $0["email"]?.stringValue }
        upserts.append(emails)
        calls.append("upsert \(emails.first ?? "")")
        if fatal { throw SendGridError(kind: .unauthorized, message: "authentication failed", httpStatus: 401, endpoint: "PUT /v3/marketing/contacts") }
        if failNextUpserts > 0 {
            failNextUpserts -= 1
            throw SendGridError(kind: .server, message: "HTTP 500", httpStatus: 500, endpoint: "PUT /v3/marketing/contacts")
        }
        let membershipID = fields.first { $0.name == "ferry_segments" }!.id
        var errors: [SendGridImportJob.ContactError] = []
        for contact in contacts {
            let email = contact["email"]!.stringValue!
            if rejectEmails.contains(email) { errors.append(.init(email: email, message: "invalid email")); continue }
            membership[email] = contact["custom_fields"]?[membershipID]?.stringValue
        }
        let id = "job-\(jobs.count + 1)"
        jobs[id] = SendGridImportJob(id: id, status: errors.isEmpty ? .completed : .errored, requestedCount: contacts.count,
                                     createdCount: contacts.count - errors.count, erroredCount: errors.count, errors: errors)
        return id
    }
    func importJob(id: String) async throws -> SendGridImportJob { jobs[id]! }
    func waitForImport(id: String) async throws -> SendGridImportJob {
        calls.append("wait \(id)")
        if unreadableJobs.contains(id) {
            throw SendGridError(kind: .server, message: "HTTP 500", httpStatus: 500, endpoint: "GET /v3/marketing/contacts/imports/\(id)")
        }
        return jobs[id]!
    }
    func importErrors(of job: SendGridImportJob) async throws -> [SendGridImportJob.ContactError] { job.errors }
}

@Suite struct SendGridExportExecutorTests {
    let goal = SendGridExportGoal(segments: ["vip"], list: "ferry-contacts", membershipField: "ferry_segments",
                                  emailProperty: "email", firstNameProperty: nil, lastNameProperty: nil, fields: [])
    let segments = [SegmentDefinition(name: "vip", rule: nil)]

    func setUp() throws -> AppDatabase {
        let database = try AppDatabase.inMemory()
        _ = try ProfileStore(database: database).upsert([
            ProfileUpsert(id: "p1", properties: ["email": [.string("a@x.com")], "segments": [.string("vip")]]),
            ProfileUpsert(id: "p2", properties: ["email": [.string("b@x.com")], "segments": [.string("vip")]]),
        ], segments: segments)
        return database
    }

    func run(_ database: AppDatabase, _ api: FakeSendGrid) async throws -> RunRecord {
        let executor = SendGridExportExecutor(goal: goal, api: api, batcher: SendGridBatcher(maxContacts: 1))
        let runner = ConnectionRunner(database: database, factory: TestGoalFactory { _ in executor }, logger: Logger(label: "test"))
        guard case .ran(let records) = try await runner.run(testConnection(goals: [.sendgridExport(goal)]), segments: segments,
                                                            trigger: .manual, scheduledAt: nil) else {
            throw GoalFailure("skipped")
        }
        return records[0]
    }

    @Test func aRefusedBatchWaitsInTheOutboxAndGoesFirstNextRun() async throws {
        let database = try setUp()
        let api = FakeSendGrid()
        await api.configure(failNextUpserts: 1)
        let first = try await run(database, api)
        #expect(first.status == .partial)
        #expect(first.counts.failed == 1 && first.counts.exported == 1)
        let sync = SendGridSyncStore(database: database, connection: "c")
        #expect(try sync.synced().values.map(\.email) == ["b@x.com"])  // only the accepted one advanced
        let pk1 = try #require(try ProfileStore(database: database).find("p1")?.pk)
        #expect(try sync.outbox().map(\.pk) == [pk1])

        let second = try await run(database, api)
        #expect(second.status == .succeeded)
        #expect(await api.upserts.suffix(2).first == ["a@x.com"])  // the outbox goes first
        #expect(try sync.outbox().isEmpty)
        #expect(try sync.synced().count == 2)
        #expect(await api.membership == ["a@x.com": "vip", "b@x.com": "vip"])
        #expect(try DataExchange.counts(database: database) == ["c": 2])
        #expect(await api.segmentsStore.count == 1)
        #expect(await api.fields.count == 1)
        #expect(await api.listsStore.count == 1)
    }

    @Test func theNextBatchIsSentBeforeWaitingOnTheLastJob() async throws {
        let database = try setUp()
        let api = FakeSendGrid()
        let record = try await run(database, api)
        #expect(record.status == .succeeded)
        #expect(await api.calls == ["upsert a@x.com", "upsert b@x.com", "wait job-1", "wait job-2"])
        #expect(try SendGridSyncStore(database: database, connection: "c").synced().count == 2)
    }

    @Test func aJobThatCannotBeReadFailsOnlyItsBatchWhileTheNextOneIsInFlight() async throws {
        let database = try setUp()
        let api = FakeSendGrid()
        await api.configure(unreadableJobs: ["job-1"])
        let record = try await run(database, api)
        #expect(record.status == .partial)
        #expect(record.rowErrors.map(\.location) == ["profile p1"])
        let sync = SendGridSyncStore(database: database, connection: "c")
        #expect(try sync.synced().values.map(\.email) == ["b@x.com"])  // job-2 succeeded and advanced alone
        let pk1 = try #require(try ProfileStore(database: database).find("p1")?.pk)
        #expect(try sync.outbox().map(\.pk) == [pk1])
    }

    @Test func aRejectedEmailFailsOnlyItsProfile() async throws {
        let database = try setUp()
        let api = FakeSendGrid()
        await api.configure(rejectEmails: ["a@x.com"])
        let record = try await run(database, api)
        #expect(record.status == .partial)
        #expect(record.rowErrors.map(\.location) == ["profile p1"])
        #expect(record.counts.exported == 1)
    }

    @Test func aRejectedKeyFailsTheRun() async throws {
        let database = try setUp()
        let api = FakeSendGrid()
        await api.configure(fatal: true)
        let record = try await run(database, api)
        #expect(record.status == .failed)
        #expect(record.error?.contains("authentication failed") == true)
        #expect(try SendGridSyncStore(database: database, connection: "c").synced().isEmpty)
    }
}
