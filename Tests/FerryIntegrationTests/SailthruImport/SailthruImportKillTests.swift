import Foundation
import Testing
import FerryCore

/// A `ferry run` killed with SIGKILL mid-import (in its second list), then run again, applies every row's `sum` exactly once.
@Suite struct SailthruImportKillTests {
    static let members = 2000
    static let smallMembers = 5

    static func seedFile(in ws: Workspace) throws -> String {
        var users = (0..<smallMembers).map { i -> [String: Any] in
            ["email": "s\(i)@example.com", "vars": ["order_total": 10], "lists": ["Small"]]
        }
        users += (0..<members).map { i -> [String: Any] in
            ["email": "u\(i)@example.com", "vars": ["order_total": i % 7 + 1, "interests": "t\(i % 3)"], "lists": ["Big"]]
        }
        let lists = [["name": "Small", "type": "normal"], ["name": "Big", "type": "normal"]]
        let data = try JSONSerialization.data(withJSONObject: ["lists": lists, "users": users])
        return ws.write("seed.json", String(decoding: data, as: UTF8.self))
    }

    @Test func aKilledImportResumesAndSumsEveryRowOnce() async throws {
        let ws = Workspace()
        let seed = try Self.seedFile(in: ws)
        try await SailthruSandboxServer.withOffPool(["--seed-file", seed]) { server in
            let schedules = SailthruImportTests.schedules(in: ws, goals: """
              - import:
                  lists: [Small, Big]
                  match: { email: email }
                  create_profiles: true
                  fields:
                    - { from: order_total, to: lifetime_spend, mode: sum }
                    - { from: interests,   to: interests,      mode: add }
            """)
            let environment = SailthruImportTests.environment(server, ["FERRY_IMPORT_BATCH_SIZE": "10"])
            // Create and migrate the store first, so this process can watch the checkpoint while ferry writes.
            let database = try AppDatabase.open(path: ws.db)

            // Killed from outside the moment the store shows the second list's first committed batch.
            let killed = try await runAndKill(connection: "st-import", schedules: schedules, db: ws.db, environment: environment, measure: {
                (try? ImportCheckpoint.load(connection: "st-import", list: "Big", db: database))??.recordsApplied ?? 0
            }, killAt: 1)
            #expect(killed.killed, "the kill must land mid-import: \(killed)")

            // The store holds exactly the checkpointed rows: batches commit with their checkpoint.
            let checkpoint = try #require(try ImportCheckpoint.load(connection: "st-import", list: "Big", db: database))
            #expect(checkpoint.recordsApplied > 0 && checkpoint.recordsApplied < Self.members)
            let store = ProfileStore(database: database)
            #expect(try store.count() == Self.smallMembers + checkpoint.recordsApplied)
            #expect(try ImportCheckpoint.load(connection: "st-import", list: "Small", db: database)?.isCompleted == true)
            #expect(FileManager.default.fileExists(atPath: checkpoint.file))

            let rerun = try await ferry(["run", "st-import", "--now", "--schedules", schedules, "--db", ws.db],
                                                environment: environment)
            #expect(rerun.status == 0, "\(rerun.stdout) \(rerun.stderr)")
            #expect(try ImportCheckpoint.load(connection: "st-import", list: "Big", db: database) == nil)
            #expect(!FileManager.default.fileExists(atPath: checkpoint.file))
            #expect(try store.count() == Self.smallMembers + Self.members)
            #expect(try ImportCheckpoint.load(connection: "st-import", list: "Small", db: database) == nil)
            // The first list, finished before the kill, is not imported a second time.
            for i in 0..<Self.smallMembers {
                #expect(try store.find("s\(i)@example.com")?.profile["lifetime_spend"] == [.number(10)])
            }
            var wrong: [String] = []
            for i in 0..<Self.members {
                let profile = try store.find("u\(i)@example.com")?.profile
                if profile?["lifetime_spend"] != [.number(Double(i % 7 + 1))] || profile?["interests"] != [.string("t\(i % 3)")] {
                    wrong.append("u\(i): \(String(describing: profile?.properties))")
                }
            }
            #expect(wrong.isEmpty, "\(wrong.count) profiles wrong, e.g. \(wrong.prefix(3))")

            let runs = try RunLedger(database: database).runs(connection: "st-import")
            #expect(runs.map(\.status) == [.succeeded, .interrupted])
            #expect(runs.first?.counts.read == Self.members - checkpoint.recordsApplied)
            #expect(runs.first?.counts.created == Self.members - checkpoint.recordsApplied)
            // The killed run's counters were committed with its rows.
            #expect(runs.last?.counts.read == Self.smallMembers + checkpoint.recordsApplied)
            #expect(try DataExchange.counts(database: database)["st-import"] == Self.smallMembers + Self.members)
        }
    }
}
