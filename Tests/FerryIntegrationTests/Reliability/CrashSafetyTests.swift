import FerryCore
import FerryTestSupport
import Foundation
import Testing

/// DESIGN.md "Reliability rules": a run killed midway is marked `interrupted` and rerunning it is safe.
/// For every goal type, `ferry run` is killed with SIGKILL at points a seeded die picks (observed from outside:
/// the sandbox's request counter, the import checkpoint, the sshd folder), several times in a row, then run to
/// the end; the destination and the store must equal those of one clean run.
@Suite(.serialized, .timeLimit(.minutes(6))) struct CrashSafetyTests {
    static let kills = 4

    /// Rows of `sqlite3 -readonly DB SQL`, for comparing the goals' own tables between two stores.
    static func rows(_ db: String, _ sql: String) throws -> [String] {
        try runTool("/usr/bin/sqlite3", ["-readonly", db, sql]).split(separator: "\n").map(String.init)
    }

    /// The killed runs are `interrupted`, the ones that finished before their kill point `succeeded`, then the final run.
    /// Read back through `ferry history --json`, what a person would look at.
    static func expectStatuses(_ kills: [KilledRun], connection: String, schedules: String, db: String) async throws {
        let expected = kills.map { $0.killed ? "interrupted" : "succeeded" } + ["succeeded"]
        let history = try await historyRuns(connection: connection, schedules: schedules, db: db)
        #expect(history.map { $0["status"] as? String ?? "?" } == expected, "\(kills)")
        #expect(kills.contains { $0.killed }, "no kill landed mid-run: \(kills)")
    }

    // MARK: Sailthru export

    @Test(arguments: ["job", "user"])
    func aSailthruExportKilledAtSeededPointsEndsLikeOneCleanRun(method: String) async throws {
        var dice = KillDice(seed: ReliabilitySeed.value(default: method == "job" ? 1001 : 1002))
        reliabilityLog("sailthru export method \(method): seed \(dice.seed)")
        let profiles = ExportHarness.profiles(method == "job" ? 600 : 120)

        let clean = try await ExportHarness.make()
        clean.connection(method: method)
        try await clean.load(profiles)
        let cleanRun = try await clean.run()
        #expect(cleanRun.status == 0, "\(cleanRun.stdout) \(cleanRun.stderr)")
        let cleanRequests = try #require(SandboxCounters.read(port: clean.server.port)).requests

        let h = try await ExportHarness.make()
        h.connection(method: method)
        try await h.load(profiles)
        let port = h.server.port
        var kills: [KilledRun] = []
        for _ in 0..<Self.kills {
            let base = SandboxCounters.read(port: port)?.requests ?? 0
            let threshold = dice.int(1...max(1, cleanRequests - 1))
            let killed = try await runAndKill(connection: "st-export", schedules: h.schedules, db: h.ws.db, environment: h.environment,
                                              measure: { (SandboxCounters.read(port: port)?.requests ?? base) - base }, killAt: threshold)
            reliabilityLog("sailthru export \(method): kill after request \(threshold) of \(cleanRequests): \(killed)")
            kills.append(killed)
        }
        let final = try await h.run()
        #expect(final.status == 0, "\(final.stdout) \(final.stderr)")

        #expect(try await SailthruExportFaultTests.snapshot(h) == (try await SailthruExportFaultTests.snapshot(clean)))
        #expect(try await h.members() == ExportHarness.emails(0..<(method == "job" ? 600 : 120)))
        let ledger = "SELECT list, profile_id, identifier FROM export_membership ORDER BY 1, 2"
        #expect(try Self.rows(h.ws.db, ledger) == (try Self.rows(clean.ws.db, ledger)))
        #expect(try Self.rows(h.ws.db, "SELECT * FROM export_outbox").isEmpty)
        try await Self.expectStatuses(kills, connection: "st-export", schedules: h.schedules, db: h.ws.db)
    }

    // MARK: Sailthru import

    @Test func aSailthruImportKilledAtSeededPointsSumsEveryRowOnce() async throws {
        var dice = KillDice(seed: ReliabilitySeed.value(default: 1003))
        reliabilityLog("sailthru import: seed \(dice.seed)")
        let goals = """
          - import:
              lists: [Small, Big]
              match: { email: email }
              create_profiles: true
              fields:
                - { from: order_total, to: lifetime_spend, mode: sum }
                - { from: interests,   to: interests,      mode: add }
        """
        let members = SailthruImportKillTests.members, small = SailthruImportKillTests.smallMembers

        let cleanWS = Workspace()
        let cleanSeed = try SailthruImportKillTests.seedFile(in: cleanWS)
        let cleanServer = try await onOwnThread { try SailthruSandboxServer.start(["--seed-file", cleanSeed], seeded: false) }
        defer { cleanServer.stop() }
        let cleanSchedules = SailthruImportTests.schedules(in: cleanWS, goals: goals)
        let clean = try await ferry(["run", "st-import", "--now", "--schedules", cleanSchedules, "--db", cleanWS.db],
                                    environment: SailthruImportTests.environment(cleanServer, ["FERRY_IMPORT_BATCH_SIZE": "10"]))
        #expect(clean.status == 0, "\(clean.stdout) \(clean.stderr)")
        let cleanRequests = try #require(SandboxCounters.read(port: cleanServer.port)).requests

        let ws = Workspace()
        let seed = try SailthruImportKillTests.seedFile(in: ws)
        let server = try await onOwnThread { try SailthruSandboxServer.start(["--seed-file", seed], seeded: false) }
        defer { server.stop() }
        let schedules = SailthruImportTests.schedules(in: ws, goals: goals)
        let environment = SailthruImportTests.environment(server, ["FERRY_IMPORT_BATCH_SIZE": "10"])
        let database = try AppDatabase.open(path: ws.db)
        let port = server.port
        var kills: [KilledRun] = []
        for _ in 0..<Self.kills {
            // Half the points count the sandbox's requests (export jobs, polls, downloads), half the rows the
            // store has committed with its checkpoint.
            let measure: @Sendable () -> Int
            let threshold: Int
            let label: String
            if dice.int(0...1) == 0 {
                let base = SandboxCounters.read(port: port)?.requests ?? 0
                threshold = dice.int(1...max(1, cleanRequests - 1))
                measure = { (SandboxCounters.read(port: port)?.requests ?? base) - base }
                label = "after request \(threshold) of \(cleanRequests)"
            } else {
                threshold = dice.int(1...(small + members - 1))
                measure = {
                    let big = (try? ImportCheckpoint.load(connection: "st-import", list: "Big", db: database))??.recordsApplied ?? 0
                    let smallDone = (try? ImportCheckpoint.load(connection: "st-import", list: "Small", db: database))??.isCompleted == true
                    return big + (smallDone ? small : 0)
                }
                label = "after \(threshold) of \(small + members) rows applied"
            }
            let killed = try await runAndKill(connection: "st-import", schedules: schedules, db: ws.db, environment: environment,
                                              measure: measure, killAt: threshold)
            reliabilityLog("sailthru import: kill \(label): \(killed)")
            kills.append(killed)
        }
        let final = try await ferry(["run", "st-import", "--now", "--schedules", schedules, "--db", ws.db], environment: environment)
        #expect(final.status == 0, "\(final.stdout) \(final.stderr)")

        let store = ProfileStore(database: database)
        let cleanStore = ProfileStore(database: try AppDatabase.open(path: cleanWS.db))
        #expect(try store.count() == small + members)
        var wrong: [String] = []
        for email in (0..<small).map({ "s\($0)@example.com" }) + (0..<members).map({ "u\($0)@example.com" }) {
            let got = try store.find(email)?.profile.properties, want = try cleanStore.find(email)?.profile.properties
            if got == nil || got != want { wrong.append("\(email): \(String(describing: got)) != \(String(describing: want))") }
        }
        #expect(wrong.isEmpty, "\(wrong.count) profiles differ from the clean run's (a sum applied twice or a row missing), e.g. \(wrong.prefix(3))")
        // Spot-check against the seed itself, not only the clean run: each sum applied exactly once.
        #expect(try store.find("u13@example.com")?.profile["lifetime_spend"] == [.number(Double(13 % 7 + 1))])
        #expect(try store.find("s0@example.com")?.profile["lifetime_spend"] == [.number(10)])
        #expect(try ImportCheckpoint.load(connection: "st-import", list: "Big", db: database) == nil)
        #expect(try ImportCheckpoint.load(connection: "st-import", list: "Small", db: database) == nil)
        #expect(try DataExchange.counts(database: database)["st-import"] == small + members)
        try await Self.expectStatuses(kills, connection: "st-import", schedules: schedules, db: ws.db)
    }

    // MARK: SendGrid export

    static func sendGridProfiles(_ count: Int) -> [String] {
        (0..<count).map { i in
            #"{"id":"g\#(i)","email":"g\#(i)@example.com","first_name":"G\#(i)","city":"City \#(i % 9)","lifetime_spend":\#(300 + i % 300),"newsletter":"\#(i % 3 == 0 ? "yes" : "no")"}"#
        }
    }

    /// A SendGrid dump without ids and job counts, arrays sorted: what an export decides.
    static func sendGridState(_ server: SendGridSandboxServer) throws -> String {
        canonicalJSON(try server.dump(), dropping: ["id", "jobs"])
    }

    @Test func aSendGridExportKilledAtSeededPointsEndsLikeOneCleanRun() async throws {
        var dice = KillDice(seed: ReliabilitySeed.value(default: 1004))
        reliabilityLog("sendgrid export: seed \(dice.seed)")
        let profiles = Self.sendGridProfiles(900)

        let cleanServer = try await onOwnThread { try SendGridSandboxServer.start() }
        defer { cleanServer.stop() }
        let cleanWS = try await onOwnThread { try SendGridExportTests.workspace(cleanServer, profiles: profiles) }
        let clean = try await onOwnThread { try SendGridExportTests.run(cleanWS, cleanServer) }
        #expect(clean.status == 0, "\(clean.stdout) \(clean.stderr)")
        let cleanRequests = try #require(SandboxCounters.read(port: cleanServer.port)).requests

        let server = try await onOwnThread { try SendGridSandboxServer.start() }
        defer { server.stop() }
        let ws = try await onOwnThread { try SendGridExportTests.workspace(server, profiles: profiles) }
        let environment = ["SENDGRID_API_KEY": SendGridSandboxServer.apiKey, "SENDGRID_BASE_URL": server.baseURL]
        let port = server.port
        var kills: [KilledRun] = []
        for _ in 0..<Self.kills {
            let base = SandboxCounters.read(port: port)?.requests ?? 0
            let threshold = dice.int(1...max(1, cleanRequests - 1))
            let killed = try await runAndKill(connection: "sg", schedules: ws.path + "/s", db: ws.db, environment: environment,
                                              measure: { (SandboxCounters.read(port: port)?.requests ?? base) - base }, killAt: threshold)
            reliabilityLog("sendgrid export: kill after request \(threshold) of \(cleanRequests): \(killed)")
            kills.append(killed)
        }
        let final = try await onOwnThread { try SendGridExportTests.run(ws, server) }
        #expect(final.status == 0, "\(final.stdout) \(final.stderr)")

        #expect(try Self.sendGridState(server) == (try Self.sendGridState(cleanServer)))
        #expect(try server.contacts().count == (try cleanServer.contacts().count))
        #expect(try server.contacts().count > 600)
        let sync = "SELECT email, membership FROM sendgrid_sync ORDER BY 1"
        #expect(try Self.rows(ws.db, sync) == (try Self.rows(cleanWS.db, sync)))
        #expect(try Self.rows(ws.db, "SELECT * FROM sendgrid_outbox").isEmpty)
        try await Self.expectStatuses(kills, connection: "sg", schedules: ws.path + "/s", db: ws.db)
    }

    // MARK: Mapp export

    /// `count` extra vip members, so the upload lasts long enough to be caught part-way.
    static func loadMappProfiles(_ ws: Workspace, count: Int) throws {
        let lines = (0..<count).map { i in
            #"{"id":"m\#(i)","email":"m\#(i)@example.com","first_name":"Member \#(i)","city":"Town \#(i % 50), \"Quarter\"","lifetime_spend":\#(400 + i % 900)}"#
        }
        let file = ws.write("mapp-extra.jsonl", lines.joined(separator: "\n") + "\n")
        let result = try BuiltProducts.ferry(["profiles", "load", file, "--schedules", ws.path + "/s", "--db", ws.db])
        #expect(result.status == 0, "\(result.stderr)")
    }

    static func folderContents(_ server: SSHDServer) -> [String] {
        MappExportTests.files(in: server.root.appendingPathComponent("drop/ferry"))
    }

    @Test func aMappExportKilledAtSeededPointsPublishesOnlyWholeFiles() async throws {
        var dice = KillDice(seed: ReliabilitySeed.value(default: 1005))
        reliabilityLog("mapp export: seed \(dice.seed)")

        let cleanServer = try await SSHDServer.start()
        defer { cleanServer.stop() }
        let cleanWS = try await onOwnThread {
            let ws = try MappExportTests.prepare(server: cleanServer)
            try Self.loadMappProfiles(ws, count: 3000)
            return ws
        }
        let clean = try await onOwnThread { try BuiltProducts.ferry(["run", "mapp-test", "--now", "--schedules", cleanWS.path + "/s", "--db", cleanWS.db]) }
        #expect(clean.status == 0, "\(clean.stdout) \(clean.stderr)")
        let cleanNames = Self.folderContents(cleanServer)
        #expect(cleanNames.count == 1, "\(cleanNames)")
        let cleanFolder = cleanServer.root.appendingPathComponent("drop/ferry")
        let cleanBytes = try Data(contentsOf: cleanFolder.appendingPathComponent(try #require(cleanNames.first)))

        let server = try await SSHDServer.start()
        defer { server.stop() }
        let ws = try await onOwnThread {
            let ws = try MappExportTests.prepare(server: server)
            try Self.loadMappProfiles(ws, count: 3000)
            return ws
        }
        let folder = server.root.appendingPathComponent("drop/ferry")
        let logPath = server.logPath
        let half = cleanBytes.count / 2
        // Every milestone once, in an order the die picks.
        var milestones = Array(1...4)
        for i in stride(from: milestones.count - 1, to: 0, by: -1) { milestones.swapAt(i, dice.int(0...i)) }
        var kills: [KilledRun] = []
        for threshold in milestones {
            // Milestones seen from the server's side: 1 the session is authenticated, 2 a `.part` upload exists,
            // 3 it holds half the file, 4 a new `.csv` is published (the run not yet recorded as finished).
            let accepted = Self.count("Accepted publickey", in: logPath)
            let before = Set(Self.folderContents(server))
            let measure: @Sendable () -> Int = {
                let names = MappExportTests.files(in: folder)
                if names.contains(where: { $0.hasSuffix(".csv") && !before.contains($0) }) { return 4 }
                // A `.part` an earlier killed run left does not count: this run removes it first.
                if let part = names.first(where: { $0.hasSuffix(".csv.part") && !before.contains($0) }) {
                    let size = (try? FileManager.default.attributesOfItem(atPath: folder.appendingPathComponent(part).path)[.size] as? Int) ?? 0
                    return size >= half ? 3 : 2
                }
                return Self.count("Accepted publickey", in: logPath) > accepted ? 1 : 0
            }
            let killed = try await runAndKill(connection: "mapp-test", schedules: ws.path + "/s", db: ws.db, environment: [:],
                                              measure: measure, killAt: threshold)
            reliabilityLog("mapp export: kill at milestone \(threshold): \(killed); folder \(Self.folderContents(server))")
            kills.append(killed)
        }
        let final = try await onOwnThread { try BuiltProducts.ferry(["run", "mapp-test", "--now", "--schedules", ws.path + "/s", "--db", ws.db]) }
        #expect(final.status == 0, "\(final.stdout) \(final.stderr)")

        let names = Self.folderContents(server)
        #expect(names.allSatisfy { $0.hasSuffix(".csv") }, "only published files are left: \(names)")
        #expect((1...(Self.kills + 1)).contains(names.count), "\(names)")
        for name in names {
            // Each file a run published is whole: byte for byte the clean run's file.
            #expect(try Data(contentsOf: folder.appendingPathComponent(name)) == cleanBytes, "\(name) differs from the clean run's file")
        }
        try await Self.expectStatuses(kills, connection: "mapp-test", schedules: ws.path + "/s", db: ws.db)
    }

    static func count(_ needle: String, in path: String) -> Int {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").components(separatedBy: needle).count - 1
    }
}
