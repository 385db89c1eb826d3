import FerryCore
import FerryTransport
import Foundation
import Testing

/// The sandboxes' journalled state, through the built `ferry-sandbox`: what a request changed is there after
/// a kill -9 and a restart on the same state directory, and `dump` reads it while the server is down.
@Suite(.timeLimit(.minutes(3))) struct SandboxPersistenceTests {
    typealias Server = SailthruSandboxServer

    func client(_ server: Server) -> SailthruClient {
        let http = CurlHTTPClient(configuration: .init(connectTimeout: .seconds(5), totalTimeout: .seconds(20),
                                                       maxResponseBytes: 1 << 20, retry: RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(20))))
        return SailthruClient(
            configuration: .init(apiKey: Server.apiKey, apiSecret: Server.secret, baseURL: server.baseURL,
                                 initialPollInterval: .milliseconds(50), maxPollInterval: .milliseconds(200), jobTimeout: .seconds(20)),
            transport: http)
    }

    /// SIGKILL: no shutdown code runs, as when a machine loses the process.
    func killHard(_ server: Server) {
        kill(server.process.process.processIdentifier, SIGKILL)
        stopWaiting(for: server.process.process)
    }

    func users(_ dump: [String: Any]) -> [String: [String: Any]] {
        var byEmail: [String: [String: Any]] = [:]
        for user in dump["users"] as? [[String: Any]] ?? [] {
            if let email = (user["keys"] as? [String: Any])?["email"] as? String { byEmail[email] = user }
        }
        return byEmail
    }

    @Test func sailthruChangesSurviveAKillAndTwoRestarts() async throws {
        let first = try Server.start()
        let directory = first.directory
        defer { directory.remove() }
        do {
            let api = client(first)
            try await api.saveUser(SailthruUserUpdate(id: "kept@example.com", key: "email", keys: ["extid": "cust-1"],
                                                      vars: ["first_name": "Zoë", "score": 7], lists: ["Fresh": true], optout: "none"))
            try await api.deleteUser(id: "a+b@example.com", key: "email")
        }
        killHard(first)

        // Down: dump replays the journal without a server.
        let whileDown = users(try first.dump())
        #expect(whileDown["kept@example.com"] != nil)
        #expect(whileDown["a+b@example.com"] == nil)

        // Restarted with the seed file: the state is not empty, so the deleted seed user stays deleted.
        let second = try Server.start(directory: directory)
        do {
            let api = client(second)
            let kept = try await api.user(id: "cust-1", key: "extid")
            #expect(kept.keys["email"] == "kept@example.com")
            #expect(kept.vars["first_name"] == "Zoë")
            #expect(kept.lists.keys.sorted() == ["Fresh"])
            await #expect(throws: SailthruError.self) { _ = try await api.user(id: "a+b@example.com", key: "email") }
            // Start folded the journal into the snapshot.
            let state = directory.url.appendingPathComponent("state")
            let snapshot = try String(contentsOf: state.appendingPathComponent("users.json"), encoding: .utf8)
            #expect(snapshot.contains("kept@example.com"))
            #expect(try Data(contentsOf: state.appendingPathComponent("journal.jsonl")).isEmpty)
            try await api.saveUser(SailthruUserUpdate(id: "second@example.com", key: "email", vars: ["n": 2], lists: ["Fresh": true]))
        }
        killHard(second)

        // A line cut off by the kill (never acknowledged) does not stop the next start.
        let journal = try FileHandle(forWritingTo: directory.url.appendingPathComponent("state/journal.jsonl"))
        try journal.seekToEnd()
        try journal.write(contentsOf: Data(#"{"next":99,"user":{"id":"torn"#.utf8))
        try journal.close()

        let third = try Server.start(directory: directory)
        defer { third.process.stop() }
        let api = client(third)
        #expect(try await api.user(id: "second@example.com", key: "email").vars["n"] == 2)
        #expect(try await api.user(id: "kept@example.com", key: "email").vars["first_name"] == "Zoë")
        let final = users(try third.dump())
        #expect(Set(final.keys).isSuperset(of: ["kept@example.com", "second@example.com"]))
        #expect(final["a+b@example.com"] == nil)
        #expect(final.keys.allSatisfy { !$0.contains("torn") })
    }

    /// Update-job lines are read by the sandbox's own JSON reader and users journalled without Codable:
    /// escapes, non-ASCII, whole and fractional numbers and nested vars come back intact after a kill -9,
    /// and lines that are not valid JSON are counted as errors without stopping the job.
    @Test func updateJobLinesAreReadStrictlyAndTheirUsersSurviveAKill() async throws {
        let first = try Server.start()
        let directory = first.directory
        defer { directory.remove() }
        var lines: [UInt8] = []
        lines += Array(#"{"id":"esc@example.com","key":"email","vars":{"note":"a/b \"q\" \\ \n \u00e9 \ud83d\ude00 é","n":1.0,"f":1.5,"#.utf8)
        lines += Array(#""big":12345678901234567890,"nested":{"x":[1,true,null,-0]},"gone":null},"lists":{"Tricky":1}}"#.utf8) + [10]
        lines += Array(#"  {"id":"plain@example.com","vars":{"n":-3e2}}  "#.utf8) + [13, 10]
        for bad in [#"{"id":"bad1@example.com","#, #"{"id":"bad2@example.com","vars":{"x":"\q"}}"#,
                    #"{"id":"bad3@example.com","vars":{"x":"\udc00"}}"#, #"{"id":"bad4@example.com",}"#,
                    #"{"id":"bad5@example.com","vars":{"x":01}}"#, #"{"id":"bad6@example.com"} x"#] {
            lines += Array(bad.utf8) + [10]
        }
        lines += Array(#"{"id":"bad7@example.com","vars":{"x":""#.utf8) + [0xFF] + Array(#""}}"#.utf8) + [10]
        let file = directory.url.appendingPathComponent("tricky.jsonl")
        try Data(lines).write(to: file)
        do {
            let api = client(first)
            let started = try await api.startUpdateJob(file: file, update: nil)
            let job = try await api.waitForJob(id: started.id)
            #expect(job.raw["created"] == 2)
            #expect(job.raw["errors"] == 7)
        }
        killHard(first)

        let second = try Server.start(directory: directory)
        defer { second.process.stop() }
        let api = client(second)
        let user = try await api.user(id: "esc@example.com", key: "email")
        #expect(user.vars["note"] == "a/b \"q\" \\ \n é 😀 é")
        #expect(user.vars["n"] == 1)
        #expect(user.vars["f"] == 1.5)
        #expect(user.vars["big"] == .number(12345678901234567890))
        #expect(user.vars["nested"] == ["x": [1, true, .null, 0]])
        #expect(user.vars["gone"] == nil)
        #expect(user.lists.keys.sorted() == ["Tricky"])
        #expect(try await api.user(id: "plain@example.com", key: "email").vars["n"] == -300)
        let emails = Set(users(try second.dump()).keys)
        #expect(emails.isDisjoint(with: (1...7).map { "bad\($0)@example.com" }))
    }

    @Test func sendGridContactsSurviveAKillAndARestart() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let state = directory.url.appendingPathComponent("state").path
        func start() throws -> (ChildProcess, Int) {
            let process = ChildProcess(executable: try BuiltProducts.executable("ferry-sandbox"),
                                       arguments: ["sendgrid", "--port", "0", "--api-key", SendGridSandboxServer.apiKey,
                                                   "--state", state, "--job-delay", "0"])
            let line = try process.start(waitingFor: "listening on ")
            return (process, Int(line.split(separator: ":").last ?? "") ?? 0)
        }
        let http = CurlHTTPClient(configuration: .init(connectTimeout: .seconds(5), totalTimeout: .seconds(20),
                                                       maxResponseBytes: 1 << 20, retry: RetryPolicy(maxAttempts: 1, baseDelay: .milliseconds(20))))
        let (process, port) = try start()
        let body = #"{"contacts":[{"email":"Kept@Example.com","first_name":"Ann"},{"email":"two@example.com"}]}"#
        let response = try await http.send(HTTPRequest(
            method: .put, url: "http://127.0.0.1:\(port)/v3/marketing/contacts",
            headers: [("Authorization", "Bearer \(SendGridSandboxServer.apiKey)")],
            body: .bytes(Data(body.utf8), contentType: "application/json")))
        #expect(response.status == 202)
        // The job (delay 0) is applied by the next tick; wait until dump shows it rather than sleeping a fixed time.
        func contacts() throws -> [String] {
            let result = try BuiltProducts.run("ferry-sandbox", ["sendgrid", "dump", "--state", state])
            let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
            return ((object?["contacts"] as? [[String: Any]]) ?? []).compactMap { $0["email"] as? String }
        }
        var seen: [String] = []
        for _ in 0..<200 where seen.count < 2 {
            seen = try contacts()
            if seen.count < 2 { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(seen == ["kept@example.com", "two@example.com"])
        kill(process.process.processIdentifier, SIGKILL)
        stopWaiting(for: process.process)
        #expect(try contacts() == ["kept@example.com", "two@example.com"])

        let (again, _) = try start()
        defer { again.stop() }
        #expect(try contacts() == ["kept@example.com", "two@example.com"])
        let snapshot = try String(contentsOfFile: state + "/sendgrid.json", encoding: .utf8)
        #expect(snapshot.contains("kept@example.com"))
    }
}
