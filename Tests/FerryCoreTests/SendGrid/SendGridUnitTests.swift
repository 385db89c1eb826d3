import Foundation
import Testing
@testable import FerryCore

@Suite struct SendGridBatcherTests {
    func contacts(_ n: Int, padding: Int = 0) -> [SendGridContact] {
        (0..<n).map { SendGridContact(email: "c\($0)@example.com", customFields: ["e1_T": .string(String(repeating: "x", count: padding))]) }
    }

    @Test func splitsByCount() throws {
        let (batches, oversized) = SendGridBatcher(maxContacts: 3).batches(contacts(7), listIDs: [])
        #expect(batches.map(\.indices) == [[0, 1, 2], [3, 4, 5], [6]])
        #expect(oversized.isEmpty)
        let json = try #require(try JSONValue.parse(batches[0].body).objectValue)
        #expect(json["contacts"]?.arrayValue?.count == 3)
        #expect(json["list_ids"] == nil)
    }

    @Test func splitsByEncodedBytesAndNeverExceedsTheCap() throws {
        let maxBytes = 10_000
        let input = contacts(25, padding: 1_000)
        let (batches, oversized) = SendGridBatcher(maxBytes: maxBytes).batches(input, listIDs: ["list-1"])
        #expect(oversized.isEmpty)
        #expect(batches.count > 1)
        #expect(batches.flatMap(\.indices) == Array(0..<25))
        for batch in batches {
            #expect(batch.body.count <= maxBytes)
            let json = try JSONValue.parse(batch.body)
            #expect(json["contacts"]?.arrayValue?.count == batch.indices.count)
            #expect(json["list_ids"] == ["list-1"])
        }
        // Packed: each batch but the last would overflow with the next contact.
        for (batch, next) in zip(batches, batches.dropFirst()) {
            let extra = Data(input[next.indices[0]].json.serialized().utf8).count + 1
            #expect(batch.body.count + extra > maxBytes)
        }
    }

    @Test func aContactLargerThanARequestIsSetAsideAlone() {
        var input = contacts(3)
        input[1].customFields["e1_T"] = .string(String(repeating: "y", count: 20_000))
        let (batches, oversized) = SendGridBatcher(maxBytes: 10_000).batches(input, listIDs: [])
        #expect(oversized == [1])
        #expect(batches.flatMap(\.indices) == [0, 2])
    }

    @Test func theStreamBuildsOneBodyAtATimeAndReportsOversizedContactsAsItMeetsThem() throws {
        var input = contacts(6, padding: 3_000)
        input[4].customFields["e1_T"] = .string(String(repeating: "y", count: 20_000))
        var stream = SendGridBatcher(maxBytes: 10_000).stream(input.makeIterator(), listIDs: ["l"])
        let next = stream.next()
        let first = try #require(next)
        #expect(first.indices == [0, 1, 2])
        #expect(stream.takeOversized().isEmpty)
        let following = stream.next()
        let second = try #require(following)
        #expect(second.indices == [3, 5])
        #expect(stream.takeOversized() == [4])
        #expect(stream.takeOversized().isEmpty)  // reported once
        #expect(stream.next() == nil)
        // The same cuts as building every batch at once.
        let (batches, oversized) = SendGridBatcher(maxBytes: 10_000).batches(input, listIDs: ["l"])
        #expect(batches == [first, second])
        #expect(oversized == [4])
    }

    @Test func defaultCapsAreSendGrids() {
        #expect(SendGridBatcher().maxContacts == 30_000)
        #expect(SendGridBatcher().maxBytes == 6 * 1024 * 1024)
    }
}

@Suite struct SendGridMembershipTests {
    @Test func valueListsConfiguredSegmentsInConfiguredOrder() {
        #expect(SendGridMembership.value(configured: ["newsletter", "vip"], memberOf: ["vip", "newsletter", "other"]) == "newsletter,vip")
        #expect(SendGridMembership.value(configured: ["newsletter", "vip"], memberOf: ["other"]) == "")
    }

    @Test func queryMatchesTheWholeIDOnly() {
        let q = SendGridMembership.queryDSL(field: "ferry_segments", segment: "vip")
        #expect(q.hasPrefix("SELECT contact_id, updated_at FROM contact_data WHERE "))
        #expect(q.contains("ferry_segments = 'vip'") && q.contains("LIKE '%,vip,%'"))
    }

    func synced(_ email: String, _ membership: String) -> SendGridSyncStore.Synced {
        SendGridSyncStore.Synced(email: email, membership: membership)
    }

    @Test func planSendsMembersClearsLeaversAndSkipsByReason() {
        let profiles: [Int64: Profile] = [
            1: Profile(id: "p1", properties: ["email": [.string("A@X.com")], "objectives": [.string("email-marketing")]]),
            2: Profile(id: "p2", properties: ["objectives": [.string("email-marketing")]]),
            3: Profile(id: "p3", properties: ["email": [.string("c@x.com")]]),
            4: Profile(id: "p4", properties: ["email": [.string("d@x.com")], "objectives": [.string("email-marketing")]]),
            5: Profile(id: "p5", properties: ["email": [.string("e@x.com")], "objectives": [.string("email-marketing")]]),
        ]
        let plan = SendGridExportPlan.make(
            configured: ["newsletter", "vip"], members: [1: ["vip", "newsletter"], 2: ["vip"], 3: ["vip"], 5: ["vip"]],
            profiles: profiles, synced: [4: synced("d@x.com", "vip"), 5: synced("e@x.com", "newsletter,vip")],
            outbox: [5], emailProperty: "email", objectives: ["email-marketing"])
        #expect(plan.items.map(\.profileID) == ["p5", "p1", "p4"])  // outbox first
        #expect(plan.items.map(\.membership) == ["vip", "newsletter,vip", ""])
        #expect(plan.items[1].email == "a@x.com")
        #expect(plan.items[2].isLeaver)
        #expect(plan.skippedByReason == ["no email": 1, "no consent": 1])
    }

    @Test func aLeaverNeverSentWithASegmentIsNotSent() {
        let plan = SendGridExportPlan.make(
            configured: ["vip"], members: [:], profiles: [1: Profile(id: "p1", properties: ["email": [.string("a@x.com")]])],
            synced: [1: synced("a@x.com", "")], outbox: [1], emailProperty: "email", objectives: [])
        #expect(plan.items.isEmpty)
        #expect(plan.obsoleteOutbox == [1])
    }

    @Test func withdrawnConsentClearsTheMembershipAndSendsNothingElse() {
        let plan = SendGridExportPlan.make(
            configured: ["vip"], members: [1: ["vip"]], profiles: [1: Profile(id: "p1", properties: ["email": [.string("a@x.com")]])],
            synced: [1: synced("a@x.com", "vip")], outbox: [], emailProperty: "email", objectives: ["email-marketing"])
        #expect(plan.items.map(\.membership) == [""])
        #expect(plan.items.first?.isLeaver == true)
        #expect(plan.skipped.isEmpty)
    }

    @Test func aChangedEmailAlsoClearsTheOldContact() {
        let plan = SendGridExportPlan.make(
            configured: ["vip"], members: [1: ["vip"]], profiles: [1: Profile(id: "p1", properties: ["email": [.string("new@x.com")]])],
            synced: [1: synced("old@x.com", "vip")], outbox: [], emailProperty: "email", objectives: [])
        #expect(plan.items.map(\.email) == ["new@x.com", "old@x.com"])
        #expect(plan.items.map(\.membership) == ["vip", ""])
        #expect(plan.items.map(\.recordsSync) == [true, false])
    }

    @Test func valuesConvertByFieldType() {
        #expect(SendGridExportExecutor.value([.number(42)], type: .number) == .number(42))
        #expect(SendGridExportExecutor.value([.string("golf"), .string("wine")], type: .text) == "golf,wine")
        #expect(SendGridExportExecutor.value([.string("n/a")], type: .number) == nil)
        let date = ISO8601.parse("2026-03-08T02:30:00Z")!
        #expect(SendGridExportExecutor.value([.date(date)], type: .date) == .string(ISO8601.format(date)))
    }
}

@Suite struct SendGridErrorTests {
    func client(_ replies: [Result<HTTPResponse, HTTPError>]) -> (SendGridClient, RecordingTransport) {
        let transport = RecordingTransport(replies)
        let config = SendGridClient.Configuration(apiKey: "SG.secret-key-123", apiKeyVariable: "SENDGRID_API_KEY",
                                                  baseURL: "http://127.0.0.1:9")
        return (SendGridClient(configuration: config, transport: transport, sleep: { _ in }), transport)
    }

    static func failed(_ status: Int, _ body: String) -> Result<HTTPResponse, HTTPError> {
        .failure(HTTPError(kind: .status, url: "http://127.0.0.1:9/x", method: .get, status: status, body: body, detail: ""))
    }

    static func ok(_ json: String, status: Int = 200) -> Result<HTTPResponse, HTTPError> {
        .success(HTTPResponse(status: status, body: Data(json.utf8)))
    }

    @Test(arguments: [
        (400, SendGridError.Kind.badRequest), (401, .unauthorized), (403, .forbidden), (404, .notFound),
        (413, .payloadTooLarge), (429, .rateLimited), (500, .server), (418, .otherStatus),
    ])
    func statusesMapToKinds(status: Int, kind: SendGridError.Kind) async {
        let (client, _) = client([Self.failed(status, #"{"errors":[{"field":"name","message":"bad name SG.secret-key-123"}]}"#)])
        let error = await #expect(throws: SendGridError.self) { _ = try await client.lists() }
        #expect(error?.kind == kind)
        #expect(error?.details.first?.field == "name")
        #expect(!"\(String(describing: error))".contains("SG.secret-key-123"))
    }

    @Test func unauthorizedNamesTheVariableNotTheKey() async {
        let (client, _) = client([Self.failed(401, #"{"errors":[{"field":null,"message":"authorization required"}]}"#)])
        let error = await #expect(throws: SendGridError.self) { _ = try await client.fieldDefinitions() }
        #expect(error?.isFatal == true)
        #expect(error?.message.contains("${SENDGRID_API_KEY}") == true)
    }

    @Test func singleErrorFormIsRead() {
        let error = SendGridError.fromResponse(status: 404, body: Data(#"{"error":"segment not found"}"#.utf8), endpoint: "GET /x")
        #expect(error.details == [.init(field: nil, message: "segment not found")])
        #expect(error.message.contains("segment not found"))
    }

    @Test func requestsCarryBearerAndJSON() async throws {
        let (client, transport) = client([Self.ok(#"{"job_id":"j1"}"#, status: 202)])
        let id = try await client.upsertContacts(body: Data(#"{"contacts":[{"email":"a@x.com"}]}"#.utf8))
        #expect(id == "j1")
        let request = try #require(transport.requests.first)
        #expect(request.method == .put)
        #expect(request.url == "http://127.0.0.1:9/v3/marketing/contacts")
        #expect(request.headers.contains { $0.name == "Authorization" && $0.value == "Bearer SG.secret-key-123" })
        #expect(request.secrets.contains("SG.secret-key-123"))
        guard case .bytes(_, let type) = request.body else { Issue.record("no body"); return }
        #expect(type == "application/json")
    }

    @Test func fieldTypeConflictIsReportedClearly() async {
        let (client, _) = client([])
        let known = [SendGridFieldDefinition(id: "e1_N", name: "Lifetime_Spend", fieldType: "Number")]
        let error = await #expect(throws: SendGridError.self) {
            _ = try await client.ensureField(name: "lifetime_spend", kind: .text, known: known)
        }
        #expect(error?.kind == .fieldTypeConflict)
        #expect(error?.message.contains("Number") == true && error?.message.contains("Text") == true)
    }

    @Test func errorsFileIsRead() {
        let errors = SendGridClient.parseErrorsFile("email,error\r\n\"bad,one\",\"invalid \"\"email\"\"\"\r\nx@y,too long\r\n")
        #expect(errors == [.init(email: "bad,one", message: "invalid \"email\""), .init(email: "x@y", message: "too long")])
    }

    @Test func aJobDoneSoonIsPolledAgainAfterATenthOfASecondThenLessOften() async throws {
        let pending = Self.ok(#"{"id":"j1","status":"pending","results":{}}"#)
        let transport = RecordingTransport([pending, pending, pending, Self.ok(#"{"id":"j1","status":"completed","results":{}}"#)])
        let waits = WaitLog()
        let client = SendGridClient(configuration: .init(apiKey: "SG.k", baseURL: "http://127.0.0.1:9"), transport: transport,
                                    sleep: { await waits.add($0) })
        #expect(try await client.waitForImport(id: "j1").status == .completed)
        #expect(await waits.durations == [.milliseconds(100), .milliseconds(150), .milliseconds(225)])
    }

    @Test func importJobPollingReadsResults() async throws {
        let (client, _) = client([
            Self.ok(#"{"id":"j1","status":"pending","results":{}}"#),
            Self.ok(#"{"id":"j1","status":"errored","results":{"requested_count":2,"created_count":1,"updated_count":0,"errored_count":1,"errors":[{"email":"bad","message":"invalid email"}]}}"#),
        ])
        let job = try await client.waitForImport(id: "j1")
        #expect(job.status == .errored)
        #expect(job.createdCount == 1 && job.erroredCount == 1)
        #expect(job.errors == [.init(email: "bad", message: "invalid email")])
    }
}

/// The waits a client asked for, in order.
actor WaitLog {
    var durations: [Duration] = []
    func add(_ duration: Duration) { durations.append(duration) }
}
