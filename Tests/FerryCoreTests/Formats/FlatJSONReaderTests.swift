import Foundation
import Testing
@testable import FerryCore

@Suite struct FlatJSONReaderTests {
    func members(_ bytes: [UInt8], limit: Int = 1 << 16) -> [(key: String, value: FlatJSONReader.Value)]? {
        bytes.withUnsafeBufferPointer { FlatJSONReader.members(of: $0, maximumStringBytes: limit) }
    }

    func members(_ text: String, limit: Int = 1 << 16) -> [(key: String, value: FlatJSONReader.Value)]? {
        members(Array(text.utf8), limit: limit)
    }

    func loader() throws -> ProfileLoader {
        ProfileLoader(store: ProfileStore(database: try AppDatabase.inMemory()), segments: [])
    }

    @Test func escapesAreDecoded() throws {
        let m = try #require(members(#"{"a": "q\"b\\s\/x\b\f\n\r\tA\u0041\u00e9\u20AC\u0000z", "k\u0065y": 1}"#))
        #expect(m[0].value == .scalar(.string("q\"b\\s/x\u{8}\u{C}\n\r\tAAé€\u{0}z")))
        #expect(m[1].key == "key")
    }

    @Test func surrogatePairsJoinAndLoneSurrogatesAreDeclined() {
        #expect(members(#"{"a": "\ud83d\ude00!"}"#)?.first?.value == .scalar(.string("😀!")))
        #expect(members(#"{"a": "\ud83d"}"#) == nil)
        #expect(members(#"{"a": "\ude00x"}"#) == nil)
        #expect(members(#"{"a": "\ud83d\u0041"}"#) == nil)
    }

    @Test func rawUTF8IsKeptAndInvalidUTF8IsDeclined() {
        #expect(members(#"{"city": "São Paulo", "名前": "山田"}"#)?.map(\.key) == ["city", "名前"])
        #expect(members(Array(#"{"a": ""#.utf8) + [0xC3, 0x28] + Array(#""}"#.utf8)) == nil)
        #expect(members(Array(#"{"a": "x\n"#.utf8) + [0xFF] + Array(#""}"#.utf8)) == nil)
        #expect(members(Array(#"{"a": ""#.utf8) + [0xED, 0xA0, 0x80] + Array(#""}"#.utf8)) == nil, "encoded surrogate")
    }

    @Test(arguments: ["0", "12", "302.35", "-17.25", "0.1", "4.35", "123456789.123456", "999999999999999", "-0.000000000000001"])
    func shortNumbersAreReadAsFoundationReadsThem(text: String) throws {
        let m = try #require(members("{\"n\": \(text)}"))
        let object = try JSONSerialization.jsonObject(with: Data("{\"n\": \(text)}".utf8)) as! [String: Any]
        #expect(m[0].value == .scalar(.number((object["n"] as! NSNumber).doubleValue)))
        #expect(m[0].value == .scalar(.number(Double(text)!)))
    }

    @Test(arguments: ["-0", "-0.0", "1e3", "1.5E-7", "2.5e+2", "123456789012345678901234567890", "9007199254740993", "0.30000000000000004",
                      "1.7976931348623157e308", "5e-324", "1234567890123456"])
    func longNumbersAndExponentsAreLeftToFoundation(text: String) throws {
        #expect(members("{\"n\": \(text)}") == nil)
        let l = try loader()
        let bytes = Array("{\"id\": \"p1\", \"n\": \(text)}".utf8)
        #expect(try l.parseJSONLine(bytes).get() == l.parseJSONLineWithFoundation(bytes).get())
    }

    @Test(arguments: ["01", "1.", ".5", "-", "1e", "+1", "1e+", "--1", "0x10", "NaN", "Infinity"])
    func malformedNumbersAreDeclined(text: String) {
        #expect(members("{\"n\": \(text)}") == nil)
    }

    @Test func nestingAndOtherShapesAreDeclined() {
        let deep = "{\"a\": " + String(repeating: "[", count: 5_000) + String(repeating: "]", count: 5_000) + "}"
        for line in [deep, #"{"a": {"b": 1}}"#, #"{"a": [[1]]}"#, #"[1, 2]"#, #""text""#, #"{"a": 1} x"#, #"{"a": 1,}"#,
                     #"{"a" 1}"#, #"{"a": tru}"#, #"{"a": "x"#, "{\"a\": \"tab\there\"}", #"{"a": 1, "a": 2}"#, #"{"a": "\x"}"#, ""] {
            #expect(members(line) == nil, "\(line.prefix(40))")
        }
        #expect(members(" { } ")?.isEmpty == true)
        #expect(members(#"{"l": [ "x" , 1, true, null, false ], "e": []}"#)?.map(\.value) ==
                [.list([.string("x"), .number(1), .bool(true), .null, .bool(false)]), .list([])])
    }

    @Test func aStringOverTheLimitIsDeclinedAndOneAtItIsRead() {
        #expect(members("{\"a\": \"\(String(repeating: "x", count: 100))\"}", limit: 100) != nil)
        #expect(members("{\"a\": \"\(String(repeating: "x", count: 101))\"}", limit: 100) == nil)
        #expect(members("{\"a\": \"\(String(repeating: "x", count: 99))\\n\"}", limit: 100) != nil)
        #expect(members("{\"a\": \"\(String(repeating: "x", count: 100))\\n\"}", limit: 100) == nil)
        let huge = String(repeating: "é", count: 300_000)
        #expect(members("{\"bio\": \"\(huge)\"}", limit: 1 << 20)?.first?.value == .scalar(.string(huge)))
    }

    @Test func quickParseGivesFoundationsRowForEveryLineItReads() throws {
        let l = try loader()
        let lines = [
            #"{"id":"p0000002","email":"tariq.obrien.2@example.com","first_name":"Tariq","last_name":"O'Brien","city":"Montréal","country":"CA","lifetime_spend":377.43,"engagement":"medium","interests":["golf","wine"],"signup_date":"2026-08-10","objectives":[]}"#,
            #"{"id": "p1", "email": "a@x.com", "interests": ["golf", "wine"], "spend": 12.5, "signup": "2024-01-15", "ok": true, "no": false}"#,
            #"{"email": "c@x.com", "objectives": ["email-marketing"], "gone": null, "empty": "", "mixed": ["", null, 3, "2024-01-15T10:30:00Z"]}"#,
            #"{"id": null, "customer_id": "C-1", "note": "line\none \"quoted\" \u00e9\ud83d\ude00", "n": -0.0005}"#,
            #"  {  "id" : "p9" , "zip" : "00123"  }  "#,
        ]
        for line in lines {
            let bytes = Array(line.utf8)
            let quick = try #require(bytes.withUnsafeBufferPointer(l.quickParse), "\(line)")
            let reference = try l.parseJSONLineWithFoundation(bytes).get()
            #expect(quick == reference)
        }
    }

    @Test func declinedLinesAreStillRejectedWithFoundationsReason() throws {
        let dir = TemporaryDirectory()
        var bytes = Array("{\"id\": \"p1\", \"name\": \"\\ud83d\\ude00\"}\n".utf8)
        bytes += Array("{\"id\": \"p2\", \"deep\": ".utf8) + Array(repeating: UInt8(ascii: "["), count: 10_000)
            + Array(repeating: UInt8(ascii: "]"), count: 10_000) + Array("}\n".utf8)
        bytes += Array("{\"id\": 7, \"a\": 1}\n{\"id\": \"\", \"a\": 1}\n{\"id\": true}\n".utf8)
        bytes += Array("{\"id\": \"p3\", \"bad\": \"".utf8) + [0xF0, 0x28, 0x8C, 0x28] + Array("\"}\n".utf8)
        bytes += Array("{\"id\": \"p4\", \"\": 1}\n".utf8)
        let path = dir.write("p.jsonl", bytes: bytes)
        let report = try loader().load(path: path)
        #expect(report.created == 2, "p1 and the numeric id 7")
        #expect(report.rejected.map(\.line) == [2, 4, 5, 6, 7])
        #expect(report.rejected[1].reason == "\"id\" must be a non-empty string")
        #expect(report.rejected[3].reason == "the line is not valid UTF-8")
        #expect(report.rejected[4].reason == "a property name is empty")
    }
}
