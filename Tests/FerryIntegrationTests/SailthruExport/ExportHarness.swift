import Foundation
import Testing

/// One export scenario: a workspace with segments, a connection file and a store, against one sandbox.
final class ExportHarness: @unchecked Sendable {
    let ws = Workspace()
    var server: SailthruSandboxServer
    var secret = SailthruSandboxServer.secret
    static let list = "Ferry Newsletter"

    init(_ sandboxArguments: [String] = [], seeded: Bool = false, jobDelay: Double = 0.2) throws {
        server = try SailthruSandboxServer.start(sandboxArguments, seeded: seeded, jobDelay: jobDelay)
        segments(rule: "{ property: country, in: [US, CA] }")
        connection()
    }

    /// Starts the harness with its sandbox off the cooperative pool (starting waits for the readiness line).
    static func make(_ sandboxArguments: [String] = [], seeded: Bool = false, jobDelay: Double = 0.2) async throws -> ExportHarness {
        try await offPool { try ExportHarness(sandboxArguments, seeded: seeded, jobDelay: jobDelay) }
    }

    // Stopping waits for the process: do it on the child-process queue, never on a pool thread.
    deinit {
        let server = server
        childProcessQueue.async { server.stop() }
    }

    var schedules: String { ws.path + "/Schedules" }

    /// The `newsletter` segment's rule.
    func segments(rule: String) {
        ws.write("Schedules/segments.yaml", "segments:\n  - name: newsletter\n    all:\n      - \(rule)\n")
    }

    /// The connection file `st-export` with one export goal.
    func connection(method: String = "job", createUsers: Bool = true, existingProfiles: Bool = true,
                    objectives: [String] = ["email-marketing"]) {
        ws.write("Schedules/st-export.yaml", """
        name: st-export
        timezone: UTC
        schedule:
          at: ["02:30"]
        \(objectives.isEmpty ? "" : "objectives: [\(objectives.joined(separator: ", "))]")
        destination:
          type: sailthru
          api_key: ${SAILTHRU_API_KEY}
          api_secret: ${SAILTHRU_API_SECRET}
          base_url: ${SAILTHRU_BASE_URL}
        goals:
          - export:
              segment: newsletter
              match: { email: email }
              method: \(method)
              create_users: \(createUsers)
              existing_profiles: \(existingProfiles)
              lists: ["\(Self.list)"]
              remove_when_leaving: true
              fields:
                - { property: first_name, to: first_name }
                - { property: last_order_time, to: last_order_time }
                - { property: interests, to: interests }
                - { segments: all,        to: ferry_segments }
                - { objectives: true,     to: consents }
                - { profile_id: true,     to: ferry_id }
                - { text: "ferry",        to: source }
        """)
    }

    var environment: [String: String] {
        ["SAILTHRU_API_KEY": SailthruSandboxServer.apiKey, "SAILTHRU_API_SECRET": secret, "SAILTHRU_BASE_URL": server.baseURL]
    }

    /// `count` consenting US profiles `prefix0…`, with emails `prefixN@example.com`.
    static func profiles(_ count: Int, prefix: String = "u", start: Int = 0, country: String = "US") -> String {
        (start..<(start + count)).map { i in
            #"{"id": "\#(prefix)\#(i)", "email": "\#(prefix)\#(i)@example.com", "first_name": "Name\#(i)", "country": "\#(country)", "objectives": ["email-marketing"], "last_order_time": "2024-01-15T10:30:00Z", "interests": ["golf", "wine"]}"#
        }.joined(separator: "\n") + "\n"
    }

    /// Loads JSON Lines profiles into the store.
    func load(_ jsonl: String) async throws {
        let file = ws.write("profiles-\(UUID().uuidString).jsonl", jsonl)
        let arguments = ["profiles", "load", file, "--schedules", schedules, "--db", ws.db]
        let result = try await offPool { try BuiltProducts.ferry(arguments) }
        #expect(result.status == 0, "\(result.stdout) \(result.stderr)")
    }

    /// `ferry run st-export --now` plus `extra`.
    func run(_ extra: [String] = []) async throws -> CommandResult {
        let arguments = ["run", "st-export", "--now", "--schedules", schedules, "--db", ws.db] + extra
        let environment = environment
        return try await offPool { try BuiltProducts.ferry(arguments, environment: environment) }
    }

    /// The sandbox's state (`ferry-sandbox sailthru dump`), read off the cooperative pool.
    func dump() async throws -> [String: Any] {
        let server = server
        let data = try await offPool { try JSONSerialization.data(withJSONObject: try server.dump()) }
        return (try JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:]
    }

    /// The sandbox's users, by email.
    func users() async throws -> [String: [String: Any]] {
        let dump = try await self.dump()
        var users: [String: [String: Any]] = [:]
        for user in dump["users"] as? [[String: Any]] ?? [] {
            if let email = (user["keys"] as? [String: Any])?["email"] as? String { users[email] = user }
        }
        return users
    }

    /// The emails on a sandbox list.
    func members(of list: String = ExportHarness.list) async throws -> Set<String> {
        Set(try await users().filter { (($0.value["lists"] as? [String: Any]) ?? [:])[list] != nil }.keys)
    }

    /// The names of the sandbox's lists.
    func listNames() async throws -> Set<String> {
        let dump = try await self.dump()
        return Set((dump["lists"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String })
    }

    /// The newest run as `ferry history --json` shows it.
    func lastRun() async throws -> [String: Any] {
        let arguments = ["history", "st-export", "--json", "--limit", "1", "--schedules", schedules, "--db", ws.db]
        let history = try await offPool { try BuiltProducts.ferry(arguments) }
        let object = (try? JSONSerialization.jsonObject(with: Data(history.stdout.utf8))) as? [String: Any] ?? [:]
        return (object["runs"] as? [[String: Any]])?.first ?? [:]
    }

    /// The newest run's row errors as `location: reason` lines.
    func lastRowErrors() async throws -> [String] {
        ((try await lastRun()["row_errors"] as? [[String: Any]]) ?? []).map { "\($0["location"] ?? ""): \($0["reason"] ?? "")" }
    }

    /// Emails `prefixN@example.com` for `range`.
    static func emails(_ range: Range<Int>, prefix: String = "u") -> Set<String> {
        Set(range.map { "\(prefix)\($0)@example.com" })
    }
}


