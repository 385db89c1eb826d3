import CCurl
import FerryCore
import Foundation
import Logging

/// `MailSender` on libcurl's SMTP: STARTTLS whenever the server offers it, AUTH with the configured
/// user and password, one message per connection.
///
/// The blocking transfer runs on a GCD thread, like `CurlHTTPClient`'s; libcurl dot-stuffs the upload.
public struct CurlMailSender: MailSender {
    /// Where and how to send.
    public struct Configuration: Sendable {
        /// `smtp://host:587` (STARTTLS when offered) or `smtps://host:465` (TLS from the start).
        public var url: String
        public var user: String?
        public var password: Secret?
        public var connectTimeout: Duration
        /// The whole exchange.
        public var totalTimeout: Duration
        /// A PEM bundle to trust instead of the system CA bundle (TLS is verified either way).
        public var caFile: String?

        public init(url: String, user: String? = nil, password: Secret? = nil, connectTimeout: Duration = .seconds(10),
                    totalTimeout: Duration = .seconds(60), caFile: String? = nil) {
            self.url = url
            self.user = user
            self.password = password
            self.connectTimeout = connectTimeout
            self.totalTimeout = totalTimeout
            self.caFile = caFile
        }

        /// The settings from `FERRY_SMTP_URL`, `FERRY_SMTP_USER` and `FERRY_SMTP_PASSWORD`; nil without a URL.
        public static func fromEnvironment(_ environment: [String: String]) -> Configuration? {
            guard let url = environment["FERRY_SMTP_URL"], !url.isEmpty else { return nil }
            let user = environment["FERRY_SMTP_USER"].flatMap { $0.isEmpty ? nil : $0 }
            let password = environment["FERRY_SMTP_PASSWORD"].flatMap { $0.isEmpty ? nil : Secret(value: $0, variable: "FERRY_SMTP_PASSWORD") }
            return Configuration(url: url, user: user, password: password)
        }
    }

    public let configuration: Configuration

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// The server URL as logs may show it: no user-info, no password.
    public var safeURL: String { redactor.redact(configuration.url) }

    private var redactor: Redactor {
        Redactor(secrets: [configuration.password?.value].compactMap { $0 })
    }

    public func send(_ message: MailMessage) async throws {
        guard let components = URLComponents(string: configuration.url),
              let scheme = components.scheme?.lowercased(), ["smtp", "smtps"].contains(scheme), components.host != nil else {
            throw MailError(server: safeURL, detail: "FERRY_SMTP_URL must look like smtp://host:587 or smtps://host:465")
        }
        guard !message.to.isEmpty else { throw MailError(server: safeURL, detail: "no recipients") }
        for address in [message.from] + message.to where address.contains(where: { $0.isNewline || $0 == "<" || $0 == ">" }) {
            throw MailError(server: safeURL, detail: "'\(address)' is not a plain email address")
        }
        let upload = MailUpload(data: Data(message.rendered().utf8))
        let configuration = configuration
        let outcome: (code: CURLcode, reply: Int, message: String) = await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(returning: Self.run(message, upload: upload, configuration: configuration))
            }
        }
        guard outcome.code == CURLE_OK else {
            let detail = outcome.message.isEmpty ? String(cString: curl_easy_strerror(outcome.code)) : outcome.message
            throw MailError(server: safeURL, detail: redactor.redact(detail), replyCode: outcome.reply == 0 ? nil : outcome.reply)
        }
    }

    /// Whether a user or password would be sent to a host other than this machine.
    static func sendsCredentialsAcrossANetwork(_ configuration: Configuration) -> Bool {
        guard configuration.user != nil || configuration.password != nil else { return false }
        let host = URLComponents(string: configuration.url)?.host?.lowercased() ?? ""
        return !(host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127."))
    }

    /// One blocking SMTP exchange; called on a GCD thread.
    private static func run(_ message: MailMessage, upload: MailUpload,
                            configuration: Configuration) -> (code: CURLcode, reply: Int, message: String) {
        guard let easy = CurlEasy() else { return (CURLE_FAILED_INIT, 0, "curl_easy_init failed") }
        easy.reset()
        let h = easy.handle
        let setup = CurlSetup(easy)

        setup.string(CURLOPT_URL, configuration.url)
        setup.string(CURLOPT_PROTOCOLS_STR, "smtp,smtps")
        setup.long(CURLOPT_NOSIGNAL, 1)
        // STARTTLS when the server offers it; smtps:// is TLS from the first byte. With credentials, TLS is
        // required: someone on the path could strip the STARTTLS offer and read the password. Loopback
        // (a local relay, the sandbox) never leaves the machine.
        setup.long(CURLOPT_USE_SSL, Int((Self.sendsCredentialsAcrossANetwork(configuration) ? CURLUSESSL_ALL : CURLUSESSL_TRY).rawValue))
        setup.verifiedTLS(caFile: configuration.caFile, connectTimeout: configuration.connectTimeout,
                          totalTimeout: configuration.totalTimeout)
        if let user = configuration.user { setup.string(CURLOPT_USERNAME, user) }
        if let password = configuration.password { setup.string(CURLOPT_PASSWORD, password.value) }
        setup.string(CURLOPT_MAIL_FROM, "<\(message.from)>")
        var recipients: UnsafeMutablePointer<curl_slist>?
        for address in message.to { recipients = curl_slist_append(recipients, "<\(address)>") }
        defer { curl_slist_free_all(recipients) }
        setup.check(ccurl_easy_setopt_pointer(h, CURLOPT_MAIL_RCPT, UnsafeMutableRawPointer(recipients)))
        setup.long(CURLOPT_UPLOAD, 1)
        setup.check(ccurl_easy_setopt_read_function(h) { buffer, size, count, context in
            guard let buffer, let context else { return 0 }
            return Unmanaged<MailUpload>.fromOpaque(context).takeUnretainedValue().read(into: buffer, capacity: size * count)
        })
        setup.check(ccurl_easy_setopt_pointer(h, CURLOPT_READDATA, Unmanaged.passUnretained(upload).toOpaque()))
        guard setup.failure == CURLE_OK else { return (setup.failure, 0, easy.errorMessage) }

        let code = withExtendedLifetime(upload) { curl_easy_perform(h) }
        var reply = 0
        _ = ccurl_easy_getinfo_long(h, CURLINFO_RESPONSE_CODE, &reply)
        return (code, reply, easy.errorMessage)
    }
}

/// The message bytes curl's read callback hands out in pieces.
///
/// `@unchecked Sendable`: created before the transfer and read only by that transfer's one thread.
final class MailUpload: @unchecked Sendable {
    private let data: Data
    private var offset = 0

    init(data: Data) { self.data = data }

    func read(into buffer: UnsafeMutablePointer<CChar>, capacity: Int) -> Int {
        let count = min(capacity, data.count - offset)
        guard count > 0 else { return 0 }
        data.withUnsafeBytes { bytes in
            UnsafeMutableRawPointer(buffer).copyMemory(from: bytes.baseAddress! + offset, byteCount: count)
        }
        offset += count
        return count
    }
}
