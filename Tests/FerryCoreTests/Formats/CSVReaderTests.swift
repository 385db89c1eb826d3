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

    @Test func nonASCIIFieldsAreReadExactlyAndABrokenSequenceAfterThemFails() throws {
        let r = try records(Array("José,東京,\"Zoë, Ørsted\"\n".utf8) + Array("é".utf8) + [0xC3] + Array(",ok,x\n".utf8))
        #expect(r.count == 2)
        #expect(try r[0].1.get() == ["José", "東京", "Zoë, Ørsted"])
        #expect(throws: CSVRecordError(message: "field 1 is not valid UTF-8")) { try r[1].1.get() }
    }

    @Test func strayQuoteInsideAnUnquotedFieldIsReported() throws {
        let r = try records(Array("ab\"c,d\n".utf8))
        #expect(throws: CSVRecordError.self) { try r[0].1.get() }
    }

    @Test func columnNamesFoldCaseSpacesAndUnderscores() {
        #expect(CSVReader.foldedName("Profile Id") == CSVReader.foldedName("profile_id"))
        #expect(CSVReader.foldedName("EMAIL") == "email")
    }

    @Test func recordsAreTheSameWhateverTheReadBufferSize() throws {
        let text = "h1,h2,h3\r\n\"x, \"\"y\"\"\",plain,\"multi\nline\"\r\n\n\"\",,last\n\"ab\"cd,\"q\"\"\",z\n\"open"
        let dir = TemporaryDirectory()
        let path = dir.write("x.csv", bytes: Array(text.utf8))
        func read(chunk: Int) throws -> [String] {
            let reader = CSVReader(stream: try ByteStream(path: path, chunkSize: chunk))
            var out: [String] = []
            while let r = try reader.nextRecord() { out.append("\(r.line): \(r.result)") }
            return out
        }
        let whole = try read(chunk: 1 << 20)
        #expect(whole.count == 5)
        for chunk in 1...9 { #expect(try read(chunk: chunk) == whole, "chunk \(chunk)") }
    }

    @Test func unusedColumnsReadEmptyButAreStillChecked() throws {
        let dir = TemporaryDirectory()
        let path = dir.write("x.csv", bytes: Array("a,b,c\n1,2,3\n".utf8) + [0x31, 0x2C, 0xFF, 0x2C, 0x33, 0x0A] + Array("4,\"long field\",6\n".utf8))
        let reader = try CSVReader(path: path, maximumFieldBytes: 5)
        _ = try reader.nextRecord()
        reader.usedColumns = [true, false, true]
        #expect(try reader.nextRecord()?.result.get() == ["1", "", "3"])
        #expect(throws: CSVRecordError(message: "field 2 is not valid UTF-8")) { try reader.nextRecord()?.result.get() }
        #expect(throws: CSVRecordError(message: "field 2 is longer than the 5-byte limit")) { try reader.nextRecord()?.result.get() }
    }
}
