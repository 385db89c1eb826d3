import Foundation
import Testing
import FerryTestSupport
@testable import FerryCore

/// Fields copied straight from the stored JSON are byte for byte what decoding the document writes.
@Suite struct MappFieldWriterTests {
    let columns = ["email", "first_name", "spend", "joined"]

    /// The general path: decode, then one quoted field per column.
    func decoded(_ json: String) throws -> [UInt8] {
        let properties = try Array(json.utf8).withUnsafeBufferPointer { try PropertyCodec.decode(utf8: $0, keys: PropertyKeys(Set(columns))) }
        var out: [UInt8] = []
        for (index, column) in columns.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            MappExport.appendField((properties[column] ?? []).map(\.description), to: &out)
        }
        return out
    }

    func direct(_ json: String) -> (bytes: [UInt8], written: MappFieldWriter.Written)? {
        var out: [UInt8] = [7]
        let written = Array(json.utf8).withUnsafeBufferPointer { MappFieldWriter(columns: columns).append($0, to: &out) }
        guard let written else {
            #expect(out == [7], "a refused row leaves the buffer as it was")
            return nil
        }
        return (Array(out.dropFirst()), written)
    }

    @Test func aPropertyShownInTwoColumnsFillsBoth() throws {
        let json = PropertyCodec.encode(["email": [.string("a@x.com")], "first_name": [.string("Ann")]])
        var out: [UInt8] = []
        let written = Array(json.utf8).withUnsafeBufferPointer {
            MappFieldWriter(columns: ["email", "first_name", "email", "first_name"]).append($0, to: &out)
        }
        #expect(written?.firstIdentifier == "a@x.com")
        #expect(String(decoding: out, as: UTF8.self) == "\"a@x.com\",\"Ann\",\"a@x.com\",\"Ann\"")
    }

    @Test func writesPlainStringsAndNumbersDirectlyAsDecodingWould() throws {
        let json = PropertyCodec.encode([
            "email": [.string("zoë@example.com"), .string("b@x.com")], "first_name": [.string("Zoë 🚀, Jr.")],
            "spend": [.number(12.5), .number(-3), .number(0), .number(0.1), .number(123_456_789_012_345)],
            "other": [.string("ignored")],
        ])
        let result = try #require(direct(json))
        #expect(result.bytes == (try decoded(json)))
        #expect(String(decoding: result.bytes, as: UTF8.self).hasPrefix("\"zoë@example.com,b@x.com\",\"Zoë 🚀, Jr.\","))
        #expect(result.written.hasIdentifier && result.written.firstIdentifier == "zoë@example.com")
    }

    @Test func handsEscapesDatesAndOddShapesToTheGeneralPath() throws {
        for json in [
            PropertyCodec.encode(["email": [.string("say \"hi\"\nbye")]]),
            PropertyCodec.encode(["email": [.string("a@x.com")], "joined": [.date(Date(timeIntervalSince1970: 0))]]),
            #"{"email": ["a"], "email": ["b"]}"#,
            #"{"email": "not an array"}"#,
            #"{"spend": [1234567890123456789], "email": ["a"]}"#,
            #"{"email": ["a"]} trailing"#,
            #"{"email": ["a"]"#,
        ] {
            #expect(direct(json) == nil, "\(json)")
        }
    }

    @Test func anEmptyOrMissingIdentifierIsReported() throws {
        let missing = try #require(direct(#"{"first_name": ["Ann"]}"#))
        #expect(!missing.written.hasIdentifier)
        let empty = try #require(direct(#"{"email": ["", null], "first_name": ["Ann"]}"#))
        #expect(!empty.written.hasIdentifier && empty.written.firstIdentifier == "")
        #expect(empty.bytes == (try decoded(#"{"email": ["", null], "first_name": ["Ann"]}"#)))
        let booleans = try #require(direct(#"{"email": ["a"], "spend": [true, false, null, 7]}"#))
        #expect(booleans.bytes == (try decoded(#"{"email": ["a"], "spend": [true, false, null, 7]}"#)))
    }

    @Test func agreesWithDecodingOnManyGeneratedDocuments() throws {
        var random = SplitMix64(seed: 8)
        let pieces = ["a", "é", "東", "\"", ",", " ", "\n", "\\", "x@y.z", "🚀", ""]
        var directCount = 0
        for _ in 0..<2_000 {
            var properties: [String: [PropertyValue]] = [:]
            for column in columns + ["noise"] where random.next() % 4 != 0 {
                properties[column] = (0..<Int(random.next() % 3)).map { _ in
                    switch random.next() % 4 {
                    case 0: return .number(Double(Int64(random.next() % 2_000_000) - 1_000_000) / [1, 10, 100, 3][Int(random.next() % 4)])
                    case 1: return .date(Date(timeIntervalSince1970: Double(random.next() % 2_000_000_000)))
                    default: return .string((0..<Int(random.next() % 4)).map { _ in pieces[Int(random.next() % UInt64(pieces.count))] }.joined())
                    }
                }
            }
            let json = PropertyCodec.encode(properties)
            if let result = direct(json) {
                directCount += 1
                #expect(result.bytes == (try decoded(json)), "\(json)")
                let identifiers = (properties["email"] ?? []).map(\.description)
                #expect(result.written.hasIdentifier == identifiers.contains { !$0.isEmpty }, "\(json)")
                #expect(result.written.firstIdentifier == identifiers.first ?? "", "\(json)")
            }
        }
        #expect(directCount > 300, "most plain documents take the direct path")
    }
}
