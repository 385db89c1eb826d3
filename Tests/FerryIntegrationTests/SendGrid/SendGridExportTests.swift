import FerryCore
import FerryTransport
import Foundation
import Testing

/// `ferry run` of a SendGrid export through the built binary against `ferry-sandbox sendgrid`, checked with `dump`.
@Suite(.serialized) struct SendGridExportTests {
    typealias Server = SendGridSandboxServer

    static let segments = """
        segments:
          - name: newsletter
            all:
              - { property: email, exists: true }
              - { property: newsletter, eq: "yes" }
          - name: vip
            any:
              - { property: lifetime_spend, gte: 400 }
          - name: vip-gold
            any:
              - { property: lifetime_spend, gte: 1000 }
        """

    /// A workspace with segments, a SendGrid connection and `profiles` loaded.
    static func workspace(_ server: Server, profiles: [String], extraFields: String = "", objectives: Bool = false) throws -> Workspace {
        let ws = Workspace()
        ws.write("s/segments.yaml", segments)
        ws.write("s/sg.yaml", """
            name: sg
            enabled: true
            timezone: UTC
            schedule:
              at: ["02:00"]
            \(objectives ? "objectives: [email-marketing]" : "")
            destination:
              type: sendgrid
              api_key: ${SENDGRID_API_KEY}
              base_url: ${SENDGRID_BASE_URL}
            goals:
              - export:
                  segments: [newsletter, vip]
                  list: ferry-contacts
                  membership_field: ferry_segments
                  email: email
                  first_name: first_name
                  fields:
                    - { property: city, to: city, type: text }
                    - { property: lifetime_spend, to: lifetime_spend, type: number }
            \(extraFields)
            """)
        try load(ws, profiles)
        return ws
    }

    static func load(_ ws: Workspace, _ profiles: [String]) throws {
        let file = ws.write("p-\(UUID().uuidString).jsonl", profiles.joined(separator: "\n") + "\n")
        let result = try BuiltProducts.ferry(["profiles", "load", file, "--schedules", ws.path + "/s", "--db", ws.db])
        #expect(result.status == 0, "\(result.stdout.suffix(500)) \(result.stderr.suffix(500))")
    }

    static func run(_ ws: Workspace, _ server: Server, key: String = Server.apiKey, _ extra: [String] = []) throws -> CommandResult {
        try BuiltProducts.ferry(["run", "sg", "--now", "--schedules", ws.path + "/s", "--db", ws.db] + extra,
                                environment: ["SENDGRID_API_KEY": key, "SENDGRID_BASE_URL": server.baseURL])
    }

    static let people = [
        #"{"id":"p1","email":"Ann@Example.com","first_name":"Ann","city":"Dublin","lifetime_spend":500,"newsletter":"yes","objectives":["email-marketing"]}"#,
        #"{"id":"p2","email":"bo@example.com","first_name":"Bo","lifetime_spend":450}"#,
        #"{"id":"p3","email":"cy@example.com","newsletter":"yes","objectives":["email-marketing"]}"#,
        #"{"id":"p4","first_name":"NoMail","lifetime_spend":900}"#,
        #"{"id":"p5","email":"dee@example.com","lifetime_spend":5}"#,
    ]

    @Test func createsFieldsListAndSegmentsOnceAndSetsMembership() async throws {
        try await Server.with { server in
            let ws = try Self.workspace(server, profiles: Self.people)
            let first = try Self.run(ws, server)
            #expect(first.status == 0, "\(first.stdout) \(first.stderr)")
            #expect(first.stdout.contains("succeeded"))
            #expect(first.stdout.contains("exported 3"))
            #expect(first.stdout.contains("skipped 1"))
            let second = try Self.run(ws, server)
            #expect(second.status == 0, "\(second.stdout) \(second.stderr)")

            let dump = try server.dump()
            let fields = (dump["fields"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }.sorted()
            #expect(fields == ["ferry_segments", "lifetime_spend"])  // city is SendGrid's reserved field
            #expect((dump["lists"] as? [[String: Any]])?.count == 1)
            let segments = try server.segments()
            #expect(segments.keys.sorted() == ["ferry: newsletter", "ferry: vip"])
            #expect(segments["ferry: vip"]?["members"] as? [String] == ["ann@example.com", "bo@example.com"])
            #expect(segments["ferry: newsletter"]?["members"] as? [String] == ["ann@example.com", "cy@example.com"])
            #expect(try server.field("ferry_segments", of: "ann@example.com") as? String == "newsletter,vip")
            #expect(try server.field("ferry_segments", of: "bo@example.com") as? String == "vip")
            #expect(try server.field("lifetime_spend", of: "ann@example.com") as? Int == 500)
            let ann = try server.contacts()["ann@example.com"]
            #expect(ann?["city"] as? String == "Dublin")
            #expect(ann?["first_name"] as? String == "Ann")
            #expect(ann?["lists"] as? [String] == ["ferry-contacts"])
            #expect(try server.contacts().count == 3)

            let history = try BuiltProducts.ferry(["history", "show", "1", "--db", ws.db])
            #expect(history.stdout.contains("ann@example.com"), "\(history.stdout)")
        }
    }

    @Test func leavingASegmentRewritesTheFieldAndTheSegmentDropsTheContact() async throws {
        try await Server.with { server in
            let ws = try Self.workspace(server, profiles: Self.people)
            #expect(try Self.run(ws, server).status == 0)
            // p1 leaves vip (keeps newsletter); p2 leaves every configured segment.
            try Self.load(ws, [
                #"{"id":"p1","email":"ann@example.com","first_name":"Ann","lifetime_spend":10,"newsletter":"yes"}"#,
                #"{"id":"p2","email":"bo@example.com","lifetime_spend":1}"#,
            ])
            let result = try Self.run(ws, server)
            #expect(result.status == 0, "\(result.stdout) \(result.stderr)")
            #expect(try server.field("ferry_segments", of: "ann@example.com") as? String == "newsletter")
            #expect(try server.field("ferry_segments", of: "bo@example.com") as? String == "")
            #expect(try server.segments()["ferry: vip"]?["members"] as? [String] == [])
            #expect(try server.segments()["ferry: newsletter"]?["members"] as? [String] == ["ann@example.com", "cy@example.com"])
        }
    }

    @Test func anInvalidEmailFailsOnlyItsProfileAndTheRunIsPartial() async throws {
        try await Server.with { server in
            let ws = try Self.workspace(server, profiles: Self.people + [#"{"id":"p9","email":"not-an-email","lifetime_spend":700}"#])
            let result = try Self.run(ws, server)
            #expect(result.status == 1)
            #expect(result.stdout.contains("partial"), "\(result.stdout)")
            #expect(result.stdout.contains("failed 1"))
            #expect(try server.contacts().count == 3)
            let history = try BuiltProducts.ferry(["history", "show", "1", "--db", ws.db])
            #expect(history.stdout.contains("p9") && history.stdout.contains("invalid email"), "\(history.stdout)")
            // Kept in the outbox: retried (and still failing) next run.
            let again = try Self.run(ws, server)
            #expect(again.stdout.contains("partial") && again.stdout.contains("failed 1"), "\(again.stdout)")
        }
    }

    @Test func batchesAreSplitUnderSixMegabytes() async throws {
        try await Server.with { server in
            // Property values are capped at 64 KiB, so ~1 MB a profile comes as 17 values joined into one text field.
            let chunk = "\"" + String(repeating: "b", count: 60_000) + "\""
            let big = "[" + Array(repeating: chunk, count: 17).joined(separator: ",") + "]"
            let profiles = (1...8).map { #"{"id":"b\#($0)","email":"big\#($0)@example.com","lifetime_spend":500,"bio":\#(big)}"# }
            let ws = try Self.workspace(server, profiles: profiles, extraFields: """
                        - { property: bio, to: bio, type: text }
                """)
            let result = try Self.run(ws, server)
            #expect(result.status == 0, "\(result.stdout) \(result.stderr)")
            #expect(try server.contacts().count == 8)
            #expect(try server.dump()["jobs"] as? Int ?? 0 >= 2)
            #expect((try server.field("bio", of: "big8@example.com") as? String)?.count == 17 * 60_000 + 16)
        }
    }

    @Test func aFieldTypeConflictFailsTheRunClearly() async throws {
        try await Server.with { server in
            let http = CurlHTTPClient()
            let api = SendGridClient(configuration: .init(apiKey: Server.apiKey, baseURL: server.baseURL), transport: http)
            _ = try await api.createField(name: "lifetime_spend", kind: .text)
            let ws = try Self.workspace(server, profiles: Self.people)
            let result = try Self.run(ws, server)
            #expect(result.status == 1)
            #expect(result.stdout.contains("failed"))
            #expect(result.stdout.contains("field type conflict: 'lifetime_spend' exists in SendGrid as a custom field of type Text"),
                    "\(result.stdout)")
            #expect(try server.contacts().isEmpty)
        }
    }

    @Test func aBadAPIKeyFailsClearlyWithoutShowingIt() async throws {
        try await Server.with { server in
            let ws = try Self.workspace(server, profiles: Self.people)
            let result = try Self.run(ws, server, key: "SG.definitely-wrong-key")
            #expect(result.status == 1)
            #expect(result.stdout.contains("authentication failed"), "\(result.stdout)")
            #expect(result.stdout.contains("${SENDGRID_API_KEY}"))
            #expect(!(result.stdout + result.stderr).contains("SG.definitely-wrong-key"))
        }
    }

    @Test func dryRunSendsNothing() async throws {
        try await Server.with { server in
            let ws = try Self.workspace(server, profiles: Self.people)
            let result = try Self.run(ws, server, ["--dry-run"])
            #expect(result.status == 0, "\(result.stdout) \(result.stderr)")
            // The plan is in the run's notes, which `ferry run` prints.
            #expect(result.stdout.contains("upsert 3 contacts"), "\(result.stdout)")
            #expect(result.stdout.contains("skip 1 (no email)"))
            let dump = try server.dump()
            #expect((dump["contacts"] as? [Any])?.isEmpty == true)
            #expect((dump["fields"] as? [Any])?.isEmpty == true)
            #expect((dump["segments"] as? [Any])?.isEmpty == true)
        }
    }

    @Test func consentIsRequiredWhenObjectivesAreSet() async throws {
        try await Server.with { server in
            let ws = try Self.workspace(server, profiles: Self.people, objectives: true)
            let result = try Self.run(ws, server)
            #expect(result.status == 0, "\(result.stdout) \(result.stderr)")
            #expect(try server.contacts().keys.sorted() == ["ann@example.com", "cy@example.com"])
        }
    }

    @Test func convergesUnderInjectedFailuresWithNothingLost() async throws {
        try await Server.with(["--fail-rate", "0.2", "--drop-connections", "0.05", "--latency", "5"]) { server in
            let profiles = (1...40).map { #"{"id":"f\#($0)","email":"f\#($0)@example.com","lifetime_spend":\#(400 + $0),"newsletter":"\#($0 % 2 == 0 ? "yes" : "no")"}"# }
            let ws = try Self.workspace(server, profiles: profiles)
            var succeeded = false
            for _ in 0..<8 where !succeeded {
                succeeded = try Self.run(ws, server).status == 0
            }
            #expect(succeeded)
            let contacts = try server.contacts()
            #expect(contacts.count == 40)
            for n in 1...40 {
                let expected = n % 2 == 0 ? "newsletter,vip" : "vip"
                #expect((contacts["f\(n)@example.com"]?["custom_fields"] as? [String: Any])?["ferry_segments"] as? String == expected)
            }
            let segments = try server.segments()
            #expect(segments.count == 2)
            #expect((segments["ferry: vip"]?["members"] as? [String])?.count == 40)
        }
    }
}
