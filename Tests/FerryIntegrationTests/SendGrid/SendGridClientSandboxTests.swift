import FerryCore
import FerryTransport
import Foundation
import Testing

/// `SendGridClient` (FerryCore) ↔ `ferry-sandbox sendgrid` over 127.0.0.1.
@Suite struct SendGridClientSandboxTests {
    typealias Server = SendGridSandboxServer

    func client(_ server: Server, apiKey: String = Server.apiKey) -> SendGridClient {
        let http = CurlHTTPClient(configuration: .init(connectTimeout: .seconds(5), totalTimeout: .seconds(30),
                                                       retry: RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(20))))
        return SendGridClient(configuration: .init(apiKey: apiKey, apiKeyVariable: "SENDGRID_API_KEY", baseURL: server.baseURL,
                                                   initialPollInterval: .milliseconds(50), maxPollInterval: .milliseconds(200),
                                                   jobTimeout: .seconds(20)),
                              transport: http)
    }

    @Test func badKeyIsUnauthorizedWithoutTheKeyInTheMessage() async throws {
        try await Server.with { server in
            let error = await #expect(throws: SendGridError.self) {
                _ = try await client(server, apiKey: "SG.wrong-key-value").lists()
            }
            #expect(error?.kind == .unauthorized)
            #expect(error?.message.contains("${SENDGRID_API_KEY}") == true)
            #expect(!"\(String(describing: error))".contains("SG.wrong-key-value"))
        }
    }

    @Test func fieldsListsSegmentsAndAContactImport() async throws {
        try await Server.with { server in
            let api = client(server)
            let field = try await api.ensureField(name: "ferry_segments", kind: .text, known: try await api.fieldDefinitions())
            let again = try await api.ensureField(name: "FERRY_SEGMENTS", kind: .text, known: try await api.fieldDefinitions())
            #expect(field.id == again.id)
            let conflict = await #expect(throws: SendGridError.self) {
                _ = try await api.ensureField(name: "ferry_segments", kind: .number, known: try await api.fieldDefinitions())
            }
            #expect(conflict?.kind == .fieldTypeConflict)
            let list = try await api.ensureList(name: "ferry-contacts")
            #expect(try await api.ensureList(name: "ferry-contacts").id == list.id)
            let query = SendGridMembership.queryDSL(field: "ferry_segments", segment: "vip")
            let segment = try await api.ensureSegment(name: "ferry: vip", queryDSL: query, known: try await api.segments())
            #expect(try await api.ensureSegment(name: "ferry: vip", queryDSL: query, known: try await api.segments()).id == segment.id)

            let contacts = [SendGridContact(email: "Ann@Example.com", reserved: ["first_name": "Ann"], customFields: [field.id: "vip"]),
                            SendGridContact(email: "not-an-email", customFields: [field.id: "vip"]),
                            SendGridContact(email: "bo@example.com", customFields: [field.id: "vip-gold"])]
            let (batches, _) = SendGridBatcher().batches(contacts, listIDs: [list.id])
            let job = try await api.waitForImport(id: try await api.upsertContacts(body: batches[0].body))
            #expect(job.status == .errored)
            #expect(job.createdCount == 2)
            #expect(job.errors.map(\.email) == ["not-an-email"])
            var linkedOnly = job  // as SendGrid answers: counts and an errors file, no inline list
            linkedOnly.errors = []
            #expect(try await api.importErrors(of: linkedOnly).map(\.email) == ["not-an-email"])
            let segments = try server.segments()
            #expect(segments["ferry: vip"]?["members"] as? [String] == ["ann@example.com"])
            #expect(try server.contacts()["ann@example.com"]?["lists"] as? [String] == ["ferry-contacts"])
        }
    }

    @Test func limitsAndUnknownFieldsAreRejected() async throws {
        try await Server.with { server in
            let api = client(server)
            let unknown = await #expect(throws: SendGridError.self) {
                _ = try await api.upsertContacts(body: Data(#"{"contacts":[{"email":"a@x.com","custom_fields":{"zz_T":"x"}}]}"#.utf8))
            }
            #expect(unknown?.kind == .badRequest)
            #expect(unknown?.details.first?.field == "contacts[0].custom_fields.zz_T")
            let score = try await api.createField(name: "score", kind: .number)
            let wrongType = await #expect(throws: SendGridError.self) {
                _ = try await api.upsertContacts(body: Data(#"{"contacts":[{"email":"a@x.com","custom_fields":{"\#(score.id)":"lots"}}]}"#.utf8))
            }
            #expect(wrongType?.kind == .badRequest)
            let longName = String(repeating: "n", count: 51)
            let tooLong = await #expect(throws: SendGridError.self) {
                _ = try await api.upsertContacts(body: Data(#"{"contacts":[{"email":"a@x.com","first_name":"\#(longName)"}]}"#.utf8))
            }
            #expect(tooLong?.details.first?.field == "contacts[0].first_name")
            let many = (0...30_000).map { #"{"email":"c\#($0)@x.com"}"# }.joined(separator: ",")
            let tooMany = await #expect(throws: SendGridError.self) {
                _ = try await api.upsertContacts(body: Data(#"{"contacts":[\#(many)]}"#.utf8))
            }
            #expect(tooMany?.kind == .badRequest)
            let big = String(repeating: "x", count: 6 * 1024 * 1024)
            let tooBig = await #expect(throws: SendGridError.self) {
                _ = try await api.upsertContacts(body: Data(#"{"contacts":[{"email":"a@x.com","first_name":"\#(big)"}]}"#.utf8))
            }
            #expect(tooBig?.kind == .payloadTooLarge)
        }
    }
}

/// SendGrid's `X-RateLimit-Reset` on a 429: a UNIX time in the docs, seconds-until-reset in one spec.
@Suite struct SendGridRateLimitResetTests {
    @Test func resetAsEpochOrAsSecondsSetsTheWait() {
        let policy = RetryPolicy()
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let epoch = policy.delay(attempt: 1, status: 429, headers: ["x-ratelimit-reset": "1800000003"], now: now, random: 0.5)
        #expect(epoch == .milliseconds(3020))
        let seconds = policy.delay(attempt: 1, status: 429, headers: ["x-ratelimit-reset": "2"], now: now, random: 0.5)
        #expect(seconds == .milliseconds(2020))
        // Only a 429 waits for the reset; a 500 backs off as usual.
        let other = policy.delay(attempt: 1, status: 500, headers: ["x-ratelimit-reset": "1800000030"], now: now, random: 0.5)
        #expect(other == .milliseconds(500))
    }
}
