import FerryCore
import FerryTestSupport
import Foundation
import Testing

/// DESIGN.md "Reliability rules" under a hostile platform: the sandboxes fail 20 % of requests with a 500,
/// drop 10 % of connections mid-body and start 429 bursts (the platform's own reset headers). Five runs, with
/// profiles joining and leaving between the first ones, end in exactly the state a fault-free sandbox reaches
/// through the same runs, and every run's counts add up: each eligible profile is exported, removed, failed
/// or skipped, once.
@Suite(.serialized, .timeLimit(.minutes(6))) struct FaultSoakTests {
    static let runs = 5
    /// The faults; `throttle` is the chance a request starts a one-second 429 burst (higher where a run makes few requests).
    static func faults(throttle: Double) -> [String] {
        ["--fail-rate", "0.2", "--drop-connections", "0.1", "--throttle-rate", String(throttle)]
    }

    /// What changes before run `n` (0-based): some profiles leave the segment, new ones arrive.
    static func changes(before run: Int, count: Int) -> String? {
        switch run {
        case 1: (0..<(count / 10)).map { #"{"id": "u\#($0)", "country": "JP"}"# }.joined(separator: "\n") + "\n"
            + ExportHarness.profiles(count / 10, start: count)
        case 2: ExportHarness.profiles(count / 20, start: 0) + ExportHarness.profiles(count / 20, start: count + count / 10)
        default: nil
        }
    }

    /// Sailthru export: exported + removed + failed + skipped = the segment's members + the leavers ferry had put on the list.
    @Test(arguments: ["job", "user"])
    func aSailthruExportUnderFaultsConvergesAndItsCountsAddUp(method: String) async throws {
        let count = method == "job" ? 300 : 40
        let seed = ReliabilitySeed.value(default: method == "job" ? 2001 : 2002)
        reliabilityLog("fault soak sailthru \(method): sandbox seed \(seed)")
        let reference = try await ExportHarness.make()
        let h = try await ExportHarness.make(Self.faults(throttle: method == "job" ? 0.1 : 0.02) + ["--seed", String(seed)])
        for harness in [reference, h] {
            harness.connection(method: method)
            try await harness.load(ExportHarness.profiles(count))
        }
        var statuses: [String] = []
        for run in 0..<Self.runs {
            if let change = Self.changes(before: run, count: count) {
                try await reference.load(change)
                try await h.load(change)
            }
            #expect(try await reference.run().status == 0)
            let members = try CrashSafetyTests.rows(h.ws.db, "SELECT count(*) FROM segment_member WHERE segment = 'newsletter'")
            let ledger = Set(try CrashSafetyTests.rows(h.ws.db, "SELECT identifier FROM export_membership"))
            let leavers = ledger.subtracting(try CrashSafetyTests.rows(h.ws.db, """
                SELECT i.value FROM identifier i JOIN segment_member s ON s.profile_pk = i.profile_pk
                WHERE s.segment = 'newsletter' AND i.property = 'email'
                """))
            let result = try await h.run()
            let record = try await h.lastRun()
            let status = record["status"] as? String ?? "?"
            statuses.append(status)
            let counts = record["counts"] as? [String: Int] ?? [:]
            // Membership is refreshed by the run itself, so count the members the run saw afterwards.
            let seen = Int(try CrashSafetyTests.rows(h.ws.db, "SELECT count(*) FROM segment_member WHERE segment = 'newsletter'").first ?? "") ?? -1
            let handled = (counts["exported"] ?? 0) + (counts["removed"] ?? 0) + (counts["failed"] ?? 0) + (counts["skipped"] ?? 0)
            #expect(handled == seen + leavers.count,
                    "run \(run + 1) (\(status)): \(counts) for \(seen) members (\(members) before) and \(leavers.count) leavers: \(result.stdout)")
            // Rows that failed every retry make the run partial, never succeeded (nor failed as a whole).
            #expect(status == ((counts["failed"] ?? 0) > 0 ? "partial" : "succeeded"), "run \(run + 1): \(result.stdout) \(result.stderr)")
        }
        let counters = try #require(SandboxCounters.read(port: h.server.port))
        reliabilityLog("fault soak sailthru \(method): statuses \(statuses); \(counters.requests) requests, "
                       + "\(counters.serverErrors) answered 500, \(counters.throttled) answered 429 in \(counters.bursts) bursts")
        #expect(try await SailthruExportFaultTests.snapshot(h) == (try await SailthruExportFaultTests.snapshot(reference)))
        #expect(try await h.members() == (try await reference.members()))
        // Nothing lost: whatever the last run could not send is in the outbox for the next one, and nothing else.
        let lastErrors = try await h.lastRowErrors()
        let failedEmails = Set(lastErrors.compactMap { $0.firstMatch(of: /\(([^)]+@example\.com)\)/).map { String($0.1) } })
        #expect(Set(try CrashSafetyTests.rows(h.ws.db, "SELECT identifier FROM export_outbox")) == failedEmails, "\(lastErrors)")
        #expect(counters.bursts > 0, "no 429 burst was injected")
    }

    /// SendGrid export: exported + failed + skipped = read (the profiles the plan covered).
    @Test func aSendGridExportUnderFaultsConvergesAndItsCountsAddUp() async throws {
        let seed = ReliabilitySeed.value(default: 2003)
        reliabilityLog("fault soak sendgrid: sandbox seed \(seed)")
        let profiles = CrashSafetyTests.sendGridProfiles(400)
        let reference = try await onOwnThread { try SendGridSandboxServer.start() }
        defer { reference.stop() }
        let server = try await onOwnThread { try SendGridSandboxServer.start(Self.faults(throttle: 0.1) + ["--seed", String(seed)]) }
        defer { server.stop() }
        let referenceWS = try await onOwnThread { try SendGridExportTests.workspace(reference, profiles: profiles) }
        let ws = try await onOwnThread { try SendGridExportTests.workspace(server, profiles: profiles) }
        var statuses: [String] = []
        for run in 0..<Self.runs {
            let change: [String]? = switch run {
            // Some leave both segments, some arrive, some change city.
            case 1: (0..<30).map { #"{"id":"g\#($0)","lifetime_spend":1,"newsletter":"no"}"# } + CrashSafetyTests.sendGridProfiles(430).suffix(30)
            case 2: (100..<120).map { #"{"id":"g\#($0)","city":"Elsewhere"}"# }
            default: nil
            }
            if let change {
                try await onOwnThread { try SendGridExportTests.load(referenceWS, change); try SendGridExportTests.load(ws, change) }
            }
            #expect(try await onOwnThread { try SendGridExportTests.run(referenceWS, reference) }.status == 0)
            let result = try await onOwnThread { try SendGridExportTests.run(ws, server) }
            let record = try #require(try await historyRuns(connection: "sg", schedules: ws.path + "/s", db: ws.db).last)
            let status = record["status"] as? String ?? "?"
            statuses.append(status)
            let counts = record["counts"] as? [String: Int] ?? [:]
            let handled = (counts["exported"] ?? 0) + (counts["failed"] ?? 0) + (counts["skipped"] ?? 0)
            #expect(handled == counts["read"] ?? -1, "run \(run + 1) (\(status)): \(counts): \(result.stdout)")
            #expect(status == ((counts["failed"] ?? 0) > 0 ? "partial" : "succeeded"), "run \(run + 1): \(result.stdout) \(result.stderr)")
        }
        let counters = try #require(SandboxCounters.read(port: server.port))
        reliabilityLog("fault soak sendgrid: statuses \(statuses); \(counters.requests) requests, "
                       + "\(counters.serverErrors) answered 500, \(counters.throttled) answered 429 in \(counters.bursts) bursts")
        #expect(try CrashSafetyTests.sendGridState(server) == (try CrashSafetyTests.sendGridState(reference)))
        #expect(try server.contacts().count == (try reference.contacts().count))
        let last = try #require(try await historyRuns(connection: "sg", schedules: ws.path + "/s", db: ws.db).last)
        let lastFailed = (last["counts"] as? [String: Int])?["failed"] ?? 0
        #expect(try CrashSafetyTests.rows(ws.db, "SELECT count(*) FROM sendgrid_outbox") == ["\(lastFailed)"])
        #expect(counters.bursts > 0, "no 429 burst was injected")
    }
}
