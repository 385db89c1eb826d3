import FerryCore
import Testing
@testable import FerryTransport

/// A password is never offered to a server across a network without TLS; mail without credentials, or to this machine, may go plain.
@Suite struct MailTLSPolicyTests {
    func configuration(_ url: String, user: String? = nil, password: String? = nil) -> CurlMailSender.Configuration {
        .init(url: url, user: user, password: password.map { Secret(value: $0, variable: "FERRY_SMTP_PASSWORD") })
    }

    @Test func credentialsToAnotherHostRequireTLS() {
        #expect(CurlMailSender.sendsCredentialsAcrossANetwork(configuration("smtp://mail.example.com:587", user: "u", password: "p")))
        #expect(CurlMailSender.sendsCredentialsAcrossANetwork(configuration("smtp://10.0.0.5:25", password: "p")))
    }

    @Test func noCredentialsOrALoopbackServerMayGoPlain() {
        #expect(!CurlMailSender.sendsCredentialsAcrossANetwork(configuration("smtp://mail.example.com:587")))
        #expect(!CurlMailSender.sendsCredentialsAcrossANetwork(configuration("smtp://127.0.0.1:2525", user: "u", password: "p")))
        #expect(!CurlMailSender.sendsCredentialsAcrossANetwork(configuration("smtp://localhost:2525", user: "u", password: "p")))
    }
}
