import Foundation
import Logging
import Testing
@testable import FerryCore

/// A Sailthru that accepts every `/user` call and remembers them (no network, no jobs).
final class RecordingSailthru: SailthruAPI, @unchecked Sendable {
    private let lock = NSLock()
    private var saved: [SailthruUserUpdate] = []

    var updates: [SailthruUserUpdate] { lock.withLock { saved } }

    struct Unsupported: Error {}

    func user(id: String, key: String) async throws -> SailthruUser { SailthruUser(keys: [key: id]) }
    func saveUser(_ update: SailthruUserUpdate) async throws { lock.withLock { saved.append(update) } }
    func deleteUser(id: String, key: String) async throws { throw Unsupported() }
    func list(named name: String) async throws -> SailthruList { SailthruList(name: name) }
    func lists(primaryOnly: Bool) async throws -> [SailthruList] { [] }
    func saveList(_ list: SailthruListDefinition) async throws -> SailthruList { SailthruList(name: list.name) }
    func deleteList(named name: String) async throws { throw Unsupported() }
    func startUpdateJob(file: URL, update: [String: JSONValue]?) async throws -> SailthruJob { throw Unsupported() }
    func startImportJob(list: String, file: URL) async throws -> SailthruJob { throw Unsupported() }
    func startListExport(list: String, vars: [String]) async throws -> SailthruJob { throw Unsupported() }
    func job(id: String) async throws -> SailthruJob { throw Unsupported() }
    func waitForJob(id: String) async throws -> SailthruJob { throw Unsupported() }
    func exportList(_ list: String, vars: [String], to file: URL, observer: (any DownloadObserver)?) async throws -> SailthruJob {
        throw Unsupported()
    }
}

/// Planning rules of the Sailthru export: the circuit breaker, unconfirmed users, changed identifiers.
@Suite struct SailthruExportPlanningTests {
    static let goal = SailthruExportGoal(segment: "newsletter", matchProperty: "email", matchKey: .email, method: .user,
                                         createUsers: true, existingProfiles: true, lists: ["L"], removeWhenLeaving: true,
                                         maxRemovalFraction: 0.5, fields: [ExportField(value: .profileID, to: "ferry_id")])

    func executor(_ api: any SailthruAPI = RecordingSailthru()) -> SailthruExportExecutor {
        SailthruExportExecutor(goal: Self.goal, api: api)
    }

    func ledger(_ count: Int) -> [Int64: ExportState.LedgerEntry] {
        Dictionary(uniqueKeysWithValues: (0..<count).map { (Int64($0), ExportState.LedgerEntry(profileID: "p\($0)", identifier: "u\($0)@x.com", lists: ["L"])) })
    }

    func removals(_ count: Int) -> [SailthruExportExecutor.Item] {
        (0..<count).map { .init(pk: Int64($0), profileID: "p\($0)", identifier: "u\($0)@x.com", operation: .remove, lists: ["L"], touchesLedger: true) }
    }

    @Test func theBreakerNeedsBothTheFractionAndMoreThanAThousand() {
        let export = executor()
        #expect(export.massRemoval(items: removals(1001), ledger: ledger(1001), allowed: false)?.contains("refusing to remove 1001 of the 1001") == true)
        #expect(export.massRemoval(items: removals(1001), ledger: ledger(1001), allowed: true) == nil)
        #expect(export.massRemoval(items: removals(1000), ledger: ledger(1000), allowed: false) == nil)
        #expect(export.massRemoval(items: removals(1500), ledger: ledger(4000), allowed: false) == nil)
        #expect(export.massRemoval(items: removals(2001), ledger: ledger(4000), allowed: false) != nil)
    }

    @Test func unconfirmedUsersNoLongerEligibleAreTakenOffTheLists() {
        var plan = ExportPlan()
        let outbox = [ExportState.OutboxEntry(pk: 7, profileID: "p7", identifier: "gone@x.com", operation: "add", reason: "HTTP 500"),
                      ExportState.OutboxEntry(pk: 1, profileID: "p1", identifier: "u1@x.com", operation: "add", reason: nil)]
        let candidates = [SailthruExportExecutor.Candidate(pk: 1, profileID: "p1", identifier: "u1@x.com"),
                          SailthruExportExecutor.Candidate(pk: 2, profileID: "p2", identifier: "u2@x.com")]
        let items = executor().plannedItems(candidates: candidates, ledger: [:], outbox: outbox, plan: &plan)
        // The unconfirmed user still eligible goes first; the one that left is removed without touching the ledger.
        #expect(items.map { "\($0.profileID) \($0.operation.rawValue) \($0.touchesLedger)" } == ["p1 add true", "p7 remove false", "p2 add true"])
        #expect(plan.count("add") == 2)
        #expect(plan.count("remove") == 1)
    }

    @Test func aChangedIdentifierTakesTheOldUserOffTheLists() async throws {
        let database = try AppDatabase.inMemory()
        let segments = [SegmentDefinition(name: "newsletter", rule: nil)]
        let store = ProfileStore(database: database)
        _ = try store.upsert([ProfileUpsert(id: "p1", properties: ["email": [.string("old@x.com")], "segments": [.string("newsletter")]])],
                             segments: segments)
        let api = RecordingSailthru()
        try await run(executor(api), database: database, segments: segments)
        _ = try store.upsert([ProfileUpsert(id: "p1", properties: ["email": [.string("new@x.com")]])], segments: segments)
        try await run(executor(api), database: database, segments: segments)

        let calls = api.updates.map { "\($0.id) \($0.lists ?? [:])" }
        #expect(calls == ["old@x.com [\"L\": true]", "old@x.com [\"L\": false]", "new@x.com [\"L\": true]"]
                || calls == ["old@x.com [\"L\": true]", "new@x.com [\"L\": true]", "old@x.com [\"L\": false]"], "\(calls)")
        let identifiers = try await database.writer.read { try String.fetchAll($0, sql: "SELECT identifier FROM export_membership") }
        #expect(identifiers == ["new@x.com"])
        let outbox = try await database.writer.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM export_outbox") }
        #expect(outbox == 0)
        #expect(try DataExchange.counts(database: database) == ["c": 1])
    }

    @Test func aBatchSentByARunThatDiedBeforeHearingBackIsUnconfirmedInTheNextRun() async throws {
        let database = try AppDatabase.inMemory()
        let segments = [SegmentDefinition(name: "newsletter", rule: nil)]
        let store = ProfileStore(database: database)
        _ = try store.upsert([ProfileUpsert(id: "p1", properties: ["email": [.string("a@x.com")], "segments": [.string("newsletter")]]),
                              ProfileUpsert(id: "p2", properties: ["email": [.string("b@x.com")], "segments": [.string("newsletter")]])],
                             segments: segments)
        let pks = try await database.writer.read { try Int64.fetchAll($0, sql: "SELECT pk FROM profile ORDER BY id") }
        // A killed run: its batch's intent was written, the batch sent, the outcome never recorded.
        try await database.writer.write { db in
            _ = try ExportState.intend([(pks[0], "p1", "a@x.com", "add"), (pks[1], "p2", "b@x.com", "add")], connection: "c", now: Date(), db: db)
            try db.execute(sql: """
                INSERT INTO export_outbox (connection, profile_pk, profile_id, identifier, operation, reason, queued_at)
                VALUES ('c', ?, 'p1', 'a@x.com', 'add', 'HTTP 500', 0)
                """, arguments: [pks[0]])
        }
        let state = ExportState(database: database, connection: "c")
        #expect(try state.outbox().map(\.profileID) == ["p1", "p2"], "each unconfirmed user once, the oldest first")
        // Meanwhile p2 left the segment: the next run must take it off the list its unconfirmed call may have joined.
        _ = try store.upsert([ProfileUpsert(id: "p2", properties: ["segments": [.string("other")]])], segments: segments)
        let api = RecordingSailthru()
        try await run(executor(api), database: database, segments: segments)

        #expect(Set(api.updates.map { "\($0.id) \($0.lists ?? [:])" }) == ["a@x.com [\"L\": true]", "b@x.com [\"L\": false]"])
        let left = try await database.writer.read { db in
            [try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM export_intent"), try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM export_outbox")]
        }
        #expect(left == [0, 0])
        #expect(try await database.writer.read { try String.fetchAll($0, sql: "SELECT identifier FROM export_membership") } == ["a@x.com"])
        let known = try await database.writer.read { try String.fetchAll($0, sql: "SELECT identifier FROM export_known_user WHERE found = 1") }
        #expect(known == ["a@x.com"], "accepted users are remembered as existing")
    }

    func run(_ executor: SailthruExportExecutor, database: AppDatabase, segments: [SegmentDefinition]) async throws {
        let parsed = ConnectionParser(environment: ["K": "k", "S": "s"], knownSegments: ["newsletter"]).parse(text: """
        name: c
        timezone: UTC
        schedule: { at: ["02:30"] }
        destination: { type: sailthru, api_key: "${K}", api_secret: "${S}" }
        goals:
          - export: { segment: newsletter, match: { email: email }, lists: [L] }
        """, file: "c.yaml")
        let connection = try #require(parsed.connection, "\(parsed.errors)")
        let ledger = RunLedger(database: database)
        let runID = try ledger.start(connection: "c", goal: "export", trigger: .manual, scheduledAt: nil)
        let context = GoalContext(connection: connection, segments: segments, database: database,
                                  recorder: RunRecorder(ledger: ledger, runID: runID), progress: SilentProgress(),
                                  logger: Logger(label: "test"))
        try await executor.run(in: context)
    }
}

/// The identifier trim's ASCII shortcut must agree with Foundation's `.whitespaces` trim.
@Suite struct SailthruExportIdentifierTrimTests {
    @Test(arguments: ["ann@example.org", " ann@example.org", "ann@example.org\t", "\u{00A0}ann@example.org\u{2003}",
                      "", " ", "\t \t", "a", "ann@exämple.org", "é", "ann@example.org\n", "\u{3000}x\u{3000}"])
    func trimAgreesWithFoundation(_ text: String) {
        #expect(SailthruExportExecutor.trimmed(text) == text.trimmingCharacters(in: .whitespaces))
    }
}
