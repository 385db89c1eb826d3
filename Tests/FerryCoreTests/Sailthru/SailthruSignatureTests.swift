import Foundation
import Testing
@testable import FerryCore

/// Pins every worked example of research/sailthru.md §1.2.
@Suite struct SailthruSignatureTests {
    struct Example: Sendable, CustomTestStringConvertible {
        let apiKey: String, secret: String, json: String, hashed: String, md5: String
        var testDescription: String { "\(apiKey)/\(md5)" }
    }

    static let examples: [Example] = [
        Example(apiKey: "abc123key", secret: "s3cr3t",
                json: #"{"id": "jane@example.com", "lists": {"Newsletter": 1}}"#,
                hashed: #"s3cr3tabc123keyjson{"id": "jane@example.com", "lists": {"Newsletter": 1}}"#,
                md5: "ba08fd343ad855dff56a2d71cb9cb22a"),
        Example(apiKey: "abc123key", secret: "s3cr3t", json: #"{"id": "jane@example.com"}"#,
                hashed: #"s3cr3tabc123keyjson{"id": "jane@example.com"}"#,
                md5: "2db353107baa16dcb2fc5afb3e59d04f"),
        Example(apiKey: "0123456789abcdef0123456789abcdef", secret: "topsecret",
                json: #"{"id":"jane@example.com","key":"email","lists":{"Newsletter":1,"Old List":0},"vars":{"first_name":"Jane","signup_date":"2024-01-15"}}"#,
                hashed: "topsecret0123456789abcdef0123456789abcdefjson"
                    + #"{"id":"jane@example.com","key":"email","lists":{"Newsletter":1,"Old List":0},"vars":{"first_name":"Jane","signup_date":"2024-01-15"}}"#,
                md5: "b449a6ba0338d9679eb7640717ea8eaf"),
        Example(apiKey: "123key", secret: "abcsecret", json: #"{"id":"neil@example.com"}"#,
                hashed: #"abcsecret123keyjson{"id":"neil@example.com"}"#,
                md5: "fa5c79189b708199f3cf69f1cf8f7928"),
        // A key sorting after "json": the order is not api_key, format, json.
        Example(apiKey: "zzkey", secret: "sec", json: #"{"id":"x@y.z"}"#,
                hashed: #"secjsonzzkey{"id":"x@y.z"}"#, md5: "977ed19dd21ecb29bc2c16d7a1815872"),
    ]

    @Test(arguments: examples)
    func jsonModeWorkedExample(_ example: Example) {
        let values = [example.apiKey, "json", example.json]
        #expect(SailthruSignature.signatureString(values: values, secret: example.secret) == example.hashed)
        #expect(SailthruSignature.sign(apiKey: example.apiKey, json: example.json, secret: example.secret) == example.md5)
    }

    @Test func legacyModeWorkedExample() {
        // {api_key, format, list, vars: {a: "x", b: [1, 2]}, flag: true} signed by Python (True).
        let values = ["abc123key", "json", "Newsletter", "x", "1", "2", "True"]
        #expect(SailthruSignature.signatureString(values: values, secret: "s3cr3t") == "s3cr3t12NewsletterTrueabc123keyjsonx")
        #expect(SailthruSignature.sign(values: values, secret: "s3cr3t") == "a8338e30fe0703c4860063651ee5b3d3")
    }

    @Test func sortsByUTF8BytesNotUnicodeOrder() {
        // "é" (C3 A9) sorts after "z" (7A) by bytes; "Z" before "a".
        #expect(SailthruSignature.signatureString(values: ["é", "z", "a", "Z"], secret: "") == "Zazé")
        // U+FF21 (EF BC A1) vs U+1F600 (F0 9F 98 80): UTF-16 would order them the other way.
        #expect(SailthruSignature.signatureString(values: ["😀", "Ａ"], secret: "") == "Ａ😀")
    }

    @Test func clientSignsTheExactJSONItSends() {
        let client = SailthruClient(configuration: .init(apiKey: "abc123key", apiSecret: "s3cr3t"),
                                    transport: RecordingTransport())
        let fields = client.signedFields(["id": "a+b@x.com", "vars": ["name": "Zoë/1"]])
        #expect(fields.map(\.0) == ["api_key", "format", "json", "sig"])
        #expect(fields[2].1 == #"{"id":"a+b@x.com","vars":{"name":"Zoë/1"}}"#)
        #expect(fields[3].1 == MD5.hex("s3cr3tabc123keyjson" + fields[2].1))
    }
}

/// A transport that records requests and answers with canned responses.
final class RecordingTransport: HTTPTransport, @unchecked Sendable {
    private let lock = NSLock()
    private var _requests: [HTTPRequest] = []
    private var replies: [Result<HTTPResponse, HTTPError>]

    init(_ replies: [Result<HTTPResponse, HTTPError>] = []) { self.replies = replies }

    var requests: [HTTPRequest] { lock.withLock { _requests } }

    func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        let reply = lock.withLock { () -> Result<HTTPResponse, HTTPError>? in
            _requests.append(request)
            return replies.isEmpty ? nil : replies.removeFirst()
        }
        return try (reply ?? .success(HTTPResponse(status: 200, body: Data("{}".utf8)))).get()
    }

    func download(_ request: HTTPRequest, to file: URL, observer: (any DownloadObserver)?) async throws -> HTTPResponse {
        try await send(request)
    }
}
