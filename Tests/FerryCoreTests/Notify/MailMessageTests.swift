import Foundation
import Testing
@testable import FerryCore

@Suite struct MailMessageTests {
    func message(subject: String = "[ferry] failed: c / export vip (run 3)", body: String = "Status: failed\nMore: ferry history show 3")
        -> MailMessage {
        MailMessage(from: "ferry@example.com", to: ["ops@example.com", "dev@example.com"], subject: subject, body: body,
                    date: Date(timeIntervalSince1970: 1_795_435_338), messageID: "ferry.run-3.1.ab@example.com")
    }

    @Test func renderedMessageHasRFC5322HeadersAndOnlyCRLFLineEnds() {
        let text = message().rendered()
        #expect(!text.replacingOccurrences(of: "\r\n", with: "").contains("\n"))
        #expect(!text.replacingOccurrences(of: "\r\n", with: "").contains("\r"))
        let (head, body) = split(text)
        #expect(head.contains("Date: Mon, 23 Nov 2026 12:02:18 +0000"))
        #expect(head.contains("From: ferry@example.com"))
        #expect(head.contains("To: ops@example.com, dev@example.com"))
        #expect(head.contains("Subject: [ferry] failed: c / export vip (run 3)"))
        #expect(head.contains("Message-ID: <ferry.run-3.1.ab@example.com>"))
        #expect(head.contains("Content-Type: text/plain; charset=utf-8"))
        #expect(head.contains("Content-Transfer-Encoding: 7bit"))
        #expect(body == ["Status: failed", "More: ferry history show 3", ""])
    }

    @Test func dateIsRFC5322InUTC() {
        #expect(MailMessage.rfc5322Date(Date(timeIntervalSince1970: 0)) == "Thu, 01 Jan 1970 00:00:00 +0000")
    }

    @Test func nonASCIISubjectBecomesUTF8EncodedWordsOfAtMost75CharactersThatDecodeBack() throws {
        let subject = "[ferry] échec: connexion « été » / 日本語のリスト " + String(repeating: "ü", count: 60)
        let (head, _) = split(message(subject: subject).rendered())
        let start = try #require(head.firstIndex { $0.hasPrefix("Subject: ") })
        var words = [String(head[start].dropFirst("Subject: ".count))]
        words += head[(start + 1)...].prefix { $0.hasPrefix(" ") }.map { String($0.dropFirst()) }
        #expect(words.count > 1)
        var decoded = Data()
        for word in words {
            #expect(word.count <= 75)
            #expect(word.hasPrefix("=?UTF-8?B?") && word.hasSuffix("?="))
            decoded += try #require(Data(base64Encoded: String(word.dropFirst(10).dropLast(2))))
        }
        #expect(String(decoding: decoded, as: UTF8.self) == subject)
    }

    @Test func aLineBreakInAHeaderValueCannotAddAHeader() {
        let (head, _) = split(message(subject: "x\r\nBcc: victim@example.com\nX-Evil: 1").rendered())
        #expect(!head.contains { $0.hasPrefix("Bcc:") || $0.hasPrefix("X-Evil:") })
    }

    @Test func aNonASCIIBodyIsQuotedPrintableWithShortLinesAndDecodesBack() {
        let body = "Erreur: la ligne « 12 » n'a pas d'adresse = rejetée\n" + String(repeating: "ß", count: 120) + "\n.leading dot"
        let (head, encoded) = split(message(body: body).rendered())
        #expect(head.contains("Content-Transfer-Encoding: quoted-printable"))
        #expect(encoded.allSatisfy { $0.utf8.count <= 76 })
        #expect(decodeQuotedPrintable(encoded) == body + "\n")
    }

    /// Header lines and body lines of a rendered message.
    func split(_ text: String) -> ([String], [String]) {
        let parts = text.components(separatedBy: "\r\n\r\n")
        return (parts[0].components(separatedBy: "\r\n"), parts.dropFirst().joined(separator: "\r\n\r\n").components(separatedBy: "\r\n"))
    }

    func decodeQuotedPrintable(_ lines: [String]) -> String {
        var bytes: [UInt8] = []
        for (index, line) in lines.enumerated() {
            var scalars = Array(line.utf8)
            let soft = scalars.last == UInt8(ascii: "=")
            if soft { scalars.removeLast() }
            var i = 0
            while i < scalars.count {
                if scalars[i] == UInt8(ascii: "="), i + 2 < scalars.count, let byte = UInt8(String(decoding: scalars[(i + 1)...(i + 2)], as: UTF8.self), radix: 16) {
                    bytes.append(byte)
                    i += 3
                } else {
                    bytes.append(scalars[i])
                    i += 1
                }
            }
            if !soft, index < lines.count - 1 { bytes.append(10) }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
