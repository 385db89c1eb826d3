import Foundation
import Testing
import FerryCore

/// End-to-end checks of the foundation commands through the built `ferry` binary.
@Suite struct FoundationCommandTests {
    @Test func validateAcceptsTheExampleSchedules() throws {
        let ws = Workspace()
        let schedules = ws.copyExampleSchedules()
        let result = try BuiltProducts.ferry(["validate", "--schedules", schedules], environment: exampleEnvironment)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "ok: 3 connections, 4 segments\n")
    }

    @Test func validateReportsEveryProblemAsFileLineColumnAndExits2() throws {
        let ws = Workspace()
        ws.write("s/segments.yaml", "segments:\n  - name: vip\n")
        let bad = ws.write("s/bad.yaml", """
        name: bad
        timezone: Mars/Olympus
        schedule:
          at: ["25:00"]
          weekdays: [mon]
          monthdays: [1]
        destination:
          type: sailthru
          api_key: ${NOT_SET_ANYWHERE}
          api_secret: plain-text-secret
        goals:
          - export: { segment: vipp, match: { email: email }, lists: [A] }
        """)
        let result = try BuiltProducts.ferry(["validate", "--schedules", ws.path + "/s"])
        #expect(result.status == 2)
        #expect(result.stdout == """
        \(bad):2:11: unknown time zone 'Mars/Olympus': use an IANA name like America/New_York
        \(bad):4:8: schedule.at[0] '25:00' is not a time: use HH:MM, 00:00 to 23:59
        \(bad):6:3: schedule.weekdays and schedule.monthdays are exclusive: use one
        \(bad):9:12: destination.api_key refers to ${NOT_SET_ANYWHERE}, but the environment variable NOT_SET_ANYWHERE is not set
        \(bad):10:15: destination.api_secret is a secret: write it as ${VARIABLE} and set the variable in the environment, never in the file
        \(bad):12:24: unknown segment 'vipp': define it in segments.yaml; did you mean 'vip'?

        """)
        #expect(result.stderr == "ferry: 6 problems found\n")
        #expect(!result.stdout.contains("plain-text-secret"))
    }

    @Test func profilesLoadShowAndSegmentsWorkOnTheFixture() throws {
        let ws = Workspace()
        let schedules = ws.copyExampleSchedules()
        let fixture = BuiltProducts.packageRoot.appendingPathComponent("Fixtures/profiles.jsonl").path
        let load = try BuiltProducts.ferry(["profiles", "load", fixture, "--schedules", schedules, "--db", ws.db])
        #expect(load.status == 0, "\(load.stderr)")
        #expect(load.stdout == "loaded 300, updated 0, rejected 0\n")

        let again = try BuiltProducts.ferry(["profiles", "load", fixture, "--schedules", schedules, "--db", ws.db])
        #expect(again.stdout == "loaded 0, updated 0, rejected 0, unchanged 300\n")

        let show = try BuiltProducts.ferry(["profiles", "show", "omar.nguyen.3@example.com", "--schedules", schedules, "--db", ws.db])
        #expect(show.status == 0)
        #expect(show.stdout.hasPrefix("profile p0000003\n  PROPERTY         VALUES\n  city             Berlin\n"))
        #expect(show.stdout.contains("objectives: email-marketing, analytics\n"))
        #expect(show.stdout.contains("segments:   lapsed (since"))

        let json = try BuiltProducts.ferry(["profiles", "show", "p0000003", "--json", "--db", ws.db])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(object["id"] as? String == "p0000003")
        #expect((object["properties"] as? [String: Any])?["lifetime_spend"] as? [Double] == [484.83])

        let missing = try BuiltProducts.ferry(["profiles", "show", "nobody@example.com", "--db", ws.db])
        #expect(missing.status == 2)
        #expect(missing.stderr == "ferry: no profile with id or identifier 'nobody@example.com'\n")

        let segments = try BuiltProducts.ferry(["segments", "--schedules", schedules, "--db", ws.db])
        #expect(segments.status == 0)
        #expect(segments.stdout.hasPrefix("SEGMENT        SIZE  RULE\nnewsletter     238   rule\nvip            68    rule\n"))

        let members = try BuiltProducts.ferry(["segments", "vip", "--limit", "2", "--schedules", schedules, "--db", ws.db])
        #expect(members.stdout.hasPrefix("segment vip: 68 members\nPROFILE   EMAIL                       ENTERED\np0000003  omar.nguyen.3@example.com"))
    }

    @Test func profilesLoadReportsBadRowsByLineKeepsGoodOnesAndExits2() throws {
        let ws = Workspace()
        ws.write("s/segments.yaml", "segments:\n  - name: vip\n")
        let file = ws.write("in.csv", "id,email,city\np1,a@x.com,Oslo\np2,b@x.com\np3,c@x.com,\"Rome\n")
        let result = try BuiltProducts.ferry(["profiles", "load", file, "--schedules", ws.path + "/s", "--db", ws.db])
        #expect(result.status == 2)
        #expect(result.stdout == "loaded 1, updated 0, rejected 2\n")
        #expect(result.stderr == """
        ferry: \(file):3: expected 3 fields (as in the header), found 2
        ferry: \(file):4: a quoted field that starts here is never closed

        """)
        let show = try BuiltProducts.ferry(["profiles", "show", "a@x.com", "--db", ws.db])
        #expect(show.stdout.contains("Oslo"))
    }

    @Test func profilesLoadOfAMissingFileIsBadInput() throws {
        let ws = Workspace()
        ws.write("s/segments.yaml", "segments: []\n")
        let result = try BuiltProducts.ferry(["profiles", "load", ws.path + "/nope.jsonl", "--schedules", ws.path + "/s", "--db", ws.db])
        #expect(result.status == 2)
        #expect(result.stderr == "ferry: \(ws.path)/nope.jsonl: no such file\n")
    }

    @Test func historyShowsRunsWrittenThroughTheLedgerAPI() async throws {
        let ws = Workspace()
        let ledger = RunLedger(database: try AppDatabase.open(path: ws.db))
        let start = ISO8601.parse("2026-11-20T07:30:00Z")!
        let id = try ledger.start(connection: "sailthru-nightly", goal: "export newsletter", trigger: .schedule,
                                  scheduledAt: start, startedAt: start)
        let recorder = RunRecorder(ledger: ledger, runID: id)
        await recorder.count { $0.exported = 12; $0.skipped = 3 }
        await recorder.touch(TouchedProfile(profileID: "p1", identifier: "a@x.com", action: "exported"))
        await recorder.fail(RunRowError(location: "profile p9", reason: "invalid email"))
        try await recorder.flush()
        try ledger.finish(runID: id, status: .partial, error: nil, endedAt: start.addingTimeInterval(4.25))

        let table = try BuiltProducts.ferry(["history", "--db", ws.db, "--schedules", ws.path])
        #expect(table.status == 0)
        #expect(table.stdout == """
        RUN  CONNECTION        GOAL               TRIGGER   SCHEDULED             STARTED               DURATION  STATUS   COUNTS
        1    sailthru-nightly  export newsletter  schedule  2026-11-20 07:30:00Z  2026-11-20 07:30:00Z  4.2s      partial  exported 12 · skipped 3 · failed 1

        """)

        let detail = try BuiltProducts.ferry(["history", "show", "1", "--db", ws.db])
        #expect(detail.stdout.contains("status:    partial\n"))
        #expect(detail.stdout.contains("  profile p9: invalid email\n"))
        #expect(detail.stdout.contains("  p1       a@x.com     exported\n"))

        let json = try BuiltProducts.ferry(["history", "--json", "--db", ws.db, "--schedules", ws.path])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let run = try #require((object["runs"] as? [[String: Any]])?.first)
        #expect(run["status"] as? String == "partial")
        #expect((run["counts"] as? [String: Int])?["exported"] == 12)

        let none = try BuiltProducts.ferry(["history", "show", "99", "--db", ws.db])
        #expect(none.status == 2)
    }

    @Test func historyShowsEachEnabledConnectionsNextRunOnTop() throws {
        let ws = Workspace()
        let schedules = ws.copyExampleSchedules()
        let table = try BuiltProducts.ferry(["history", "--db", ws.db, "--schedules", schedules], environment: exampleEnvironment)
        let lines = table.stdout.split(separator: "\n")
        #expect(lines.count == 4, "\(table.stdout)")
        #expect(lines.dropFirst().allSatisfy { $0.hasPrefix("—") && $0.contains("scheduled") })
        #expect(Set(lines.dropFirst().map { String($0.split(separator: " ")[1]) }) == ["mapp-weekly", "sailthru-nightly", "sendgrid-daily"])
        let json = try BuiltProducts.ferry(["history", "sendgrid-daily", "--json", "--db", ws.db, "--schedules", schedules], environment: exampleEnvironment)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect((object["upcoming"] as? [[String: Any]])?.map { $0["connection"] as? String } == ["sendgrid-daily"])
    }

    @Test func unknownOptionsAreBadInputWithExitCode2() throws {
        let result = try BuiltProducts.ferry(["history", "--bogus"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("Unknown option '--bogus'"))
    }
}

/// `ferry backup` through the built binary.
@Suite struct BackupCommandTests {
    @Test func backupCopiesTheStoreAndRefusesToOverwrite() throws {
        let ws = Workspace()
        ws.write("s/segments.yaml", "segments: []\n")
        let file = ws.write("p.jsonl", "{\"id\": \"p1\", \"email\": \"a@x.com\"}\n")
        #expect(try BuiltProducts.ferry(["profiles", "load", file, "--schedules", ws.path + "/s", "--db", ws.db]).status == 0)
        let copy = ws.path + "/copy.sqlite"
        let backup = try BuiltProducts.ferry(["backup", copy, "--db", ws.db])
        #expect(backup.status == 0, "\(backup.stderr)")
        let show = try BuiltProducts.ferry(["profiles", "show", "a@x.com", "--db", copy])
        #expect(show.stdout.hasPrefix("profile p1\n"))
        let again = try BuiltProducts.ferry(["backup", copy, "--db", ws.db])
        #expect(again.status == 2)
        #expect(again.stderr == "ferry: \(copy) already exists; choose a new file name\n")
    }
}
