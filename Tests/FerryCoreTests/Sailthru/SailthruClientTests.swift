import Foundation
import Testing
@testable import FerryCore

@Suite struct SailthruClientTests {
    func client(_ replies: [Result<HTTPResponse, HTTPError>]) -> (SailthruClient, RecordingTransport) {
        let transport = RecordingTransport(replies)
        let config = SailthruClient.Configuration(apiKey: "key123", apiSecret: "secret456", baseURL: "http://127.0.0.1:9")
        return (SailthruClient(configuration: config, transport: transport, sleep: { _ in }), transport)
    }

    static func ok(_ json: String, status: Int = 200) -> Result<HTTPResponse, HTTPError> {
        .success(HTTPResponse(status: status, body: Data(json.utf8)))
    }

    static func failed(_ status: Int, _ body: String) -> Result<HTTPResponse, HTTPError> {
        .failure(HTTPError(kind: .status, url: "http://127.0.0.1:9/x", method: .get, status: status, body: body, detail: ""))
    }

    @Test func getSendsAPercentEncodedQueryAndNoBody() async throws {
        let (client, transport) = client([Self.ok(#"{"keys":{"email":"a+b@x.com"},"vars":[],"lists":[]}"#)])
        let user = try await client.user(id: "a+b@x.com", key: "email")
        #expect(user.keys["email"] == "a+b@x.com")
        #expect(user.vars.isEmpty && user.lists.isEmpty)  // `[]` decodes as an empty map
        let request = try #require(transport.requests.first)
        #expect(request.method == .get)
        #expect(request.body == .empty)
        #expect(request.url.hasPrefix("http://127.0.0.1:9/user?api_key=key123&format=json&json="))
        #expect(request.url.contains("a%2Bb%40x.com"))
        #expect(!request.url.contains("+"))
    }

    @Test func postSendsAForm() async throws {
        let (client, transport) = client([Self.ok(#"{"ok":true}"#)])
        try await client.saveUser(SailthruUserUpdate(id: "jane@example.com", lists: ["Newsletter": true, "Old": false]))
        let request = try #require(transport.requests.first)
        guard case .bytes(let body, let type) = request.body else { Issue.record("not a form"); return }
        #expect(type == "application/x-www-form-urlencoded")
        let fields = try #require(FormEncoding.decode(String(decoding: body, as: UTF8.self)))
        let json = try #require(fields.first { $0.0 == "json" }?.1)
        #expect(json == #"{"id":"jane@example.com","lists":{"Newsletter":1,"Old":0}}"#)
        #expect(fields.first { $0.0 == "sig" }?.1 == SailthruSignature.sign(apiKey: "key123", json: json, secret: "secret456"))
    }

    @Test(arguments: [
        (2, "Missing required parameter: id", SailthruError.Kind.missingParameter),
        (3, "Invalid API key", .invalidAPIKey),
        (5, "Signature hash does not match", .signatureMismatch),
        (11, "Invalid email: praj", .invalidEmail),
        (15, "Unknown list: x", .unknownList),
        (43, "Too many GET requests this minute to /user API", .rateLimited),
        (99, "User not found with email: a@b.c", .userNotFound),
        (99, "No items in purchase", .other),
        (7, "something new", .other),
    ])
    func errorBodiesMapToTypedErrors(code: Int, message: String, kind: SailthruError.Kind) async throws {
        for reply in [Self.failed(400, #"{"error":\#(code),"errormsg":"\#(message)"}"#),
                      Self.ok(#"{"error":\#(code),"errormsg":"\#(message)"}"#)] {
            let (client, _) = client([reply])
            let error = await #expect(throws: SailthruError.self) { try await client.user(id: "a@b.c") }
            #expect(error?.kind == kind)
            #expect(error?.code == code)
            if kind == .signatureMismatch { #expect(error?.message == "signature mismatch: check api_secret") }
        }
    }

    @Test func nonJSONReplyIsInvalidResponse() async throws {
        let (client, _) = client([Self.ok("<html>oops</html>")])
        let error = await #expect(throws: SailthruError.self) { try await client.lists() }
        #expect(error?.kind == .invalidResponse)
    }

    @Test func waitsForJobWithGrowingIntervals() async throws {
        let transport = RecordingTransport([
            Self.ok(#"{"job_id":"j1","status":"pending"}"#), Self.ok(#"{"job_id":"j1","status":"running"}"#),
            Self.ok(#"{"job_id":"j1","status":"completed","export_url":"http://127.0.0.1:9/e.csv"}"#),
        ])
        let sleeps = SleepLog()
        let config = SailthruClient.Configuration(apiKey: "k", apiSecret: "s", baseURL: "http://127.0.0.1:9",
                                                  initialPollInterval: .seconds(2))
        let client = SailthruClient(configuration: config, transport: transport, sleep: { await sleeps.add($0) })
        let job = try await client.waitForJob(id: "j1")
        #expect(job.status == .completed)
        #expect(job.exportURL == "http://127.0.0.1:9/e.csv")
        #expect(await sleeps.all == [.seconds(2), .seconds(3)])
    }
}

actor SleepLog {
    var all: [Duration] = []
    func add(_ duration: Duration) { all.append(duration) }
}

@Suite struct SailthruExportTests {
    @Test func reRequestsWhenTheExportURLIsGoneAtDownload() async throws {
        func ok(_ json: String) -> Result<HTTPResponse, HTTPError> { .success(HTTPResponse(status: 200, body: Data(json.utf8))) }
        let transport = RecordingTransport([
            ok(#"{"job_id":"j1","status":"pending"}"#),
            ok(#"{"job_id":"j1","status":"completed","export_url":"http://127.0.0.1:9/j1.csv"}"#),
            .failure(HTTPError(kind: .status, url: "http://127.0.0.1:9/j1.csv", method: .get, status: 403, detail: "")),
            ok(#"{"job_id":"j2","status":"pending"}"#),
            ok(#"{"job_id":"j2","status":"completed","expired":true}"#),
            ok(#"{"job_id":"j3","status":"pending"}"#),
            ok(#"{"job_id":"j3","status":"completed","export_url":"http://127.0.0.1:9/j3.csv"}"#),
            ok("Profile Id,Email\r\n"),
        ])
        let client = SailthruClient(configuration: .init(apiKey: "k", apiSecret: "s", baseURL: "http://127.0.0.1:9",
                                                         exportRetries: 2),
                                    transport: transport, sleep: { _ in })
        let job = try await client.exportList("Newsletter", to: URL(fileURLWithPath: "/dev/null"))
        #expect(job.id == "j3")
        #expect(transport.requests.last?.url == "http://127.0.0.1:9/j3.csv")
    }

    @Test func writesUpdateFilesAsJSONLines() {
        let text = SailthruUserUpdate.jsonLines([
            SailthruUserUpdate(id: "a@x.com", lists: ["Old": false]),
            SailthruUserUpdate(id: "cust-1", key: "extid", vars: ["n": 1]),
        ])
        #expect(text == #"{"id":"a@x.com","lists":{"Old":0}}"# + "\n" + #"{"id":"cust-1","key":"extid","vars":{"n":1}}"# + "\n")
    }
}
