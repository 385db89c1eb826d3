import FerryCore
import FerryTransport
import Foundation
import Testing

/// Records the waits a client asks for, instead of waiting.
actor Sleeps {
    var all: [Duration] = []
    func add(_ d: Duration) { all.append(d) }
}

/// libcurl client against the sandbox over real sockets on 127.0.0.1.
@Suite(.timeLimit(.minutes(2))) struct CurlHTTPClientTests {
    func client(retry: RetryPolicy = RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(10)),
                maxResponseBytes: Int = 1 << 20, totalTimeout: Duration = .seconds(20),
                sleeps: Sleeps? = nil) -> CurlHTTPClient {
        let config = CurlHTTPClient.Configuration(connectTimeout: .seconds(5), totalTimeout: totalTimeout,
                                                  maxResponseBytes: maxResponseBytes, retry: retry)
        if let sleeps {
            return CurlHTTPClient(configuration: config, sleep: { await sleeps.add($0) }, random: { 0.5 })
        }
        return CurlHTTPClient(configuration: config)
    }

    func echo(_ response: HTTPResponse) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: response.body) as? [String: Any])
    }

    @Test func reusesOneConnectionPerHost() async throws {
        try await SailthruSandboxServer.with(seeded: false) { server in
            let http = client()
            let first = try echo(await http.send(HTTPRequest(method: .get, url: server.baseURL + "/_sandbox/echo")))
            let second = try echo(await http.send(HTTPRequest(method: .get, url: server.baseURL + "/_sandbox/echo")))
            #expect(first["connection"] as? String == second["connection"] as? String)
        }
    }

    @Test func postsFormsAndPercentEncodesPlus() async throws {
        try await SailthruSandboxServer.with(seeded: false) { server in
            let reply = try echo(await client().send(HTTPRequest(
                method: .post, url: server.baseURL + "/_sandbox/echo?q=" + FormEncoding.percentEncode("a+b@x.com"),
                body: .form([("email", "a+b@x.com"), ("name", "Zoë")]))))
            #expect(reply["body"] as? String == "email=a%2Bb%40x.com&name=Zo%C3%AB")
            #expect(reply["query"] as? String == "q=a%2Bb%40x.com")
            #expect(reply["content_type"] as? String == "application/x-www-form-urlencoded")
        }
    }

    @Test func streamsAMultipartFileUpload() async throws {
        try await SailthruSandboxServer.with(seeded: false) { server in
            let file = server.directory.url.appendingPathComponent("upload.jsonl")
            let line = #"{"email":"user@example.com","vars":{"n":1}}"# + "\n"
            let content = String(repeating: line, count: 50_000)  // ~2.3 MB
            try content.write(to: file, atomically: true, encoding: .utf8)
            let reply = try echo(await client().upload(
                [.text("json", "{}"), .file("file", path: file.path, contentType: "application/x-ndjson")],
                to: server.baseURL + "/_sandbox/echo"))
            let parts = try #require(reply["parts"] as? [[String: Any]])
            #expect(parts.map { $0["name"] as? String } == ["json", "file"])
            #expect(parts[1]["filename"] as? String == "upload.jsonl")
            #expect(parts[1]["bytes"] as? Int == content.utf8.count)
            #expect(parts[1]["md5"] as? String == MD5.hex(content))
        }
    }

    @Test func streamsADownloadToAFile() async throws {
        try await SailthruSandboxServer.with(seeded: false) { server in
            let file = server.directory.url.appendingPathComponent("download.bin")
            let response = try await client().download(
                HTTPRequest(method: .get, url: server.baseURL + "/_sandbox/bytes?n=3000000"), to: file)
            #expect(response.status == 200)
            #expect(response.body.isEmpty)
            let size = try FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int
            #expect(size == 3_000_000)
            #expect(!FileManager.default.fileExists(atPath: file.path + ".part"))
        }
    }

    /// Keeps what a download showed it since its last restart.
    final class RecordingObserver: DownloadObserver, @unchecked Sendable {
        private let lock = NSLock()
        private var _bytes = Data()
        private var _restarts = 0
        var bytes: Data { lock.withLock { _bytes } }
        var restarts: Int { lock.withLock { _restarts } }
        func restart() { lock.withLock { _bytes = Data(); _restarts += 1 } }
        func consume(_ bytes: UnsafeRawBufferPointer) { lock.withLock { _bytes.append(contentsOf: bytes) } }
    }

    @Test func aDownloadsObserverSeesExactlyTheBytesOfTheFile() async throws {
        try await SailthruSandboxServer.with(seeded: false) { server in
            let file = server.directory.url.appendingPathComponent("download.bin")
            let observer = RecordingObserver()
            _ = try await client().download(HTTPRequest(method: .get, url: server.baseURL + "/_sandbox/chunked?n=300000"),
                                            to: file, observer: observer)
            let written = try Data(contentsOf: file)
            #expect(written.count == 300_000)
            #expect(observer.bytes == written)
            #expect(observer.restarts == 1)
        }
    }

    @Test func aRetriedDownloadStartsItsObserverOver() async throws {
        // The first attempt's connection drops after part of a body; the retry gets the real (final) 404 for an
        // unknown export. The observer must hold the second attempt's bytes alone.
        try await SailthruSandboxServer.with(["--drop-first", "1"], seeded: false) { server in
            let observer = RecordingObserver()
            let error = await #expect(throws: HTTPError.self) {
                try await client(sleeps: Sleeps()).download(HTTPRequest(method: .get, url: server.baseURL + "/_export/none.csv"),
                                                            to: server.directory.url.appendingPathComponent("none.csv"), observer: observer)
            }
            #expect(error?.status == 404)
            #expect(error?.attempts == 2)
            #expect(observer.restarts == 2)
            #expect(String(decoding: observer.bytes, as: UTF8.self) == "export expired or unknown\n")
        }
    }

    @Test(arguments: ["/_sandbox/bytes?n=5000", "/_sandbox/chunked?n=50000"])
    func refusesOversizedBodies(path: String) async throws {
        try await SailthruSandboxServer.with(seeded: false) { server in
            let error = await #expect(throws: HTTPError.self) {
                try await client(maxResponseBytes: 1000).send(HTTPRequest(method: .get, url: server.baseURL + path))
            }
            #expect(error?.kind == .tooLarge)
            #expect(error?.attempts == 1)
        }
    }

    @Test func statusErrorsCarryTheBodyAndAreNotRetriedWhenFinal() async throws {
        try await SailthruSandboxServer.with(seeded: false) { server in
            let sleeps = Sleeps()
            let error = await #expect(throws: HTTPError.self) {
                try await client(sleeps: sleeps).send(
                    HTTPRequest(method: .get, url: server.baseURL + "/_sandbox/status?code=404&body=nope"))
            }
            #expect(error?.kind == .status)
            #expect(error?.status == 404)
            #expect(error?.body == "nope")
            #expect(await sleeps.all.isEmpty)
        }
    }

    @Test func honoursRetryAfterAndGivesUpAfterTheLastAttempt() async throws {
        try await SailthruSandboxServer.with(seeded: false) { server in
            let sleeps = Sleeps()
            let error = await #expect(throws: HTTPError.self) {
                try await client(retry: RetryPolicy(maxAttempts: 2), sleeps: sleeps).send(
                    HTTPRequest(method: .get, url: server.baseURL + "/_sandbox/status?code=503&retry_after=7"))
            }
            #expect(error?.status == 503)
            #expect(error?.attempts == 2)
            #expect(await sleeps.all == [.seconds(7)])
        }
    }

    @Test func retryBudgetStopsLongWaits() async throws {
        try await SailthruSandboxServer.with(seeded: false) { server in
            let sleeps = Sleeps()
            let policy = RetryPolicy(maxAttempts: 5, maxTotalWait: .seconds(5))
            let error = await #expect(throws: HTTPError.self) {
                try await client(retry: policy, sleeps: sleeps).send(
                    HTTPRequest(method: .get, url: server.baseURL + "/_sandbox/status?code=429&retry_after=60"))
            }
            #expect(error?.status == 429)
            #expect(await sleeps.all.isEmpty)
        }
    }

    @Test func retriesA500ThenGetsTheRealReply() async throws {
        try await SailthruSandboxServer.with(["--fail-first", "1"], seeded: false) { server in
            let sleeps = Sleeps()
            // The first API call gets the injected 500; the retry reaches the handler, which
            // answers 400 (no api_key): final, so not retried.
            let error = await #expect(throws: HTTPError.self) {
                try await client(sleeps: sleeps).send(HTTPRequest(method: .get, url: server.baseURL + "/user"))
            }
            #expect(error?.status == 400)
            #expect(error?.attempts == 2)
            #expect(await sleeps.all.count == 1)
        }
    }

    @Test func aConnectionDroppedMidBodyIsANetworkErrorAndRetried() async throws {
        try await SailthruSandboxServer.with(["--drop-first", "2"], seeded: false) { server in
            let error = await #expect(throws: HTTPError.self) {
                try await client(retry: .none).send(HTTPRequest(method: .get, url: server.baseURL + "/user"))
            }
            #expect(error?.kind == .network)
            #expect(error?.isRetryable == true)
            let sleeps = Sleeps()
            let retried = await #expect(throws: HTTPError.self) {
                try await client(sleeps: sleeps).send(HTTPRequest(method: .get, url: server.baseURL + "/user"))
            }
            // Second drop, then the real reply: 400 missing api_key.
            #expect(retried?.status == 400)
            #expect(await sleeps.all.count == 1)
        }
    }

    @Test func unreachableHostIsAConnectError() async throws {
        let sleeps = Sleeps()
        let error = await #expect(throws: HTTPError.self) {
            try await client(sleeps: sleeps).send(HTTPRequest(method: .get, url: "http://127.0.0.1:\(closedLocalPort())/user"))
        }
        #expect(error?.kind == .connect)
        #expect(error?.curlCode == 7)
        #expect(error?.attempts == 3)
        #expect(await sleeps.all.count == 2)
    }

    @Test func tlsIsVerifiedAndFailuresAreTLSErrors() async throws {
        try await SailthruSandboxServer.with(seeded: false) { server in
            // The sandbox speaks plain HTTP: a TLS handshake with it must fail, never fall back.
            let https = server.baseURL.replacingOccurrences(of: "http://", with: "https://") + "/_sandbox/echo"
            let handshake = await #expect(throws: HTTPError.self) {
                try await client(retry: .none).send(HTTPRequest(method: .get, url: https))
            }
            #expect(handshake?.kind == .tls)
            let badBundle = await #expect(throws: HTTPError.self) {
                try await CurlHTTPClient(configuration: .init(caFile: "/nonexistent/ca.pem", retry: .none))
                    .send(HTTPRequest(method: .get, url: https))
            }
            #expect(badBundle?.kind == .tls)
        }
    }

    @Test func slowResponsesTimeOut() async throws {
        try await SailthruSandboxServer.with(seeded: false) { server in
            let error = await #expect(throws: HTTPError.self) {
                try await client(retry: .none, totalTimeout: .milliseconds(300)).send(
                    HTTPRequest(method: .get, url: server.baseURL + "/_sandbox/slow?ms=3000"))
            }
            #expect(error?.kind == .timeout)
        }
    }

    @Test func cancellationStopsATransfer() async throws {
        try await SailthruSandboxServer.with(seeded: false) { server in
            let http = client(retry: .none)
            let task = Task { try await http.send(HTTPRequest(method: .get, url: server.baseURL + "/_sandbox/slow?ms=600000")) }
            try await Task.sleep(for: .milliseconds(200))
            task.cancel()
            // Without cancellation this would wait ten minutes; the suite's time limit fails it first.
            await #expect(throws: CancellationError.self) { try await task.value }
        }
    }

    @Test func errorsNeverContainSecrets() async throws {
        try await SailthruSandboxServer.with(seeded: false) { server in
            let url = server.baseURL + "/_sandbox/status?code=500&api_key=KEY123456&sig=SIG98765&password=PW-4567"
                + "&body=" + FormEncoding.percentEncode("echo SECRETVALUE Bearer tok-abcdef")
            let error = await #expect(throws: HTTPError.self) {
                try await client(retry: .none).send(HTTPRequest(
                    method: .get, url: url, headers: [(name: "Authorization", value: "Bearer tok-abcdef")],
                    secrets: ["SECRETVALUE"]))
            }
            let text = "\(try #require(error))"
            for secret in ["KEY123456", "SIG98765", "PW-4567", "SECRETVALUE", "tok-abcdef"] {
                #expect(!text.contains(secret), "\(secret) in \(text)")
            }
        }
    }
}
