import Foundation
import Testing
@testable import FerryCore

@Suite struct CSVReaderTests {
    func records(_ bytes: [UInt8], maximumFieldBytes: Int = 1 << 16) throws -> [(Int, Result<[String], CSVRecordError>)] {
        let dir = TemporaryDirectory()
        let reader = try CSVReader(path: dir.write("x.csv", bytes: bytes), maximumFieldBytes: maximumFieldBytes)
        var out: [(Int, Result<[String], CSVRecordError>)] = []
        while let r = try reader.nextRecord() { out.append((r.line, r.result)) }
        return out
    }

    func fields(_ text: String) throws -> [[String]] {
        try records(Array(text.utf8)).map { try $0.1.get() }
    }

    @Test func readsQuotedCommasQuotesNewlinesAndCRLF() throws {
        #expect(try fields("a,b\r\n\"x, y\",\"say \"\"hi\"\"\"\r\n\"multi\nline\",z\n") == [["a", "b"], ["x, y", "say \"hi\""], ["multi\nline", "z"]])
    }

    @Test func emptyFieldsBlankLinesAndNoFinalNewline() throws {
        #expect(try fields(",\n\n\na,,\"\"\nlast") == [["", ""], ["a", "", ""], ["last"]])
    }

    @Test func recordLineNumbersCountEmbeddedNewlines() throws {
        let lines = try records(Array("h\n\"a\nb\nc\"\nnext\n".utf8)).map(\.0)
        #expect(lines == [1, 2, 5])
    }

    @Test func unterminatedQuoteIsAnErrorAtItsStartLine() throws {
        let r = try records(Array("a\n\"never closed\nmore\n".utf8))
        #expect(r.count == 2)
        #expect(r[1].0 == 2)
        #expect(throws: CSVRecordError(message: "a quoted field that starts here is never closed")) { try r[1].1.get() }
    }

    @Test func invalidUTF8AndOversizedFieldsFailOnlyTheirRecord() throws {
        let r = try records(Array("ok,1\n".utf8) + [0xFF] + Array(",2\n".utf8) + Array(String(repeating: "z", count: 100).utf8) + Array(",3\nfine,4\n".utf8), maximumFieldBytes: 50)
        #expect(r.count == 4)
        #expect(throws: CSVRecordError(message: "field 1 is not valid UTF-8")) { try r[1].1.get() }
        #expect(throws: CSVRecordError(message: "field 1 is longer than the 50-byte limit")) { try r[2].1.get() }
        #expect(try r[3].1.get() == ["fine", "4"])
    }

    @Test func strayQuoteInsideAnUnquotedFieldIsReported() throws {
        let r = try records(Array("ab\"c,d\n".utf8))
        #expect(throws: CSVRecordError.self) { try r[0].1.get() }
    }

    @Test func columnNamesFoldCaseSpacesAndUnderscores() {
        #expect(CSVReader.foldedName("Profile Id") == CSVReader.foldedName("profile_id"))
        #expect(CSVReader.foldedName("EMAIL") == "email")
    }
}
