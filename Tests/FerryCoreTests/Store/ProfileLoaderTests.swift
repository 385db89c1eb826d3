import Foundation
import Testing
@testable import FerryCore

@Suite struct ProfileLoaderTests {
    func loader(batchSize: Int = 2) throws -> ProfileLoader {
        ProfileLoader(store: ProfileStore(database: try AppDatabase.inMemory()), segments: [], batchSize: batchSize)
    }

    @Test func jsonLinesLoadWithTypedValuesAndBadLinesNamed() throws {
        let dir = TemporaryDirectory()
        let path = dir.write("p.jsonl", """
        {"id": "p1", "email": "a@x.com", "interests": ["golf", "wine"], "spend": 12.5, "signup": "2024-01-15", "ok": true}
        [1, 2]
        {"id": "p2", "email": "b@x.com", "nested": {"a": 1}}
        not json

        {"email": "c@x.com", "objectives": ["email-marketing"]}
        """)
        let l = try loader()
        let report = try l.load(path: path)
        #expect(report.created == 2)
        #expect(report.rejected.map(\.description) == [
            "\(path):2: a line must be a JSON object like {\"id\": \"p1\", \"email\": \"a@x.com\"}",
            "\(path):3: property \"nested\": nested objects and lists of lists are not supported; use a flat value or a list of values",
            "\(path):4: not valid JSON",
        ])
        let p1 = try #require(try l.store.find("p1")).profile
        #expect(p1["interests"] == [.string("golf"), .string("wine")])
        #expect(p1["spend"] == [.number(12.5)])
        #expect(p1["signup"] == [.date(ISO8601.parse("2024-01-15")!)])
        #expect(p1["ok"] == [.string("true")])
        #expect(try l.store.find("c@x.com")?.profile.objectives == ["email-marketing"])
    }

    @Test func invalidUTF8AndHugeLinesAreRejectedAndTheRestLoads() throws {
        let dir = TemporaryDirectory()
        var bytes = Array("{\"id\": \"p1\"}\n{\"id\": \"".utf8) + [0xC3, 0x28] + Array("\"}\n".utf8)
        bytes += Array("{\"id\": \"p3\", \"bio\": \"".utf8) + Array(repeating: UInt8(ascii: "x"), count: 2_000_000) + Array("\"}\n{\"id\": \"p4\"}".utf8)
        let path = dir.write("p.jsonl", bytes: bytes)
        var l = try loader()
        l.maximumLineBytes = 1 << 20
        let report = try l.load(path: path)
        #expect(report.created == 2)
        #expect(report.rejected.map(\.line) == [2, 3])
        #expect(report.rejected[0].reason == "the line is not valid UTF-8")
        #expect(report.rejected[1].reason.contains("over the 1048576-byte limit"))
    }

    @Test func aValueOverTheLimitRejectsItsRow() throws {
        let dir = TemporaryDirectory()
        let path = dir.write("p.jsonl", "{\"id\": \"p1\", \"bio\": \"\(String(repeating: "y", count: 70_000))\"}\n{\"id\": \"p2\"}\n")
        let report = try loader().load(path: path)
        #expect(report.created == 1)
        #expect(report.rejected.first?.reason == "property \"bio\": value is longer than 65536 bytes")
    }

    @Test func csvSplitsMultiValuesAndKeepsLeadingZeroText() throws {
        let dir = TemporaryDirectory()
        let path = dir.write("p.csv", "id,email,interests,zip,spend,note\r\np1,a@x.com,golf|wine,00123,42,\"line one\nline, two\"\r\np2,b@x.com,,,\r\np3,c@x.com,,,7,\"\"\"quoted\"\"\"\r\n")
        let l = try loader()
        let report = try l.load(path: path)
        #expect(report.created == 2)
        #expect(report.rejected.map(\.description) == ["\(path):4: expected 6 fields (as in the header), found 5"])
        let p1 = try #require(try l.store.find("p1")).profile
        #expect(p1["interests"] == [.string("golf"), .string("wine")])
        #expect(p1["zip"] == [.string("00123")])
        #expect(p1["spend"] == [.number(42)])
        #expect(p1["note"] == [.string("line one\nline, two")])
        #expect(try l.store.find("p3")?.profile["note"] == [.string("\"quoted\"")])
    }

    @Test func emptyAndMissingFilesAreClearErrors() throws {
        let dir = TemporaryDirectory()
        let empty = dir.write("e.jsonl", "")
        #expect(throws: InputError(file: empty, message: "the file holds no profiles")) { try loader().load(path: empty) }
        #expect(throws: InputError(file: dir.path + "/none.jsonl", message: "no such file")) { try loader().load(path: dir.path + "/none.jsonl") }
    }

    @Test func progressIsReportedPerCommittedBatch() throws {
        let dir = TemporaryDirectory()
        let path = dir.write("p.jsonl", (1...5).map { "{\"id\": \"p\($0)\"}" }.joined(separator: "\n"))
        var committed: [Int] = []
        _ = try loader(batchSize: 2).load(path: path) { committed.append($0.committedThroughLine) }
        #expect(committed == [2, 4, 5])
    }
}
