import Foundation
import Logging
import Testing
@testable import FerryCore

/// Malformed export rows: each is named by list and line, the others still apply, the run is `partial`.
///
/// The sandbox always writes well-formed CSV, so this runs the real runner and executor in-process on
/// an on-disk store with an API double that "exports" a fixture file, then reads the run back through
/// the built `ferry history show --json`.
@Suite struct SailthruImportBadRowsTests {
    /// An import of list Newsletter (sum and add fields, profiles created) whose exports come from a fixture
    /// API, not a server: the bad-rows test and the bad-input corpus run it.
    static func fixtureImport(in ws: Workspace) throws -> FixtureImport {
        let schedules = SailthruImportTests.schedules(in: ws, goals: """
          - import:
              lists: [Newsletter]
              match: { email: email }
              create_profiles: true
              fields:
                - { from: order_total, to: lifetime_spend, mode: sum }
                - { from: interests,   to: interests,      mode: add }
        """)
        let environment = ["SAILTHRU_API_KEY": "k", "SAILTHRU_API_SECRET": "s", "SAILTHRU_BASE_URL": "http://127.0.0.1:9"]
        let config = ConfigLoader(environment: environment).load(directory: schedules)
        let connection = try #require(config.connection(named: "st-import"), "\(config.errors)")
        return FixtureImport(connection: connection, config: config, schedules: schedules, environment: environment)
    }

    /// The connection of `fixtureImport`, its loaded config, the schedules folder and the environment it was loaded with.
    struct FixtureImport {
        var connection: Connection
        var config: FerryConfig
        var schedules: String
        var environment: [String: String]
    }

    /// A Sailthru API whose only working call is a list export that copies a fixed file.
    struct FixtureExportAPI: SailthruAPI {
        let fixture: URL
        struct Unsupported: Error {}
        func user(id: String, key: String) async throws -> SailthruUser { throw Unsupported() }
        func saveUser(_ update: SailthruUserUpdate) async throws { throw Unsupported() }
        func deleteUser(id: String, key: String) async throws { throw Unsupported() }
        func list(named name: String) async throws -> SailthruList { throw Unsupported() }
        func lists(primaryOnly: Bool) async throws -> [SailthruList] { throw Unsupported() }
        func saveList(_ list: SailthruListDefinition) async throws -> SailthruList { throw Unsupported() }
        func deleteList(named name: String) async throws { throw Unsupported() }
        func startUpdateJob(file: URL, update: [String: JSONValue]?) async throws -> SailthruJob { throw Unsupported() }
        func startImportJob(list: String, file: URL) async throws -> SailthruJob { throw Unsupported() }
        func startListExport(list: String, vars: [String]) async throws -> SailthruJob { throw Unsupported() }
        func job(id: String) async throws -> SailthruJob { throw Unsupported() }
        func waitForJob(id: String) async throws -> SailthruJob { throw Unsupported() }
        func exportList(_ list: String, vars: [String], to file: URL, observer: (any DownloadObserver)?) async throws -> SailthruJob {
            try FileManager.default.copyItem(at: fixture, to: file)
            try observer?.consume(contentsOf: file)
            return try #require(SailthruJob(json: ["job_id": .string("fixture"), "status": .string("completed")]))
        }
    }

    struct Factory: GoalExecutorFactory {
        let api: FixtureExportAPI
        func executor(for goal: Goal, of connection: Connection) throws -> any GoalExecutor {
            guard case .sailthruImport(let g) = goal else { throw GoalFailure("imports only") }
            return SailthruImportExecutor(goal: g, api: api, batchSize: 2)
        }
    }

    @Test func aChangedKeptExportFailsTheResumeOnceThenImportsAfresh() async throws {
        let ws = Workspace()
        let schedules = SailthruImportTests.schedules(in: ws, goals: """
          - import:
              lists: [Newsletter]
              match: { email: email }
              create_profiles: true
        """)
        let config = ConfigLoader(environment: ["SAILTHRU_API_KEY": "k", "SAILTHRU_API_SECRET": "s", "SAILTHRU_BASE_URL": "http://127.0.0.1:9"])
            .load(directory: schedules)
        let connection = try #require(config.connection(named: "st-import"), "\(config.errors)")
        let database = try AppDatabase.open(path: ws.db)
        let kept = ws.write("kept.csv", "Profile Id,Email\r\ns1,changed@example.com\r\n")
        try ImportCheckpoint.begin(connection: "st-import", list: "Newsletter", file: kept, digest: "0123", runID: 0, at: Date(), db: database)
        let fixture = BuiltProducts.packageRoot.appendingPathComponent("Fixtures/sailthru-import-bad-rows.csv")
        let runner = ConnectionRunner(database: database, factory: Factory(api: FixtureExportAPI(fixture: fixture)), logger: Logger(label: "test"))

        guard case .ran(let first) = try await runner.run(connection, segments: [], trigger: .manual, scheduledAt: nil) else {
            Issue.record("did not run"); return
        }
        #expect(first.first?.status == .failed)
        #expect(first.first?.error?.contains("list Newsletter: the interrupted import's kept export \(kept) is missing or changed") == true,
                "\(String(describing: first.first?.error))")
        #expect(try ImportCheckpoint.load(connection: "st-import", list: "Newsletter", db: database) == nil)
        #expect(try ProfileStore(database: database).count() == 0)

        guard case .ran(let second) = try await runner.run(connection, segments: [], trigger: .manual, scheduledAt: nil) else {
            Issue.record("did not run"); return
        }
        #expect(second.first?.status == .partial)
        #expect(second.first?.counts.created == 3)  // no sum field here, so only the short and unterminated rows fail
    }

    @Test func badRowsAreNamedAndTheOthersApply() async throws {
        let ws = Workspace()
        let setup = try Self.fixtureImport(in: ws)
        let (connection, config, schedules, environment) = (setup.connection, setup.config, setup.schedules, setup.environment)
        let fixture = BuiltProducts.packageRoot.appendingPathComponent("Fixtures/sailthru-import-bad-rows.csv")
        let runner = ConnectionRunner(database: try AppDatabase.open(path: ws.db),
                                      factory: Factory(api: FixtureExportAPI(fixture: fixture)), logger: Logger(label: "test"))
        _ = try await runner.run(connection, segments: config.segments, trigger: .manual, scheduledAt: nil)

        let runs = try await ferry(["history", "--json", "--schedules", schedules, "--db", ws.db], environment: environment)
        let list = (try JSONSerialization.jsonObject(with: Data(runs.stdout.utf8)) as? [String: Any])?["runs"] as? [[String: Any]]
        let id = try #require(list?.first?["id"] as? Int, "\(runs.stdout) \(runs.stderr)")
        let detail = try await SailthruImportTests.show(String(id), schedules: schedules, db: ws.db)
        #expect(detail["status"] as? String == "partial")
        let counts = detail["counts"] as? [String: Int] ?? [:]
        #expect(counts["read"] == 5 && counts["created"] == 2 && counts["failed"] == 3, "\(counts)")
        let errors = (detail["row_errors"] as? [[String: String]] ?? []).map { "\($0["location"]!): \($0["reason"]!)" }
        #expect(errors.count == 3)
        #expect(errors.first == "list Newsletter line 3: the row has 3 fields, the header has 4")
        #expect(errors.dropFirst().first?.hasPrefix("list Newsletter line 4: order_total → lifetime_spend (sum): 'abc' is not a number") == true, "\(errors)")
        #expect(errors.last == "list Newsletter line 6: a quoted field that starts here is never closed")

        let ok2 = try #require(try SailthruImportTests.profile("ok2@example.com", db: ws.db))
        #expect(ok2["interests"] == [.string("ski"), .string("wine")])
        #expect(ok2["lifetime_spend"] == [.number(2)])
        #expect(try SailthruImportTests.profile("sum@example.com", db: ws.db) == nil)
    }
}
