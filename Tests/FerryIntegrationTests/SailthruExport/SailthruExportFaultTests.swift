import Foundation
import Testing

/// The export under faults: failed batches kept in the outbox, convergence, a killed run.
@Suite struct SailthruExportFaultTests {
    /// Users' vars and list names, the part of the sandbox an export decides.
    static func snapshot(_ h: ExportHarness) async throws -> [String: String] {
        var result: [String: String] = [:]
        for (email, user) in try await h.users() {
            let vars = user["vars"] as? [String: Any] ?? [:]
            let lists = (user["lists"] as? [String: Any] ?? [:]).keys.sorted()
            let data = try JSONSerialization.data(withJSONObject: ["vars": vars, "lists": lists], options: [.sortedKeys])
            result[email] = String(decoding: data, as: UTF8.self)
        }
        return result
    }

    @Test(arguments: ["job", "user"])
    func failedBatchesGoToTheOutboxAndTheNextRunSendsThem(method: String) async throws {
        let h = try await ExportHarness.make(["--fail-rate", "1"])
        h.connection(method: method)
        try await h.load(ExportHarness.profiles(3))
        let failing = try await h.run()
        #expect(failing.status == 1)
        #expect(failing.stdout.contains("partial — failed 3"), "\(failing.stdout) \(failing.stderr)")
        let errors = try await h.lastRowErrors()
        #expect(errors.count == 3)
        #expect(errors.contains { $0.hasPrefix("profile u0 (u0@example.com): ") }, "\(errors)")

        // Sailthru recovers; meanwhile u2 left the segment, so its unconfirmed add is undone instead.
        h.server.process.stop()
        let directory = h.server.directory
        h.server = try await offPool { try SailthruSandboxServer.start([], seeded: false, directory: directory) }
        try await h.load(#"{"id": "u2", "country": "JP"}"# + "\n")
        let recovered = try await h.run()
        #expect(recovered.status == 0, "\(recovered.stdout) \(recovered.stderr)")
        #expect(recovered.stdout.contains("created 2 · exported 2 · removed 1"), "\(recovered.stdout)")
        #expect(try await h.members() == ExportHarness.emails(0..<2))

        let quiet = try await h.run()
        #expect(quiet.stdout.contains("succeeded — updated 2 · exported 2 ("), "\(quiet.stdout)")
    }

    @Test func threeRunsUnderFaultsEndWithTheListEqualToTheSegment() async throws {
        let h = try await ExportHarness.make(["--fail-rate", "0.2", "--drop-connections", "0.1"])
        try await h.load(ExportHarness.profiles(60))
        _ = try await h.run()
        // Between runs, ten leave and ten new ones arrive.
        try await h.load((0..<10).map { #"{"id": "u\#($0)", "country": "JP"}"# }.joined(separator: "\n") + "\n"
                   + ExportHarness.profiles(10, start: 60))
        _ = try await h.run()
        let last = try await h.run()
        #expect(try await h.members() == ExportHarness.emails(10..<70), "\(last.stdout) \(last.stderr)")
    }

    @Test func aRunKilledMidExportThenRerunEndsLikeOneCleanRun() async throws {
        let profiles = ExportHarness.profiles(400)

        let clean = try await ExportHarness.make()
        try await clean.load(profiles)
        #expect(try await clean.run().status == 0)

        let h = try await ExportHarness.make(jobDelay: 3)
        try await h.load(profiles)
        // Mid-export: killed from outside once the sandbox has answered the job's submission (list lookup,
        // list creation, job POST), while the job is still pending and the ledger not yet advanced.
        let port = h.server.port
        let killed = try await runAndKill(connection: "st-export", schedules: h.schedules, db: h.ws.db, environment: h.environment,
                                          measure: { SandboxCounters.read(port: port)?.requests ?? 0 }, killAt: 3)
        #expect(killed.killed, "\(killed)")

        let rerun = try await h.run()
        #expect(rerun.status == 0, "\(rerun.stdout) \(rerun.stderr)")
        #expect(rerun.stdout.contains("exported 400"), "\(rerun.stdout)")
        let historyArguments = ["history", "st-export", "--json", "--schedules", h.schedules, "--db", h.ws.db]
        let history = try await offPool { try BuiltProducts.ferry(historyArguments) }
        #expect(history.stdout.contains("\"interrupted\""), "\(history.stdout)")
        #expect(try await h.members() == ExportHarness.emails(0..<400))
        #expect(try await Self.snapshot(h) == (try await Self.snapshot(clean)))
    }
}
