import FerryCore
import FerryTransport
import Foundation
import Testing

/// `SailthruClient` (FerryCore, pure-Swift MD5) ↔ `ferry-sandbox sailthru` (OpenSSL MD5) over 127.0.0.1.
@Suite struct SailthruClientSandboxTests {
    typealias Server = SailthruSandboxServer

    func client(_ server: Server, apiKey: String = Server.apiKey, secret: String = Server.secret,
                baseURL: String? = nil, retry: RetryPolicy = RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(20)),
                maxResponseBytes: Int = 1 << 20) -> SailthruClient {
        let http = CurlHTTPClient(configuration: .init(connectTimeout: .seconds(5), totalTimeout: .seconds(20),
                                                       maxResponseBytes: maxResponseBytes, retry: retry))
        return SailthruClient(
            configuration: .init(apiKey: apiKey, apiSecret: secret, baseURL: baseURL ?? server.baseURL,
                                 initialPollInterval: .milliseconds(50), maxPollInterval: .milliseconds(200),
                                 jobTimeout: .seconds(20)),
            transport: http)
    }

    /// The error of `body`, checked to be a SailthruError free of every secret.
    func sailthruError(_ body: () async throws -> Void) async -> SailthruError? {
        do {
            try await body()
            Issue.record("expected a SailthruError")
            return nil
        } catch let error as SailthruError {
            let text = "\(error) \(String(reflecting: error))"
            for secret in [Server.apiKey, Server.secret, "wrong-secret-value"] {
                #expect(!text.contains(secret), "secret in \(text)")
            }
            return error
        } catch {
            Issue.record("unexpected \(error)")
            return nil
        }
    }

    // MARK: - /user

    @Test func getsASeededUserWhoseEmailHasAPlus() async throws {
        try await Server.with { server in
            let user = try await client(server).user(id: "a+b@example.com", key: "email")
            #expect(user.keys["email"] == "a+b@example.com")
            #expect(user.vars["first_name"] == "Ann-Beth")
            #expect(user.lists.keys.sorted() == ["Newsletter"])
            #expect(user.optoutEmail == "none")
        }
    }

    @Test func postsAUserThenReadsItBackWithUnicodeVarsAndLists() async throws {
        try await Server.with { server in
            let api = client(server)
            try await api.saveUser(SailthruUserUpdate(
                id: "new+tag@example.com", key: "email", keys: ["extid": "cust-9"],
                vars: ["first_name": "Zoë", "city": "Zürich/Nord", "kanji": "健二", "score": 42, "tags": ["a", "b"]],
                lists: ["Newsletter": true, "Fresh List": true], optout: "blast"))
            try await api.saveUser(SailthruUserUpdate(id: "new+tag@example.com", lists: ["Fresh List": false]))
            let user = try await api.user(id: "cust-9", key: "extid")
            #expect(user.keys["email"] == "new+tag@example.com")
            #expect(user.vars["first_name"] == "Zoë")
            #expect(user.vars["city"] == "Zürich/Nord")
            #expect(user.vars["kanji"] == "健二")
            #expect(user.vars["score"] == 42)
            #expect(user.vars["tags"] == ["a", "b"])
            #expect(user.lists.keys.sorted() == ["Newsletter"])
            #expect(user.optoutEmail == "blast")
            // A signup time in Sailthru's RFC 2822 style.
            #expect(user.lists["Newsletter"]?.range(of: #"^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}$"#,
                                                     options: .regularExpression) != nil)
        }
    }

    @Test func deletesAUser() async throws {
        try await Server.with { server in
            let api = client(server)
            try await api.deleteUser(id: "no.lists@example.com", key: "email")
            let error = await sailthruError { _ = try await api.user(id: "no.lists@example.com", key: "email") }
            #expect(error?.kind == .userNotFound)
        }
    }

    @Test func emptyMapsArriveAsArraysAndDecode() async throws {
        try await Server.with(seeded: false) { server in
            let api = client(server)
            try await api.saveUser(SailthruUserUpdate(id: "bare@example.com"))
            let user = try await api.user(id: "bare@example.com", key: "email")
            #expect(user.vars.isEmpty && user.lists.isEmpty)
        }
    }

    @Test func unknownUserIsUserNotFound() async throws {
        try await Server.with { server in
            let error = await sailthruError { _ = try await client(server).user(id: "nobody@example.com", key: "email") }
            #expect(error?.kind == .userNotFound)
            #expect(error?.httpStatus == 400)
            #expect(error?.message.hasPrefix("User not found with email") == true)
        }
    }

    @Test func errorMappings() async throws {
        try await Server.with { server in
            let api = client(server)
            let missing = await sailthruError { _ = try await api.user(id: "", key: "email") }
            #expect(missing?.kind == .missingParameter && missing?.code == 2 && missing?.httpStatus == 400)

            let invalidEmail = await sailthruError { try await api.saveUser(SailthruUserUpdate(id: "praj")) }
            #expect(invalidEmail?.kind == .invalidEmail && invalidEmail?.code == 11)

            let other = await sailthruError {
                try await api.saveUser(SailthruUserUpdate(id: "jane.doe@example.com", vars: ["1bad": "x"]))
            }
            #expect(other?.kind == .other && other?.code == 99 && other?.message == "Invalid var name: 1bad")

            let unknownList = await sailthruError { _ = try await api.list(named: "No Such List") }
            #expect(unknownList?.kind == .unknownList && unknownList?.code == 15)

            let badKey = await sailthruError {
                _ = try await client(server, apiKey: "ffffffffffffffffffffffffffffffff").lists()
            }
            #expect(badKey?.kind == .invalidAPIKey && badKey?.code == 3 && badKey?.httpStatus == 401)

            let badSecret = await sailthruError { _ = try await client(server, secret: "wrong-secret-value").lists() }
            #expect(badSecret?.kind == .signatureMismatch && badSecret?.code == 5 && badSecret?.httpStatus == 401)
            #expect(badSecret?.message == "signature mismatch: check api_secret")
        }
    }

    @Test func anUnencodedPlusBreaksTheSignature() async throws {
        // Research notes §7: a raw `+` decodes as a space on the server, so json and sig disagree.
        try await Server.with { server in
            let json = #"{"id":"a+b@example.com"}"#
            let sig = SailthruSignature.sign(apiKey: Server.apiKey, json: json, secret: Server.secret)
            let fields = [("api_key", Server.apiKey), ("format", "json"), ("json", json), ("sig", sig)]
            let good = server.baseURL + "/user?" + FormEncoding.encode(fields)
            let http = CurlHTTPClient(configuration: .init(retry: .none))
            let response = try await http.send(HTTPRequest(method: .get, url: good))
            // Every API reply carries Sailthru's three rate-limit headers.
            #expect(response.header("X-Rate-Limit-Limit") == "18000")
            #expect(response.header("X-Rate-Limit-Remaining") == "17999")
            let reset = try #require(response.header("X-Rate-Limit-Reset").flatMap(Int.init))
            // The end of the current one-minute window: a minute boundary close to now (a slow machine may pass it).
            #expect(reset % 60 == 0 && abs(Double(reset) - Date().timeIntervalSince1970) <= 120)
            let bad = good.replacingOccurrences(of: "%2B", with: "+")
            let error = await #expect(throws: HTTPError.self) { try await http.send(HTTPRequest(method: .get, url: bad)) }
            #expect(error?.status == 401)
            #expect(error?.body?.contains(#""error":5"#) == true)
        }
    }

    @Test func errorsSentWithHTTP200AreStillErrors() async throws {
        try await Server.with(["--errors-with-200"]) { server in
            let error = await sailthruError { _ = try await client(server).list(named: "Nope") }
            #expect(error?.kind == .unknownList)
            #expect(error?.httpStatus == 200)
        }
    }

    // MARK: - /list

    @Test func createsReadsListsAndDeletesLists() async throws {
        try await Server.with { server in
            let api = client(server)
            let created = try await api.saveList(SailthruListDefinition(name: "Weekly / Digest", primary: true, type: .normal))
            #expect(created.name == "Weekly / Digest" && created.isPrimary == true && created.type == .normal)
            let smart = try await api.saveList(SailthruListDefinition(
                name: "US Newsletter 2", type: .smart, query: ["source_list": "Newsletter", "vars": ["country": "US"]]))
            #expect(smart.type == .smart)
            #expect(try await api.list(named: "US Newsletter 2").count == 2)  // jane + zoe
            #expect(try await api.list(named: "Newsletter").count == 3)

            let all = try await api.lists(primaryOnly: false)
            #expect(Set(all.map(\.name)).isSuperset(of: ["Newsletter", "VIP Customers", "Weekly / Digest", "US Newsletter 2"]))
            #expect(all.allSatisfy { $0.id != nil })
            let primary = try await api.lists(primaryOnly: true)
            #expect(Set(primary.map(\.name)) == ["Newsletter", "Weekly / Digest"])

            try await api.deleteList(named: "Weekly / Digest")
            let error = await sailthruError { try await api.deleteList(named: "Weekly / Digest") }
            #expect(error?.kind == .unknownList)
        }
    }

    // MARK: - /job

    @Test func updateJobAppliesJSONLinesWithRemovalsAndCreatesUnknownUsers() async throws {
        try await Server.with { server in
            let api = client(server)
            let file = server.directory.url.appendingPathComponent("update.jsonl")
            let lines = [
                #"{"email":"jane.doe@example.com","vars":{"first_name":"Janet"},"lists":{"VIP Customers":0,"Lapsed":1}}"#,
                #"{"id":"cust-1004","key":"extid","vars":{"tier":"gold"}}"#,
                #"{"email":"brand.new+x@example.com","vars":{"first_name":"Bräd"},"lists":{"Newsletter":1}}"#,
                #"{"email":"not-an-email"}"#,
            ]
            try lines.joined(separator: "\n").write(to: file, atomically: true, encoding: .utf8)
            let started = try await api.startUpdateJob(file: file, update: ["vars": ["source": "ferry"]])
            #expect(started.status == .pending)
            let done = try await api.waitForJob(id: started.id)
            #expect(done.status == .completed)

            let jane = try await api.user(id: "jane.doe@example.com", key: "email")
            #expect(jane.vars["first_name"] == "Janet")
            #expect(jane.vars["source"] == "ferry")
            #expect(jane.lists.keys.sorted() == ["Lapsed", "Newsletter"])
            let kenji = try await api.user(id: "kenji@example.jp", key: "email")
            #expect(kenji.vars["tier"] == "gold")
            let brad = try await api.user(id: "brand.new+x@example.com", key: "email")
            #expect(brad.vars["first_name"] == "Bräd")
            #expect(brad.lists.keys.sorted() == ["Newsletter"])
        }
    }

    @Test func importJobLoadsACSVIntoAList() async throws {
        try await Server.with { server in
            let api = client(server)
            let file = server.directory.url.appendingPathComponent("import.csv")
            try "email,first_name,city\nimp1@example.com,Ida,\"Oslo, NO\"\njane.doe@example.com,,\n"
                .write(to: file, atomically: true, encoding: .utf8)
            let job = try await api.startImportJob(list: "Imported", file: file)
            _ = try await api.waitForJob(id: job.id)
            let ida = try await api.user(id: "imp1@example.com", key: "email")
            #expect(ida.vars["city"] == "Oslo, NO")
            #expect(ida.lists.keys.contains("Imported"))
            #expect(try await api.list(named: "Imported").count == 2)
        }
    }

    @Test func exportsAListToACSVFile() async throws {
        try await Server.with { server in
            let api = client(server)
            let file = server.directory.url.appendingPathComponent("newsletter.csv")
            let job = try await api.exportList("Newsletter", to: file)
            #expect(job.status == .completed)
            let text = try String(contentsOf: file, encoding: .utf8)
            let rows = text.split(separator: "\r\n")
            let header = rows.first.map { $0.split(separator: ",").map(String.init) } ?? []
            #expect(Array(header.prefix(2)) == ["Profile Id", "Email"])
            #expect(header.contains("first_name") && header.contains("country"))
            #expect(rows.count == 4)
            #expect(text.contains("a+b@example.com"))
            #expect(text.contains("Zoë"))
        }
    }

    @Test func reRequestsAnExpiredExport() async throws {
        try await Server.with(["--expire-exports", "1"]) { server in
            let api = client(server)
            let file = server.directory.url.appendingPathComponent("vip.csv")
            let job = try await api.exportList("VIP Customers", vars: ["first_name"], to: file)
            let text = try String(contentsOf: file, encoding: .utf8)
            #expect(text.hasPrefix("Profile Id,Email,"))
            #expect(text.contains("健二"))
            #expect(!text.contains("country"))  // only the chosen var
            // The first job expired; this is the second.
            let first = try await api.job(id: job.id)
            #expect(first.exportURL != nil)
        }
    }

    @Test func exportOfUnknownListFails() async throws {
        try await Server.with { server in
            let file = server.directory.url.appendingPathComponent("x.csv")
            let error = await sailthruError { _ = try await client(server).exportList("Ghost", to: file) }
            #expect(error?.kind == .unknownList)
        }
    }

    // MARK: - Reliability

    @Test func survivesA500ThenSucceeds() async throws {
        try await Server.with(["--fail-first", "1"]) { server in
            let user = try await client(server).user(id: "jane.doe@example.com", key: "email")
            #expect(user.vars["first_name"] == "Jane")
        }
    }

    @Test func survivesADroppedConnectionMidBody() async throws {
        try await Server.with(["--drop-first", "1"]) { server in
            let user = try await client(server).user(id: "jane.doe@example.com", key: "email")
            #expect(user.keys["extid"] == "cust-1001")
        }
    }

    @Test func randomFaultsAndLatencyAreSurvivedWithRetries() async throws {
        try await Server.with(["--fail-rate", "0.3", "--drop-connections", "0.2", "--latency", "50", "--seed", "7"]) { server in
            let api = client(server, retry: RetryPolicy(maxAttempts: 10, baseDelay: .milliseconds(5), maxDelay: .milliseconds(20)))
            let started = ContinuousClock.now
            for _ in 0..<8 {
                let user = try await api.user(id: "zoe@example.org", key: "email")
                #expect(user.vars["first_name"] == "Zoë")
            }
            #expect(ContinuousClock.now - started >= .milliseconds(400))  // at least 8 × 50 ms latency
        }
    }

    @Test func droppedConnectionWithoutRetriesIsATransportError() async throws {
        try await Server.with(["--drop-first", "1"]) { server in
            let error = await sailthruError { _ = try await client(server, retry: .none).user(id: "jane.doe@example.com", key: "email") }
            #expect(error?.kind == .transport)
            #expect(error?.transport?.kind == .network)
        }
    }

    @Test func waitsForTheRateLimitResetThenSucceeds() async throws {
        try await Server.with(["--rate-limit", "GET /user=2", "--rate-window", "1"]) { server in
            let api = client(server, retry: RetryPolicy(maxAttempts: 4, maxTotalWait: .seconds(5)))
            let started = ContinuousClock.now
            for _ in 0..<5 {
                _ = try await api.user(id: "zoe@example.org", key: "email")
            }
            // 5 calls at 2 per 1-second window need at least two resets.
            #expect(ContinuousClock.now - started >= .milliseconds(900))
        }
    }

    @Test func rateLimitWithoutRetriesIsError43() async throws {
        try await Server.with(["--rate-limit", "GET /list=1", "--rate-window", "86400"]) { server in
            let api = client(server, retry: .none)
            _ = try await api.lists()
            let error = await sailthruError { _ = try await api.lists() }
            #expect(error?.kind == .rateLimited)
            #expect(error?.code == 43)
            #expect(error?.httpStatus == 429)
            #expect(error?.message.contains("Too many GET requests this minute to /list API") == true)
        }
    }

    @Test func nonJSONReplyIsInvalidResponse() async throws {
        try await Server.with(seeded: false) { server in
            let error = await sailthruError { _ = try await client(server, baseURL: server.baseURL + "/_sandbox/html").lists() }
            #expect(error?.kind == .invalidResponse)
        }
    }

    @Test func oversizedReplyIsATransportError() async throws {
        try await Server.with { server in
            let error = await sailthruError { _ = try await client(server, maxResponseBytes: 100).lists() }
            #expect(error?.kind == .transport)
            #expect(error?.transport?.kind == .tooLarge)
        }
    }

    @Test func unreachableHostIsATransportError() async throws {
        try await Server.with(seeded: false) { server in
            let error = await sailthruError {
                _ = try await client(server, baseURL: "http://127.0.0.1:\(closedLocalPort())", retry: .none).lists()
            }
            #expect(error?.kind == .transport)
            #expect(error?.transport?.kind == .connect)
            #expect(error?.transport?.url.contains(Server.apiKey) == false)
        }
    }

    @Test func stateSurvivesARestart() async throws {
        let first = try Server.start()
        defer { first.stop() }
        try await client(first).saveUser(SailthruUserUpdate(id: "kept@example.com", vars: ["n": 7], lists: ["Kept": true]))
        first.process.stop()
        let second = try Server.start(directory: first.directory)
        defer { second.process.stop() }
        let user = try await client(second).user(id: "kept@example.com", key: "email")
        #expect(user.vars["n"] == 7)
        #expect(user.lists.keys.sorted() == ["Kept"])
    }

    @Test func sandboxPersistsStateAndDumpsIt() async throws {
        try await Server.with { server in
            try await client(server).saveUser(SailthruUserUpdate(id: "persisted@example.com", vars: ["n": 1]))
            let dump = try server.dump()
            let users = try #require(dump["users"] as? [[String: Any]])
            #expect(users.contains { ($0["keys"] as? [String: String])?["email"] == "persisted@example.com" })
            let lists = try #require(dump["lists"] as? [[String: Any]])
            #expect(lists.contains { $0["name"] as? String == "Newsletter" })
        }
    }
}
