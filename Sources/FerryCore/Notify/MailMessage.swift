import Foundation

// FerryCore sends mail only through `MailSender`; FerryTransport implements it on libcurl's SMTP.
// Building the message is plain value work here, so it is unit-tested without a server.

/// One email, ready to be rendered as an RFC 5322 message.
public struct MailMessage: Sendable, Hashable {
    /// The envelope and `From:` address.
    public var from: String
    /// The envelope recipients, also listed in `To:`.
    public var to: [String]
    public var subject: String
    /// Plain text; lines are joined with CRLF when rendered.
    public var body: String
    public var date: Date
    /// Without angle brackets, e.g. `run-12.1700000000.4f2a@ferry`.
    public var messageID: String

    public init(from: String, to: [String], subject: String, body: String, date: Date, messageID: String) {
        self.from = from
        self.to = to
        self.subject = subject
        self.body = body
        self.date = date
        self.messageID = messageID
    }

    /// The message as sent: headers and body with CRLF line ends; no line starts the SMTP
    /// end-of-data marker because the transport dot-stuffs (libcurl does it for SMTP uploads).
    public func rendered() -> String {
        let isASCII = body.unicodeScalars.allSatisfy(\.isASCII)
        let lines = Self.lines(of: body)
        let encodedBody: String
        let transferEncoding: String
        if isASCII, lines.allSatisfy({ $0.utf8.count <= 998 }) {
            encodedBody = lines.joined(separator: "\r\n")
            transferEncoding = "7bit"
        } else {
            encodedBody = QuotedPrintable.encode(lines)
            transferEncoding = "quoted-printable"
        }
        let headers = [
            "Date: " + Self.rfc5322Date(date),
            "From: " + Self.headerSafe(from),
            "To: " + to.map(Self.headerSafe).joined(separator: ", "),
            "Subject: " + Self.encodedWords(Self.headerSafe(subject)),
            "Message-ID: <\(Self.headerSafe(messageID))>",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: " + transferEncoding,
            // RFC 3834: tells vacation responders not to answer a machine.
            "Auto-Submitted: auto-generated",
        ]
        return headers.joined(separator: "\r\n") + "\r\n\r\n" + encodedBody + "\r\n"
    }

    /// `Mon, 23 Nov 2026 12:02:18 +0000` (RFC 5322 §3.3), always in UTC.
    public static func rfc5322Date(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        return formatter.string(from: date)
    }

    /// `text` as is when it is printable ASCII, else RFC 2047 `=?UTF-8?B?…?=` words of at most 75 characters,
    /// split between characters (never inside one), folded onto continuation lines.
    public static func encodedWords(_ text: String) -> String {
        if text.unicodeScalars.allSatisfy({ $0.isASCII && $0.value >= 0x20 && $0.value < 0x7F }) { return text }
        // 75 - "=?UTF-8?B?".count - "?=".count = 63 base64 characters: 45 bytes of UTF-8.
        var words: [String] = []
        var chunk: [UInt8] = []
        for character in text {
            let bytes = Array(String(character).utf8)
            if chunk.count + bytes.count > 45, !chunk.isEmpty {
                words.append("=?UTF-8?B?" + Data(chunk).base64EncodedString() + "?=")
                chunk = []
            }
            chunk += bytes
        }
        if !chunk.isEmpty { words.append("=?UTF-8?B?" + Data(chunk).base64EncodedString() + "?=") }
        return words.joined(separator: "\r\n ")
    }

    /// A header value with line breaks turned into spaces, so a value cannot add headers.
    static func headerSafe(_ value: String) -> String {
        String(value.map { $0.isNewline ? " " : $0 })
    }

    static func lines(of text: String) -> [String] {
        text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
            .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }
}

/// RFC 2045 quoted-printable, for bodies that are not plain short-lined ASCII.
enum QuotedPrintable {
    /// Encodes `lines` (without line ends), joining them with CRLF and soft-breaking at 76 characters.
    static func encode(_ lines: [String]) -> String {
        lines.map(encodeLine).joined(separator: "\r\n")
    }

    private static func encodeLine(_ line: String) -> String {
        let bytes = Array(line.utf8)
        var out = ""
        var width = 0
        for (index, byte) in bytes.enumerated() {
            let isLast = index == bytes.count - 1
            let literal = (byte >= 33 && byte <= 126 && byte != 61) || ((byte == 32 || byte == 9) && !isLast)
            let piece = literal ? String(UnicodeScalar(byte)) : String(format: "=%02X", byte)
            if width + piece.count > 75 {
                out += "=\r\n"
                width = 0
            }
            out += piece
            width += piece.count
        }
        return out
    }
}

/// Sends one message to its recipients; FerryTransport implements it on libcurl's SMTP.
public protocol MailSender: Sendable {
    /// Delivers `message` to every address in `message.to`, or throws a `MailError`.
    func send(_ message: MailMessage) async throws
}

/// Why a mail was not sent, for the log and the run's notes (never holding the password).
public struct MailError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The server URL without credentials.
    public var server: String
    public var detail: String
    /// The SMTP reply code, when the server refused.
    public var replyCode: Int?

    public init(server: String, detail: String, replyCode: Int? = nil) {
        self.server = server
        self.detail = detail
        self.replyCode = replyCode
    }

    public var description: String {
        "mail to \(server) failed: \(detail)" + (replyCode.map { " (SMTP \($0))" } ?? "")
    }
}
