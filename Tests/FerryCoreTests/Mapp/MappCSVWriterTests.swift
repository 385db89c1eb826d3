import FerryCore
import Testing

/// The Mapp contact-import CSV encoding.
@Suite("Mapp CSV writer")
struct MappCSVWriterTests {
    private func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    @Test func writesMappsExampleShapeExactly() throws {
        var writer = try MappCSVWriter(columnHeaders: ["user.Email", "user.FirstName", "user.LastName"])
        try writer.append(values: [["ann@example.com"], ["Ann"], ["Lee"]], segments: ["vip", "newsletter"])
        try writer.append(values: [["bo@example.com"], ["Bo"], []], segments: [])
        #expect(text(writer.sink) == """
            "user.Email","user.FirstName","user.LastName","user.CustomAttribute.SegmentMembership"\r
            "ann@example.com","Ann","Lee","vip,newsletter"\r
            "bo@example.com","Bo","",""\r

            """)
        #expect(writer.rowCount == 2)
        #expect(writer.headers.last == "user.CustomAttribute.SegmentMembership")
    }

    @Test func doublesQuotesAndKeepsCommasAndLineBreaksInsideQuotes() throws {
        var writer = try MappCSVWriter(columnHeaders: ["user.Email", "user.CustomAttribute.Note"])
        try writer.append(values: [["a@x.com"], ["say \"hi\", then\nleave\r\nnow"]], segments: ["a\"b"])
        let lines = text(writer.sink).components(separatedBy: "\r\n")
        #expect(lines[1] == "\"a@x.com\",\"say \"\"hi\"\", then\nleave")
        #expect(lines[2] == "now\",\"a\"\"b\"")
        #expect(text(writer.sink).hasSuffix("\r\n"))
    }

    @Test func writesNonASCIIAsUTF8WithoutBOM() throws {
        var writer = try MappCSVWriter(columnHeaders: ["user.Email", "user.FirstName", "user.CustomAttribute.City"])
        try writer.append(values: [["zoë@example.com"], ["Zoë 🚀"], ["東京"]], segments: ["café"])
        let bytes = writer.sink
        #expect(Array(bytes.prefix(3)) != [0xEF, 0xBB, 0xBF])
        #expect(bytes.first == UInt8(ascii: "\""))
        #expect(text(bytes).hasSuffix("\"zoë@example.com\",\"Zoë 🚀\",\"東京\",\"café\"\r\n"))
        #expect(bytes.contains(0xF0))  // the rocket's 4-byte UTF-8 lead byte, not an escape
    }

    @Test func joinsMultiValuesWithCommas() throws {
        var writer = try MappCSVWriter(columnHeaders: ["user.Email", "user.CustomAttribute.Interests"])
        try writer.append(values: [["a@x.com"], ["golf", "wine", "tennis"]], segments: ["vip", "newsletter"])
        #expect(text(writer.sink).hasSuffix("\"a@x.com\",\"golf,wine,tennis\",\"vip,newsletter\"\r\n"))
    }

    @Test func anEmptyExportStillHasItsHeader() throws {
        var writer = try MappCSVWriter(columnHeaders: ["user.MobileNumber"])
        writer.writeHeader()
        writer.writeHeader()
        #expect(text(writer.sink) == "\"user.MobileNumber\",\"user.CustomAttribute.SegmentMembership\"\r\n")
    }

    @Test func drainsInChunksThatConcatenateToTheWholeFile() throws {
        var streaming = try MappCSVWriter(columnHeaders: ["user.Email", "user.FirstName"])
        var whole = try MappCSVWriter(columnHeaders: ["user.Email", "user.FirstName"])
        var chunks: [UInt8] = []
        for index in 0..<100 {
            let values = [["p\(index)@x.com"], ["Name \"\(index)\""]]
            try streaming.append(values: values, segments: ["s\(index % 3)"])
            try whole.append(values: values, segments: ["s\(index % 3)"])
            if index % 7 == 0 { chunks += streaming.takeBytes() }
        }
        chunks += streaming.takeBytes()
        #expect(chunks == whole.sink)
        #expect(streaming.takeBytes().isEmpty)
    }

    @Test func rejectsBadColumnsAndRows() throws {
        #expect(throws: MappCSVError.noColumns) { try MappCSVWriter(columnHeaders: []) }
        #expect(throws: MappCSVError.firstColumnNotIdentifier("user.FirstName")) {
            try MappCSVWriter(columnHeaders: ["user.FirstName", "user.Email"])
        }
        #expect(throws: MappCSVError.duplicateHeader("user.email")) {
            try MappCSVWriter(columnHeaders: ["user.Email", "user.email"])
        }
        #expect(throws: MappCSVError.membershipColumnConfigured) {
            try MappCSVWriter(columnHeaders: ["user.Email", "user.CustomAttribute.SegmentMembership"])
        }
        var writer = try MappCSVWriter(columnHeaders: ["user.Email", "user.FirstName"])
        #expect(throws: MappCSVError.wrongValueCount(row: 1, expected: 2, got: 1)) {
            try writer.append(values: [["a@x.com"]], segments: [])
        }
        #expect(throws: MappCSVError.emptyIdentifier(row: 1)) {
            try writer.append(values: [[""], ["Ann"]], segments: [])
        }
        #expect(writer.sink.isEmpty)
        #expect(MappCSVError.emptyIdentifier(row: 3).description == "row 3 has no identifier value")
    }
}
