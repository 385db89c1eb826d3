import Foundation

// FerryCore reaches the network only through `HTTPTransport`; FerryTransport implements it on
// libcurl, and tests can substitute their own. Everything here is plain values, no I/O.

/// An HTTP method ferry uses.
public enum HTTPMethod: String, Sendable, Hashable {
    case get = "GET"
    case post = "POST"
    case put = "PUT"
    case patch = "PATCH"
    case delete = "DELETE"
}

/// One part of a `multipart/form-data` body: a text field, or a file streamed from disk.
public struct MultipartPart: Sendable, Hashable {
    /// What the part carries.
    public enum Content: Sendable, Hashable {
        case text(String)
        /// A file read from disk while sending (never whole into memory).
        case file(path: String, filename: String, contentType: String)
    }

    public var name: String
    public var content: Content

    public init(name: String, content: Content) {
        self.name = name
        self.content = content
    }

    /// A text field.
    public static func text(_ name: String, _ value: String) -> MultipartPart {
        MultipartPart(name: name, content: .text(value))
    }

    /// A file part streamed from `path`.
    public static func file(_ name: String, path: String, filename: String? = nil,
                            contentType: String = "application/octet-stream") -> MultipartPart {
        MultipartPart(name: name, content: .file(
            path: path, filename: filename ?? URL(fileURLWithPath: path).lastPathComponent, contentType: contentType))
    }
}

/// A request body.
public enum HTTPBody: Sendable, Hashable {
    case empty
    case bytes(Data, contentType: String)
    case multipart([MultipartPart])

    /// An `application/x-www-form-urlencoded` body of `fields`, in order.
    public static func form(_ fields: [(String, String)]) -> HTTPBody {
        .bytes(Data(FormEncoding.encode(fields).utf8), contentType: "application/x-www-form-urlencoded")
    }
}

/// One HTTP request, with everything a transport needs to send and to report it safely.
public struct HTTPRequest: Sendable {
    public var method: HTTPMethod
    /// The full URL, query included (use `FormEncoding.encode` for the query).
    public var url: String
    public var headers: [(name: String, value: String)]
    public var body: HTTPBody
    /// Responses larger than this fail with `HTTPError.Kind.tooLarge`; nil uses the transport's default.
    public var maxResponseBytes: Int?
    /// Literal secret values to scrub from every error and log line, on top of the named parameters.
    public var secrets: [String]

    public init(method: HTTPMethod, url: String, headers: [(name: String, value: String)] = [],
                body: HTTPBody = .empty, maxResponseBytes: Int? = nil, secrets: [String] = []) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.maxResponseBytes = maxResponseBytes
        self.secrets = secrets
    }
}

/// A received HTTP response (a 2xx; other statuses arrive as `HTTPError` with kind `.status`).
public struct HTTPResponse: Sendable {
    public var status: Int
    /// Header names lowercased; a repeated header keeps its last value.
    public var headers: [String: String]
    /// The body; empty for downloads, which went to a file.
    public var body: Data

    public init(status: Int, headers: [String: String] = [:], body: Data = Data()) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A header by case-insensitive name.
    public func header(_ name: String) -> String? { headers[name.lowercased()] }
}

/// A transport failure, typed so callers can decide what to retry, with secrets already removed.
public struct HTTPError: Error, Sendable, CustomStringConvertible {
    /// What went wrong.
    public enum Kind: String, Sendable, Hashable {
        case dns, connect, tls, timeout
        /// The connection broke while sending or receiving (reset, closed mid-body, empty reply).
        case network
        /// The server answered with a non-2xx status; see `status` and `body`.
        case status
        /// The response exceeded the maximum size.
        case tooLarge
        case cancelled
        /// A local problem (bad URL, unreadable upload file, unwritable download path).
        case local
    }

    public var kind: Kind
    /// The URL, with secret parameters replaced by `REDACTED`.
    public var url: String
    public var method: HTTPMethod
    /// The HTTP status, for `.status` (and any response that was received).
    public var status: Int?
    /// Response headers (lowercased names) when a response was received.
    public var headers: [String: String]
    /// The response body (at most 64 KiB kept), redacted, when a response was received.
    public var body: String?
    /// libcurl's `CURLcode`, when libcurl reported the failure.
    public var curlCode: Int?
    /// libcurl's error buffer or another human-readable detail, redacted.
    public var detail: String
    /// How many attempts were made before giving up.
    public var attempts: Int

    public init(kind: Kind, url: String, method: HTTPMethod, status: Int? = nil, headers: [String: String] = [:],
                body: String? = nil, curlCode: Int? = nil, detail: String, attempts: Int = 1) {
        self.kind = kind
        self.url = url
        self.method = method
        self.status = status
        self.headers = headers
        self.body = body
        self.curlCode = curlCode
        self.detail = detail
        self.attempts = attempts
    }

    /// Whether trying again may succeed: network-level failures, 5xx and 429.
    public var isRetryable: Bool {
        switch kind {
        case .dns, .connect, .timeout, .network: return true
        case .status: return status.map { $0 == 429 || $0 >= 500 } ?? false
        case .tls, .tooLarge, .cancelled, .local: return false
        }
    }

    public var description: String {
        var text = "\(method.rawValue) \(url): "
        switch kind {
        case .status: text += "HTTP \(status ?? 0)"
        default: text += kind.rawValue
        }
        if let curlCode { text += " (curl \(curlCode))" }
        if !detail.isEmpty { text += ": \(detail)" }
        if let body, !body.isEmpty { text += " body: \(body.prefix(500))" }
        if attempts > 1 { text += " after \(attempts) attempts" }
        return text
    }
}

/// The network, as FerryCore sees it.
public protocol HTTPTransport: Sendable {
    /// Sends `request` and returns the 2xx response with its body; throws `HTTPError` otherwise.
    func send(_ request: HTTPRequest) async throws -> HTTPResponse

    /// Sends `request` and streams a 2xx body into `file` (replaced); the returned response has an empty body.
    /// `observer`, when given, sees the bytes as they are written, so that what it works out needs no second read.
    func download(_ request: HTTPRequest, to file: URL, observer: (any DownloadObserver)?) async throws -> HTTPResponse
}

/// Sees a download's body as it is written to its file (a digest of it, say).
///
/// Called in order from the transfer's thread, never from two at once: each attempt starts with ``restart()``, so
/// after a successful download the observer has seen exactly the bytes of the file, once.
public protocol DownloadObserver: AnyObject, Sendable {
    /// A new attempt: forget what earlier attempts wrote (a retry writes the file afresh).
    func restart()
    /// The next bytes written to the file.
    func consume(_ bytes: UnsafeRawBufferPointer)
}

extension DownloadObserver {
    /// Starts over and consumes the whole of `file`, a megabyte at a time (``ByteStream``): for a download made without
    /// seeing it, or a file kept from one.
    public func consume(contentsOf file: URL) throws {
        restart()
        let stream = try ByteStream(path: file.path)
        while try stream.withChunk({ chunk in
            consume(UnsafeRawBufferPointer(chunk))
            return chunk.count
        }) {}
    }
}

extension HTTPTransport {
    /// `download(_:to:observer:)` with no one watching.
    public func download(_ request: HTTPRequest, to file: URL) async throws -> HTTPResponse {
        try await download(request, to: file, observer: nil)
    }

    /// Posts a `multipart/form-data` body whose file parts stream from disk.
    public func upload(_ parts: [MultipartPart], to url: String, headers: [(name: String, value: String)] = [],
                       secrets: [String] = []) async throws -> HTTPResponse {
        try await send(HTTPRequest(method: .post, url: url, headers: headers, body: .multipart(parts), secrets: secrets))
    }
}

/// Percent-encoding with the RFC 3986 unreserved set, for query strings and form bodies alike.
///
/// `URLComponents` leaves `+` alone, which servers decode as a space; Sailthru's `a+b@x.com`
/// must travel as `a%2Bb%40x.com` or its signature breaks.
public enum FormEncoding {
    /// Encodes every byte outside `A-Z a-z 0-9 - . _ ~` as `%XX` (UTF-8).
    public static func percentEncode(_ text: String) -> String {
        var out = [UInt8]()
        out.reserveCapacity(text.utf8.count)
        let hex = Array("0123456789ABCDEF".utf8)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
                 UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(byte)
            default:
                out.append(UInt8(ascii: "%"))
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0x0F)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `name=value&…`, each side percent-encoded.
    public static func encode(_ fields: [(String, String)]) -> String {
        fields.map { "\(percentEncode($0.0))=\(percentEncode($0.1))" }.joined(separator: "&")
    }

    /// Decodes `application/x-www-form-urlencoded` text (`+` is a space); nil on malformed escapes.
    public static func decode(_ text: String) -> [(String, String)]? {
        var result: [(String, String)] = []
        for pair in text.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = unescape(parts[0]) else { return nil }
            guard let value = parts.count > 1 ? unescape(parts[1]) : "" else { return nil }
            result.append((name, value))
        }
        return result
    }

    private static func unescape(_ text: Substring) -> String? {
        text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
    }
}

/// Removes secrets from URLs and free text before they reach an error, a log or the history.
public struct Redactor: Sendable {
    /// Query/form parameter names whose values are always secret.
    public static let secretParameters: Set<String> = [
        "api_key", "api_secret", "apikey", "secret", "sig", "signature", "password", "passwd", "pass",
        "passphrase", "token", "access_token", "refresh_token", "client_secret", "auth", "authorization",
    ]
    /// What secrets are replaced with.
    public static let placeholder = "REDACTED"

    /// Literal values to remove wherever they appear.
    public var secrets: [String]
    /// Secrets shorter than this are removed only where they stand alone: inside words they would
    /// shred innocent text, yet a short password must not leak where it appears by itself.
    static let wordSafeLength = 4

    public init(secrets: [String] = []) {
        self.secrets = secrets.filter { !$0.isEmpty }
    }

    /// `text` with secret parameter values, bearer/basic credentials, URL user-info and literal secrets removed.
    public func redact(_ text: String) -> String {
        var result = text
        // Longest first so a secret containing another is replaced whole.
        for secret in secrets.sorted(by: { $0.count > $1.count }) {
            for form in Set([secret, FormEncoding.percentEncode(secret)]) {
                if form.count >= Self.wordSafeLength {
                    result = result.replacingOccurrences(of: form, with: Self.placeholder)
                } else {
                    let pattern = "(?<![\\p{L}\\p{N}])" + NSRegularExpression.escapedPattern(for: form) + "(?![\\p{L}\\p{N}])"
                    result = Self.replace(pattern, in: result, with: NSRegularExpression.escapedTemplate(for: Self.placeholder))
                }
            }
        }
        result = Self.redactParameters(result)
        // Also percent-encoded (`Bearer%20…`) or form-encoded (`Bearer+…`), as in a logged URL.
        result = Self.replace(#"(?i)(?<![a-z])(bearer|basic)(\s+|%20|\+)[A-Za-z0-9._~+/=-]+"#, in: result, with: "$1$2\(Self.placeholder)")
        result = Self.replace(#"(?i)(\b[a-z][a-z0-9+.-]*://)[^/@\s:]*:[^/@\s]*@"#, in: result, with: "$1\(Self.placeholder)@")
        return result
    }

    private static func redactParameters(_ text: String) -> String {
        let names = secretParameters.sorted().map(NSRegularExpression.escapedPattern(for:)).joined(separator: "|")
        // key=value in URLs and forms; "key": "value" in JSON bodies.
        var result = replace(#"(?i)([?&;\s"']|^)("# + names + #")=([^&\s"'#]*)"#, in: text, with: "$1$2=\(placeholder)")
        result = replace(#"(?i)("("# + names + #")"\s*:\s*)"(?:[^"\\]|\\.)*""#, in: result, with: "$1\"\(placeholder)\"")
        return result
    }

    private static func replace(_ pattern: String, in text: String, with template: String) -> String {
        guard let regex = try? NSRegularExpression(pattern: pattern) else { return text }
        let range = NSRange(text.startIndex..., in: text)
        return regex.stringByReplacingMatches(in: text, range: range, withTemplate: template)
    }
}
