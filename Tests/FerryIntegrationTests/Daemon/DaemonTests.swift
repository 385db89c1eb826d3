import FerryCore
import Foundation
import Testing

/// `ferry next` and `ferry daemon` end to end through the built binary, on a scaled clock where needed.
@Suite struct DaemonTests {
    static let hourly = """
    name: hourly
    timezone: America/New_York
    schedule:
      cron: "0 * * * *"
      catch_up: once
    destination: { type: sendgrid, api_key: "${SENDGRID_API_KEY}" }
    goals:
      - export: { segments: [vip], email: email }
    """

    func workspace(_ files: [String: String]) -> Workspace {
        let ws = Workspace()
        ws.write("s/segments.yaml", "segments:\n  - name: vip\n")
        for (name, text) in files { ws.write("s/\(name)", text) }
        return ws
    }

    let env = ["SENDGRID_API_KEY": "SG.test-only"]

    @Test func nextPrintsFireTimesInTheConnectionsOffsetAcrossDST() throws {
        let ws = Workspace()
        let schedules = ws.copyExampleSchedules()
        let local = try BuiltProducts.ferry(["next", "sailthru-nightly", "--from", "2026-03-05T00:00:00Z", "--count", "4", "--schedules", schedules],
                                            environment: exampleEnvironment)
        #expect(local.status == 0, "\(local.stderr)")
        #expect(local.stdout == "2026-03-05T02:30:00-05:00\n2026-03-06T02:30:00-05:00\n2026-03-09T02:30:00-04:00\n2026-03-10T02:30:00-04:00\n")
        let utc = try BuiltProducts.ferry(["next", "mapp-weekly", "--from", "2026-04-01T00:00:00Z", "--count", "2", "--utc", "--schedules", schedules],
                                          environment: exampleEnvironment)
        // Lord Howe leaves DST (+11 → +10:30) on 2026-04-05: 02:30 local Monday is 15:30 then 16:00 UTC the Sunday before.
        #expect(utc.stdout == "2026-04-05T16:00:00Z\n2026-04-12T16:00:00Z\n")
    }

    @Test func nextNeedsOnlyNameZoneAndScheduleAndWarnsAboutTheRest() throws {
        let ws = workspace(["h.yaml": Self.hourly.replacingOccurrences(of: "segments: [vip]", with: "segments: [nope]")])
        let result = try BuiltProducts.ferry(["next", "hourly", "--from", "2026-11-01T04:30:00Z", "--count", "3", "--schedules", ws.path + "/s"])
        #expect(result.status == 0)
        // 2026-11-01 is New York's fall-back day: 01:00 fires once (first occurrence), then 02:00 EST.
        #expect(result.stdout == "2026-11-01T01:00:00-04:00\n2026-11-01T02:00:00-05:00\n2026-11-01T03:00:00-05:00\n")
        #expect(result.stderr.contains("warning: \(ws.path)/s/h.yaml:8:26: unknown segment 'nope'"))
        #expect(result.stderr.contains("SENDGRID_API_KEY is not set"))
    }

    @Test func nextForAOnceInThePastPrintsNothingAndBadSchedulesExit2() throws {
        let once = Self.hourly.replacingOccurrences(of: "cron: \"0 * * * *\"", with: "once: \"2020-01-01T09:00\"")
        let bad = Self.hourly.replacingOccurrences(of: "name: hourly", with: "name: bad").replacingOccurrences(of: "0 * * * *", with: "61 * * * *")
        let ws = workspace(["once.yaml": once, "bad.yaml": bad])
        let past = try BuiltProducts.ferry(["next", "hourly", "--schedules", ws.path + "/s"], environment: env)
        #expect(past.status == 0 && past.stdout.isEmpty)
        let broken = try BuiltProducts.ferry(["next", "bad", "--schedules", ws.path + "/s"], environment: env)
        #expect(broken.status == 2)
        #expect(broken.stderr == "ferry: \(ws.path)/s/bad.yaml:4:9: schedule.cron '61 * * * *': minute field: 61 is outside 0-59\n")
        let unknown = try BuiltProducts.ferry(["next", "nope", "--schedules", ws.path + "/s"], environment: env)
        #expect(unknown.status == 2)
    }

    @Test func daemonFiresEachSlotAtItsInstantAndASecondDaemonIsRefused() throws {
        // Every half hour across New York's spring gap: 02:00 and 02:30 shift onto 03:00 and 03:30 EDT, fired once each.
        let ws = workspace(["h.yaml": Self.hourly.replacingOccurrences(of: "0 * * * *", with: "*/30 * * * *")])
        let args = ["--schedules", ws.path + "/s", "--db", ws.db, "--clock-start", "2026-03-08T06:59:00Z", "--clock-scale", "600"]
        let daemon = try DaemonProcess(arguments: args, environment: env, logPath: ws.path + "/d1.log")
        #expect(daemon.waitForLog("scheduled=2026-03-08T08:00:00.000Z"), "\(daemon.log)")

        let second = try BuiltProducts.ferry(["daemon"] + args, environment: env)
        #expect(second.status == 1)
        #expect(second.stderr.contains("another ferry daemon is already running on this store (pid \(daemon.process.processIdentifier)"))
        let status = try BuiltProducts.ferry(["status", "--db", ws.db, "--schedules", ws.path + "/s"], environment: env)
        #expect(status.stdout.hasPrefix("daemon: running (pid \(daemon.process.processIdentifier), heartbeat "), "\(status.stdout)")
        #expect(status.stdout.contains("failing:"))

        daemon.signal(SIGTERM)
        #expect(daemon.waitForExit() == 0)
        #expect(daemon.log.contains("daemon stopped"))

        let runs = try RunLedger(database: try AppDatabase.open(path: ws.db)).runs(limit: 100).reversed()
        let instants = runs.compactMap(\.scheduledAt).map { RFC3339.format($0, in: "America/New_York") }
        let next = try BuiltProducts.ferry(["next", "hourly", "--from", "2026-03-08T06:59:00Z", "--count", "3", "--schedules", ws.path + "/s"], environment: env)
        #expect(next.stdout == "2026-03-08T03:00:00-04:00\n2026-03-08T03:30:00-04:00\n2026-03-08T04:00:00-04:00\n")
        // Every recorded fire is one of `ferry next`'s instants, once each, in order (a stalled machine may fold some).
        let expected = next.stdout.split(separator: "\n").map(String.init)
        #expect(Array(instants.prefix(3)).allSatisfy(expected.contains), "\(instants)")
        #expect(instants.contains("2026-03-08T04:00:00-04:00"))
        #expect(instants == instants.sorted() && Set(instants).count == instants.count)
        #expect(runs.allSatisfy { $0.trigger == .schedule })
    }

    @Test func catchUpAfterDowntimeRunsOnceAndDeadRunsAreMarkedInterrupted() throws {
        let ws = workspace(["h.yaml": Self.hourly])
        let base = ["--schedules", ws.path + "/s", "--db", ws.db, "--clock-scale", "600"]
        let first = try DaemonProcess(arguments: base + ["--clock-start", "2026-06-01T05:59:30Z"], environment: env, logPath: ws.path + "/a.log")
        #expect(first.waitForLog("scheduled=2026-06-01T06:00:00.000Z"))
        first.signal(SIGTERM)
        #expect(first.waitForExit() == 0)

        // A run left `running` by a process that no longer exists.
        let ledger = RunLedger(database: try AppDatabase.open(path: ws.db))
        let orphan = try ledger.start(connection: "hourly", goal: "export vip", trigger: .manual, scheduledAt: nil, pid: 999_999)

        // Five hours later: the missed 07:00…11:00 fires become one catch-up run.
        let second = try DaemonProcess(arguments: base + ["--clock-start", "2026-06-01T11:30:00Z"], environment: env, logPath: ws.path + "/b.log")
        #expect(second.waitForLog("trigger=catch-up"), "\(second.log)")
        #expect(second.waitForLog("scheduled=2026-06-01T12:00:00.000Z"))
        second.signal(SIGINT)
        #expect(second.waitForExit() == 0)
        #expect(second.log.contains("earlier fire(s) folded into one run"))

        let runs = try ledger.runs(limit: 100)
        let catchUps = runs.filter { $0.trigger == .catchUp }
        #expect(catchUps.count == 1)
        #expect(catchUps.first.map { ISO8601.format($0.scheduledAt!) } == "2026-06-01T11:00:00.000Z")
        #expect(try ledger.run(id: orphan)?.status == .interrupted)
    }

    @Test func hangupReloadsAndAnInvalidFileKeepsTheOldConfiguration() throws {
        let ws = workspace(["h.yaml": Self.hourly])
        let args = ["--schedules", ws.path + "/s", "--db", ws.db, "--clock-start", "2026-06-01T05:59:00Z", "--clock-scale", "600"]
        let daemon = try DaemonProcess(arguments: args, environment: env, logPath: ws.path + "/d.log")
        #expect(daemon.waitForLog("daemon started"))

        ws.write("s/half.yaml", Self.hourly.replacingOccurrences(of: "name: hourly", with: "name: half-hourly")
            .replacingOccurrences(of: "0 * * * *", with: "30 * * * *"))
        daemon.signal(SIGHUP)
        #expect(daemon.waitForLog("reloaded"))
        #expect(daemon.waitForLog("connection=half-hourly scheduled="), "\(daemon.log)")

        let broken = ws.write("s/broken.yaml", "name: broken\ntimezone: Nowhere/City\n")
        daemon.signal(SIGHUP)
        #expect(daemon.waitForLog("reload refused: keeping the previous configuration (2 connections)"))
        #expect(daemon.log.contains("\(broken):2:11: unknown time zone 'Nowhere/City'"))
        #expect(daemon.process.isRunning)
        daemon.signal(SIGTERM)
        #expect(daemon.waitForExit() == 0)
    }

    @Test func sigtermLetsARunFinishWithinTheGraceAndMarksItInterruptedAfter() throws {
        // Every request to this SendGrid sandbox takes 4 s, so a run outlives a 1 s grace period.
        let sandbox = try SendGridSandboxServer.start(["--latency", "4000"])
        defer { sandbox.stop() }
        let ws = workspace(["h.yaml": Self.hourly])
        let profiles = ws.write("p.jsonl", "{\"id\": \"p1\", \"email\": \"a@example.com\", \"segments\": [\"vip\"]}\n")
        #expect(try BuiltProducts.ferry(["profiles", "load", profiles, "--schedules", ws.path + "/s", "--db", ws.db]).status == 0)
        let env = ["SENDGRID_API_KEY": SendGridSandboxServer.apiKey]
        ws.write("s/h.yaml", Self.hourly.replacingOccurrences(of: "api_key: \"${SENDGRID_API_KEY}\" }",
                                                               with: "api_key: \"${SENDGRID_API_KEY}\", base_url: \"\(sandbox.baseURL)\" }"))
        let daemon = try DaemonProcess(arguments: ["--schedules", ws.path + "/s", "--db", ws.db, "--grace", "1s",
                                                   "--clock-start", "2026-06-01T05:59:58Z", "--clock-scale", "1"],
                                       environment: env, logPath: ws.path + "/d.log")
        #expect(daemon.waitForLog("run started"), "\(daemon.log)")
        daemon.signal(SIGTERM)
        #expect(daemon.waitForExit() == 0, "\(daemon.log)")
        let runs = try RunLedger(database: try AppDatabase.open(path: ws.db)).runs()
        #expect(runs.count == 1)
        #expect(runs.first?.status == .interrupted, "\(runs)")
        #expect(runs.first?.trigger == .schedule)
    }

    @Test func aFireWhileTheLastRunStillRunsIsRecordedSkippedOverlap() throws {
        // Requests take 3 s and the clock runs 60× (a minute a second): the every-minute fires overlap the run.
        let sandbox = try SendGridSandboxServer.start(["--latency", "3000"])
        defer { sandbox.stop() }
        let everyMinute = Self.hourly.replacingOccurrences(of: "0 * * * *", with: "* * * * *")
            .replacingOccurrences(of: "api_key: \"${SENDGRID_API_KEY}\" }", with: "api_key: \"${SENDGRID_API_KEY}\", base_url: \"\(sandbox.baseURL)\" }")
        let ws = workspace(["h.yaml": everyMinute])
        let profiles = ws.write("p.jsonl", "{\"id\": \"p1\", \"email\": \"a@example.com\", \"segments\": [\"vip\"]}\n")
        #expect(try BuiltProducts.ferry(["profiles", "load", profiles, "--schedules", ws.path + "/s", "--db", ws.db]).status == 0)
        let daemon = try DaemonProcess(arguments: ["--schedules", ws.path + "/s", "--db", ws.db, "--grace", "20s",
                                                   "--clock-start", "2026-06-01T05:59:59Z", "--clock-scale", "60"],
                                       environment: ["SENDGRID_API_KEY": SendGridSandboxServer.apiKey], logPath: ws.path + "/d.log")
        #expect(daemon.waitForLog("skipped (overlap)"), "\(daemon.log)")
        daemon.signal(SIGTERM)
        #expect(daemon.waitForExit(timeout: 60) == 0)
        let runs = try RunLedger(database: try AppDatabase.open(path: ws.db)).runs(limit: 100)
        let skipped = runs.filter { $0.status == .skipped }
        #expect(!skipped.isEmpty)
        #expect(skipped.allSatisfy { $0.error == "skipped (overlap): the previous run is still running" && $0.trigger == .schedule })
        #expect(runs.filter { $0.status != .skipped }.count >= 1)
    }
}
