import Foundation
import Testing

/// The Sailthru export goal end to end: the built `ferry` against `ferry-sandbox sailthru`.
@Suite struct SailthruExportGoalTests {
    /// Runs of spaces as one (plan columns are padded).
    static func squeezed(_ text: String) -> String {
        text.replacingOccurrences(of: " {2,}", with: " ", options: .regularExpression)
    }

    /// Three exportable profiles, one without email, one without consent.
    static let mixed = ExportHarness.profiles(3) + """
    {"id": "noid", "first_name": "No Email", "country": "US", "objectives": ["email-marketing"]}
    {"id": "nocon", "email": "nocon@example.com", "country": "US", "objectives": ["ads"]}

    """

    @Test(arguments: ["job", "user"])
    func exportsTheSegmentCreatesTheListAndSetsVars(method: String) async throws {
        let h = try await ExportHarness.make()
        h.connection(method: method)
        try await h.load(Self.mixed)
        let result = try await h.run()
        #expect(result.status == 0, "\(result.stdout) \(result.stderr)")
        #expect(result.stdout.contains("succeeded — created 3 · exported 3 · skipped 2"), "\(result.stdout)")
        #expect(try await h.listNames().contains(ExportHarness.list))
        #expect(try await h.members() == ExportHarness.emails(0..<3))
        let user = try #require(try await h.users()["u1@example.com"])
        let vars = user["vars"] as? [String: Any] ?? [:]
        #expect(vars["first_name"] as? String == "Name1")
        #expect(vars["last_order_time"] as? Int == 1_705_314_600)
        #expect(vars["interests"] as? [String] == ["golf", "wine"])
        #expect(vars["ferry_segments"] as? [String] == ["newsletter"])
        #expect(vars["consents"] as? [String] == ["email-marketing"])
        #expect(vars["ferry_id"] as? String == "u1")
        #expect(vars["source"] as? String == "ferry")
        #expect(try await h.users()["nocon@example.com"] == nil)

        // A second run updates the same users, and the run remembers whom it touched.
        let again = try await h.run()
        #expect(again.stdout.contains("succeeded — updated 3 · exported 3 · skipped 2"), "\(again.stdout)")
        let touched = try await h.lastRun()["touched"] as? [[String: Any]] ?? []
        #expect(touched.count == 3)
        #expect(touched.allSatisfy { $0["action"] as? String == "updated" })
    }

    @Test func profilesLeavingTheSegmentAreRemovedFromTheList() async throws {
        let h = try await ExportHarness.make()
        try await h.load(ExportHarness.profiles(4))
        #expect(try await h.run().status == 0)
        #expect(try await h.members() == ExportHarness.emails(0..<4))
        // u1 moves away (leaves the segment); u2 withdraws consent; u3 loses its email.
        try await h.load("""
        {"id": "u1", "country": "JP"}
        {"id": "u2", "objectives": ["ads"]}

        """)
        let result = try await h.run()
        #expect(result.status == 0, "\(result.stdout) \(result.stderr)")
        #expect(result.stdout.contains("removed 2"), "\(result.stdout)")
        #expect(try await h.members() == ExportHarness.emails(0..<4).subtracting(["u1@example.com", "u2@example.com"]))
        // The users stay in Sailthru, only off the list.
        #expect(try await h.users()["u1@example.com"] != nil)
    }

    @Test func theCircuitBreakerRefusesMassRemovalUntilAllowed() async throws {
        let h = try await ExportHarness.make()
        try await h.load(ExportHarness.profiles(1200))
        let first = try await h.run()
        #expect(first.status == 0, "\(first.stdout) \(first.stderr)")
        #expect(try await h.members().count == 1200)

        h.segments(rule: "{ property: country, eq: XX }")
        let refused = try await h.run()
        #expect(refused.status == 1)
        #expect(refused.stdout.contains("failed"), "\(refused.stdout)")
        #expect(refused.stdout.contains("refusing to remove 1200 of the 1200 profiles ferry put on list 'Ferry Newsletter'"), "\(refused.stdout)")
        #expect(refused.stdout.contains("--allow-mass-removal"))
        #expect(try await h.members().count == 1200)

        let allowed = try await h.run(["--allow-mass-removal"])
        #expect(allowed.status == 0, "\(allowed.stdout) \(allowed.stderr)")
        #expect(allowed.stdout.contains("removed 1200"), "\(allowed.stdout)")
        #expect(try await h.members().isEmpty)
    }

    @Test func createUsersFalseSendsOnlyUsersSailthruKnows() async throws {
        let h = try await ExportHarness.make(seeded: true)
        h.connection(method: "user", createUsers: false)
        try await h.load(ExportHarness.profiles(2) + """
        {"id": "jane", "email": "jane.doe@example.com", "first_name": "Jane", "country": "US", "objectives": ["email-marketing"]}

        """)
        let result = try await h.run()
        #expect(result.status == 0, "\(result.stdout) \(result.stderr)")
        #expect(result.stdout.contains("created 1 · exported 1 · skipped 2"), "\(result.stdout)")
        #expect(try await h.members() == ["jane.doe@example.com"])
        #expect(try await h.users()["u0@example.com"] == nil)
        // The answers are remembered: the second run asks nothing and still skips the unknown ones.
        let again = try await h.run()
        #expect(again.stdout.contains("updated 1 · exported 1 · skipped 2"), "\(again.stdout)")
    }

    @Test func existingProfilesFalseRecordsABaselineAndSendsOnlyNewcomers() async throws {
        let h = try await ExportHarness.make()
        h.connection(existingProfiles: false)
        try await h.load(ExportHarness.profiles(3))
        let preview = try await h.run(["--dry-run"])
        #expect(preview.stdout.contains("first run: 3 current members of 'newsletter' would become the baseline"), "\(preview.stdout)")
        let first = try await h.run()
        #expect(first.stdout.contains("skipped 3"), "\(first.stdout)")
        #expect(first.status == 0, "\(first.stdout) \(first.stderr)")
        #expect(try await h.members().isEmpty)
        #expect(try await h.users().isEmpty)

        try await h.load(ExportHarness.profiles(2, start: 3))
        let second = try await h.run()
        #expect(second.status == 0, "\(second.stdout) \(second.stderr)")
        #expect(second.stdout.contains("created 2 · exported 2 · skipped 3"), "\(second.stdout)")
        #expect(try await h.members() == ExportHarness.emails(3..<5))
    }

    @Test(arguments: ["job", "user"])
    func anInvalidEmailFailsOnlyThatProfile(method: String) async throws {
        let h = try await ExportHarness.make()
        h.connection(method: method)
        try await h.load(ExportHarness.profiles(3) + """
        {"id": "bad", "email": "not-an-email", "country": "US", "objectives": ["email-marketing"]}

        """)
        let result = try await h.run()
        #expect(result.status == 1)
        #expect(result.stdout.contains("partial — created 3 · exported 3 · failed 1"), "\(result.stdout)")
        #expect(try await h.members() == ExportHarness.emails(0..<3))
        let errors = try await h.lastRowErrors()
        #expect(errors.count == 1)
        #expect(errors.first?.hasPrefix("profile bad (not-an-email): invalid email") == true, "\(errors)")
    }

    @Test func aBadSecretFailsTheRunAtOnce() async throws {
        let h = try await ExportHarness.make()
        h.secret = "not-the-secret"
        try await h.load(ExportHarness.profiles(3))
        let result = try await h.run()
        #expect(result.status == 1)
        #expect(result.stdout.contains("failed"), "\(result.stdout)")
        #expect(result.stdout.contains("signature mismatch: check api_secret"), "\(result.stdout)")
        #expect(!result.stdout.contains("not-the-secret") && !result.stderr.contains("not-the-secret"))
        #expect(try await h.users().isEmpty)
        #expect(try await !h.listNames().contains(ExportHarness.list))
    }

    @Test func aDryRunSendsNothingAndShowsThePlan() async throws {
        let h = try await ExportHarness.make()
        try await h.load(Self.mixed)
        var result = try await h.run(["--dry-run"])
        #expect(result.status == 0, "\(result.stdout) \(result.stderr)")
        result.stdout = Self.squeezed(result.stdout)
        #expect(result.stdout.contains("dry run: nothing was sent"), "\(result.stdout)")
        #expect(result.stdout.contains("add 3 e.g. u0 (u0@example.com), u1 (u1@example.com), u2 (u2@example.com)"), "\(result.stdout)")
        #expect(result.stdout.contains("skip (no email)"), "\(result.stdout)")
        #expect(result.stdout.contains("skip (no consent to email-marketing) 1 e.g. nocon (nocon@example.com)"), "\(result.stdout)")
        #expect(try await h.users().isEmpty)
        #expect(try await !h.listNames().contains(ExportHarness.list))

        // After a real run, a leaver shows up as a planned removal, and still nothing is sent.
        #expect(try await h.run().status == 0)
        try await h.load(#"{"id": "u0", "country": "JP"}"# + "\n")
        var plan = try await h.run(["--dry-run"])
        plan.stdout = Self.squeezed(plan.stdout)
        #expect(plan.stdout.contains("remove 1 e.g. u0 (u0@example.com)"), "\(plan.stdout)")
        #expect(plan.stdout.contains("update 2"), "\(plan.stdout)")
        #expect(try await h.members() == ExportHarness.emails(0..<3))
    }
}
