import FerryCore
import FerryTransport
import Foundation
import Testing

/// The Sailthru sandbox's list export over more members than one of its write blocks (8,192), from a snapshot
/// whose users are not in id order, before and after a delete (which moves the sandbox's last user into the gap,
/// so its table is no longer in id order and the export sorts instead): every member once, by profile id, with
/// the right email hash.
@Suite struct SandboxExportTests {
    typealias Server = SailthruSandboxServer

    func client(_ server: Server) -> SailthruClient {
        let http = CurlHTTPClient(configuration: .init(connectTimeout: .seconds(5), totalTimeout: .seconds(60),
                                                       maxResponseBytes: 1 << 20,
                                                       retry: RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(20))))
        return SailthruClient(
            configuration: .init(apiKey: Server.apiKey, apiSecret: Server.secret, baseURL: server.baseURL,
                                 initialPollInterval: .milliseconds(50), maxPollInterval: .milliseconds(200),
                                 jobTimeout: .seconds(60)),
            transport: http)
    }

    /// A snapshot of `count` users (written as the sandbox writes `users.json`, but in a scrambled order); every
    /// tenth (not the last) is in list "Other" only, the rest in "Big". Returns the emails of Big's members.
    func writeSnapshot(users count: Int, in directory: TemporaryDirectory) throws -> Set<String> {
        let state = directory.url.appendingPathComponent("state")
        try FileManager.default.createDirectory(at: state, withIntermediateDirectories: true)
        var members = Set<String>()
        var entries: [String] = []
        for i in 0..<count {
            let sid = "5f000000" + String(repeating: "0", count: 16 - String(i + 1, radix: 16).count) + String(i + 1, radix: 16)
            let email = "member\(i)@example.net"
            let list = i % 10 == 5 ? "Other" : "Big"
            if list == "Big" { members.insert(email) }
            entries.append(#""\#(sid)":{"id":"\#(sid)","keys":{"sid":"\#(sid)","email":"\#(email)"},"vars":{"first_name":"N\#(i % 7)"},"#
                + #""lists":{"\#(list)":\#(1_790_000_000 + i % 86_400)},"optout":"none","created":1790000000}"#)
        }
        // Every 7th entry first, then the rest: ids out of order in the file, as a dictionary's encoding may leave them.
        let scrambled = stride(from: 0, to: count, by: 7).map { entries[$0] }
            + entries.indices.filter { $0 % 7 != 0 }.map { entries[$0] }
        try Data(("{" + scrambled.joined(separator: ",") + "}").utf8).write(to: state.appendingPathComponent("users.json"))
        let lists = #"{"Big":{"id":"5f0000000000000000000000","name":"Big","type":"normal","primary":false,"created":1790000000},"#
            + #""Other":{"id":"5f00000000000000000fffff","name":"Other","type":"normal","primary":false,"created":1790000000}}"#
        try Data(lists.utf8).write(to: state.appendingPathComponent("lists.json"))
        try Data(String(count + 2).utf8).write(to: state.appendingPathComponent("counter.json"))
        return members
    }

    /// The export of `list`'s rows (header dropped) with the `first_name` column, each row split into cells.
    func exportedRows(_ api: SailthruClient, list: String, in server: Server) async throws -> [[String]] {
        let file = server.directory.url.appendingPathComponent("export-\(UUID().uuidString).csv")
        _ = try await api.exportList(list, vars: ["first_name"], to: file)
        let text = try String(contentsOf: file, encoding: .utf8)
        let lines = text.split(separator: "\r\n", omittingEmptySubsequences: true)
        #expect(lines.first == "Profile Id,Email,Email Hash,Engagement,Lists,Profile Created Date,List Signup,Optout Time,first_name")
        return lines.dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
    }

    /// Where `rows` first differ from `expected`, described (a failure then prints a line, not 20,000 rows).
    func firstDifference(_ rows: [[String]], _ expected: [[String]]) -> String? {
        for (index, (row, want)) in zip(rows, expected).enumerated() where row != want {
            return "row \(index): \(row) instead of \(want)"
        }
        return rows.count == expected.count ? nil : "\(rows.count) rows instead of \(expected.count)"
    }

    @Test func exportsManyMembersByProfileIDBeforeAndAfterADelete() async throws {
        let directory = try TemporaryDirectory()
        let members = try writeSnapshot(users: 20_000, in: directory)
        let server = try Server.start(seeded: false, jobDelay: 0, directory: directory)
        defer { server.stop() }
        let api = client(server)

        let before = try await exportedRows(api, list: "Big", in: server)
        #expect(before.count == members.count)
        let missing = members.subtracting(before.map { $0[1] })
        #expect(missing.isEmpty, "\(missing.count) members missing, such as \(missing.first ?? "")")
        let unordered = zip(before, before.dropFirst()).first { $0[0] >= $1[0] }.map { "\($0[0]) before \($1[0])" }
        #expect(unordered == nil, "rows by profile id")
        let malformed = before.first { $0.count != 9 || $0[2] != MD5.hex($0[1]) || $0[4] != "Big" || !$0[8].hasPrefix("N") }
        #expect(malformed == nil)
        #expect(before.first?[5] == "2026-09-21 14:13:20")

        let gone = "member100@example.net"
        try await api.deleteUser(id: gone, key: "email")
        let after = try await exportedRows(api, list: "Big", in: server)
        #expect(firstDifference(after, before.filter { $0[1] != gone }) == nil)
    }
}
