import FerryCore
import Foundation
import Testing
@testable import FerryTransport

@Suite struct RetryPolicyTests {
    let policy = RetryPolicy(maxAttempts: 5, baseDelay: .milliseconds(500), maxDelay: .seconds(8), jitter: 0.2)
    let now = Date(timeIntervalSince1970: 1_800_000_000.25)

    @Test func backsOffExponentiallyWithBoundedJitter() {
        #expect(policy.delay(attempt: 1, status: 500, headers: [:], now: now, random: 0.5) == .milliseconds(500))
        #expect(policy.delay(attempt: 2, status: nil, headers: [:], now: now, random: 0.5) == .seconds(1))
        #expect(policy.delay(attempt: 3, status: 502, headers: [:], now: now, random: 0.5) == .seconds(2))
        #expect(policy.delay(attempt: 10, status: 500, headers: [:], now: now, random: 0.5) == .seconds(8))
        #expect(policy.delay(attempt: 1, status: 500, headers: [:], now: now, random: 0) == .milliseconds(400))
        #expect(policy.delay(attempt: 1, status: 500, headers: [:], now: now, random: 0.999_999) <= .milliseconds(600))
    }

    @Test func waitsUntilSailthrusRateLimitResetOn429() {
        // Reset is a UNIX time (not a number of seconds): wait until it, plus a small margin.
        let delay = policy.delay(attempt: 1, status: 429, headers: ["x-rate-limit-reset": "1800000003"], now: now, random: 0.5)
        #expect(delay == .milliseconds(2750 + 20))
        let past = policy.delay(attempt: 1, status: 429, headers: ["x-rate-limit-reset": "1799999990"], now: now, random: 0.5)
        #expect(past == .milliseconds(20))
    }

    @Test func honoursRetryAfterSecondsAndDates() {
        #expect(policy.delay(attempt: 1, status: 429, headers: ["retry-after": "12"], now: now, random: 0.5) == .seconds(12))
        let date = policy.delay(attempt: 1, status: 503, headers: ["retry-after": "Fri, 15 Jan 2027 08:00:10 GMT"],
                                now: Date(timeIntervalSince1970: 1_800_000_000), random: 0.5)
        #expect(date == .seconds(10))
        // On other statuses Retry-After is capped by maxDelay.
        #expect(policy.delay(attempt: 1, status: 500, headers: ["retry-after": "100"], now: now, random: 0.5) == .seconds(8))
    }

    @Test func classifiesCurlCodes() {
        #expect(CurlHTTPClient.kind(of: CURLcodeValue.resolve) == .dns)
        #expect(CurlHTTPClient.kind(of: CURLcodeValue.connect) == .connect)
        #expect(CurlHTTPClient.kind(of: CURLcodeValue.timeout) == .timeout)
        #expect(CurlHTTPClient.kind(of: CURLcodeValue.peerVerification) == .tls)
        #expect(CurlHTTPClient.kind(of: CURLcodeValue.gotNothing) == .network)
        #expect(CurlHTTPClient.kind(of: CURLcodeValue.fileSize) == .tooLarge)
    }

    @Test func errorsAreRetryableOnlyWhenTryingAgainCanHelp() {
        func error(_ kind: HTTPError.Kind, _ status: Int? = nil) -> HTTPError {
            HTTPError(kind: kind, url: "http://127.0.0.1/", method: .get, status: status, detail: "")
        }
        #expect(error(.connect).isRetryable && error(.network).isRetryable && error(.timeout).isRetryable)
        #expect(error(.status, 429).isRetryable && error(.status, 503).isRetryable)
        #expect(!error(.status, 400).isRetryable && !error(.status, 404).isRetryable)
        #expect(!error(.tls).isRetryable && !error(.tooLarge).isRetryable && !error(.local).isRetryable)
    }

    @Test func unreachablePortFailsFastAsConnectError() async throws {
        // Port 1 on loopback: nothing listens there in a test environment.
        let client = CurlHTTPClient(configuration: .init(retry: .none))
        let error = await #expect(throws: HTTPError.self) {
            try await client.send(HTTPRequest(method: .get, url: "http://127.0.0.1:1/?api_key=abcdef123"))
        }
        #expect(error?.kind == .connect)
        #expect(error?.description.contains("abcdef123") == false)
    }

    @Test func rejectsNonHTTPURLsAndMissingUploadFiles() async throws {
        let client = CurlHTTPClient(configuration: .init(retry: .none))
        let scheme = await #expect(throws: HTTPError.self) {
            try await client.send(HTTPRequest(method: .get, url: "file:///etc/passwd"))
        }
        #expect(scheme?.kind == .local)
        let missing = await #expect(throws: HTTPError.self) {
            try await client.upload([.file("file", path: "/nonexistent/x.csv")], to: "http://127.0.0.1:1/")
        }
        #expect(missing?.kind == .local)
    }
}
