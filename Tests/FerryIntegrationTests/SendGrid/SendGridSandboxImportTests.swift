import FerryCore
import FerryTransport
import Foundation
import Testing

/// The sandbox's contact import path: its own JSON reader, email check, journal lines and segment counts kept
/// per changed contact must answer exactly as the slower general code did.
@Suite(.timeLimit(.minutes(3))) struct SendGridSandboxImportTests {
    typealias Server = SendGridSandboxServer

    func client(port: Int) -> SendGridClient {
        let http = CurlHTTPClient(configuration: .init(connectTimeout: .seconds(5), totalTimeout: .seconds(30),
                                                       retry: RetryPolicy(maxAttempts: 1, baseDelay: .milliseconds(20))))
        return SendGridClient(configuration: .init(apiKey: Server.apiKey, baseURL: "http://127.0.0.1:\(port)",
                                                   initialPollInterval: .milliseconds(20), maxPollInterval: .milliseconds(100),
                                                   jobTimeout: .seconds(20)),
                              transport: http)
    }

    func start(state: String) throws -> (ChildProcess, Int) {
        let process = ChildProcess(executable: try BuiltProducts.executable("ferry-sandbox"),
                                   arguments: ["sendgrid", "--port", "0", "--api-key", Server.apiKey, "--state", state, "--job-delay", "0"])
        let line = try process.start(waitingFor: "listening on ")
        return (process, Int(line.split(separator: ":").last ?? "") ?? 0)
    }

    func importContacts(_ api: SendGridClient, _ body: String) async throws -> SendGridImportJob {
        try await api.waitForImport(id: try await api.upsertContacts(body: Data(body.utf8)))
    }

    func count(_ api: SendGridClient, _ name: String) async throws -> Int? {
        try await api.segments().first { $0.name == name }?.contactsCount
    }

    @Test func segmentCountsFollowEveryImportAndARestart() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let state = directory.url.appendingPathComponent("state").path
        let (first, port) = try start(state: state)
        let api = client(port: port)
        let field = try await api.createField(name: "ferry_segments", kind: .text)
        let query = SendGridMembership.queryDSL(field: "ferry_segments", segment: "vip")
        _ = try await api.createSegment(name: "ferry: vip", queryDSL: query)
        _ = try await api.createSegment(name: "gold", queryDSL: "SELECT contact_id, updated_at FROM contact_data WHERE first_name LIKE 'G_ld%'")
        let f = field.id
        _ = try await importContacts(api, #"""
            {"contacts":[{"email":"a@x.com","custom_fields":{"\#(f)":"vip"}},{"email":"b@x.com","custom_fields":{"\#(f)":"vip-gold,vip"}},
            {"email":"c@x.com","custom_fields":{"\#(f)":"vip-gold"}},{"email":"d@x.com","first_name":"Gold\nbar","custom_fields":{"\#(f)":"x,vip,y"}},
            {"email":"e@x.com","first_name":"Gelid"},{"email":"f@x.com","first_name":"Gold \u00e9\"\\"}]}
            """#)
        #expect(try await count(api, "ferry: vip") == 3)  // a, b, d: not the substring in c
        #expect(try await count(api, "gold") == 1)  // f; d's newline is not matched by %
        // A leaver's field is rewritten: the segment drops it without re-evaluating anyone else.
        _ = try await importContacts(api, #"{"contacts":[{"email":"B@x.com","custom_fields":{"\#(f)":""}}]}"#)
        #expect(try await count(api, "ferry: vip") == 2)
        let segment = try #require(try await api.segments().first { $0.name == "ferry: vip" })
        let sample = try await rawSegment(port: port, id: segment.id)
        #expect(sample == ["a@x.com", "d@x.com"])

        kill(first.process.processIdentifier, SIGKILL)
        stopWaiting(for: first.process)
        let (second, again) = try start(state: state)
        defer { second.stop() }
        let restarted = client(port: again)
        #expect(try await count(restarted, "ferry: vip") == 2)
        #expect(try await count(restarted, "gold") == 1)
        // The journal's hand-written lines read back with their escapes intact.
        let dump = try BuiltProducts.run("ferry-sandbox", ["sendgrid", "dump", "--state", state])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(dump.stdout.utf8)) as? [String: Any])
        let contacts = (object["contacts"] as? [[String: Any]] ?? []).reduce(into: [String: [String: Any]]()) {
            $0[$1["email"] as? String ?? ""] = $1
        }
        #expect(contacts["f@x.com"]?["first_name"] as? String == "Gold é\"\\")
        #expect(contacts["d@x.com"]?["first_name"] as? String == "Gold\nbar")
        #expect((contacts["b@x.com"]?["custom_fields"] as? [String: Any])?["ferry_segments"] as? String == "")
    }

    /// `contacts_sample` of `GET /v3/marketing/segments/2.0/{id}`, in order.
    func rawSegment(port: Int, id: String) async throws -> [String] {
        let http = CurlHTTPClient(configuration: .init(connectTimeout: .seconds(5), totalTimeout: .seconds(20)))
        let response = try await http.send(HTTPRequest(method: .get, url: "http://127.0.0.1:\(port)/v3/marketing/segments/2.0/\(id)",
                                                       headers: [("Authorization", "Bearer \(Server.apiKey)")]))
        let object = try JSONSerialization.jsonObject(with: response.body) as? [String: Any]
        return (object?["contacts_sample"] as? [[String: Any]] ?? []).compactMap { $0["email"] as? String }
    }

    /// The pattern `^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$`, at most 254 characters; a trailing line separator is refused too.
    @Test func emailsAreCheckedAsTheDocumentedPatternWithoutARegex() async throws {
        try await Server.with(jobDelay: 0) { server in
            let api = client(port: server.port)
            let valid = ["a@b.co", "a@b..c", "a@b.c.", "ü@bä.de", "a.b+c@d-e.f"]
            let invalid = ["a@b.", "a@.b", "a@bc", "@b.co", "a@@b.co", "a@b@c.de", "a b@c.de", "a,b@c.de", "a;b@c.de",
                           "a\u{00A0}@b.co", "a@b.c\u{2028}", "a\t@b.co", "a@b", String(repeating: "x", count: 250) + "@b.co"]
            let body = "{\"contacts\":[" + (valid + invalid).map { #"{"email":"\#(JSONValue.string($0).serialized().dropFirst().dropLast())"}"# }
                .joined(separator: ",") + "]}"
            let job = try await importContacts(api, body)
            #expect(job.createdCount == valid.count)
            #expect(Set(job.errors.compactMap(\.email)) == Set(invalid))
        }
    }

    @Test func bodiesThatAreNotStrictJSONAreRefused() async throws {
        try await Server.with(jobDelay: 0) { server in
            let api = client(port: server.port)
            for body in [#"{"contacts":[{"email":"a@b.co"},]}"#, #"{"contacts":[{"email":"a@b.co"}]} x"#, #"{"contacts":[{"email":"\ud800"}]}"#,
                         "{\"contacts\":[{\"email\":\"a\u{01}@b.co\"}]}", #"{"contacts":[{"email":"a@b.co","n":01}]}"#,
                         #"{"contacts":[{"email":"a@b.co"}"#, #"{"contacts":[{'email':"a@b.co"}]}"#, ""] {
                let error = await #expect(throws: SendGridError.self, "\(body)") {
                    _ = try await api.upsertContacts(body: Data(body.utf8))
                }
                #expect(error?.kind == .badRequest)
                #expect(error?.details.first?.message == "request body is not valid JSON")
            }
            var invalidUTF8 = Data(#"{"contacts":[{"email":"a"#.utf8)
            invalidUTF8 += [0xC3, 0x28]
            invalidUTF8 += Data(#"@b.co"}]}"#.utf8)
            await #expect(throws: SendGridError.self) { _ = try await api.upsertContacts(body: invalidUTF8) }
            // Escapes, a surrogate pair, whitespace and numbers are read as JSON reads them.
            let score = try await api.createField(name: "score", kind: .number)
            let job = try await importContacts(api, " {\n\"contacts\" : [ {\"email\":\"\\u0041@b.co\",\"first_name\":\"\\ud83d\\ude00\\/\",\"custom_fields\":{\"\(score.id)\":-1.5e2}} ] }\r\n")
            #expect(job.status == .completed)
            let contact = try #require(try server.contacts()["a@b.co"])
            #expect(contact["first_name"] as? String == "😀/")
            #expect(((contact["custom_fields"] as? [String: Any])?["score"] as? NSNumber)?.doubleValue == -150)
        }
    }
}
