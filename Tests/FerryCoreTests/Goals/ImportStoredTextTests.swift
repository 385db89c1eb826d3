import Foundation
import Testing
@testable import FerryCore

/// An import rewrites only the changed properties of a profile's stored text, and gets what encoding the whole profile would.
@Suite struct ImportStoredTextTests {
    let stored: [String: [PropertyValue]] = [
        "aliases": [.string("Bo"), .string("a \"quoted\", [odd] value")],
        "email": [.string("bo@example.com")],
        "last_order_time": [.date(Date(timeIntervalSince1970: 1_700_000_000))],
        "lifetime_spend": [.number(12.5)],
        "path": [.string("C:\\dir\\"), .string("\\\"")],
        "zip": [.string("02134")],
    ]

    func check(_ changes: [(key: String, values: [PropertyValue])]) throws {
        var merged = stored
        for (key, values) in changes { merged[key] = values.isEmpty ? nil : values }
        let spliced = try #require(ImportStoredText.splice(PropertyCodec.encode(stored), changes: changes.sorted { $0.key < $1.key }))
        #expect(spliced == PropertyCodec.encode(merged))
        #expect(try PropertyCodec.decode(spliced) == merged)
    }

    @Test func replacingAddingAndRemovingPropertiesMatchesEncodingTheWholeProfile() throws {
        try check([("lifetime_spend", [.number(20)])])
        try check([("aliases", [.string("Bo"), .string("Ann")]), ("email", [.string("bo@example.com"), .string("b@x.org")])])
        try check([("a_first", [.string("x")]), ("nickname", [.string("Bo")]), ("zz_last", [.number(-3)])])
        try check([("zip", []), ("aliases", []), ("missing", [])])
        try check([("email", [.date(Date(timeIntervalSince1970: 0))]), ("last_order_time", [.string("soon")])])
        try check([])
    }

    @Test func anEmptyProfileGetsTheChangedPropertiesOnly() throws {
        #expect(ImportStoredText.splice("{}", changes: [("a", [.number(1)]), ("b", [])]) == PropertyCodec.encode(["a": [.number(1)]]))
    }

    @Test func textNotWrittenByTheCodecIsLeftToAFullEncode() {
        #expect(ImportStoredText.splice(#"{"b":["x"],"a":["y"]}"#, changes: [("c", [.number(1)])]) == nil)
        #expect(ImportStoredText.splice(#"{"a":["x"],"a":["y"]}"#, changes: [("c", [.number(1)])]) == nil)
        #expect(ImportStoredText.splice(#"{"\u0061":["x"]}"#, changes: [("c", [.number(1)])]) == nil)
        #expect(ImportStoredText.splice(#"{"a":["x"]"#, changes: [("c", [.number(1)])]) == nil)
        #expect(ImportStoredText.splice(#"{"a":["x"],}"#, changes: [("c", [.number(1)])]) == nil)
    }

    /// A changed entry is written in place exactly as the codec writes it: text, numbers (whole, fractional,
    /// not finite), dates, escapes and non-ASCII text.
    @Test func aChangedEntryIsWrittenAsTheCodecWritesIt() {
        let values: [PropertyValue] = [.string("Chloé \"B\" \\ \n"), .number(12), .number(-0.5), .number(1e300), .number(.infinity),
                                       .date(Date(timeIntervalSince1970: 1_705_314_600.25)), .string("")]
        var out: [UInt8] = [UInt8(ascii: "{")]
        PropertyCodec.appendEntry(key: "k", values: values, to: &out)
        out.append(UInt8(ascii: "}"))
        #expect(String(decoding: out, as: UTF8.self) == PropertyCodec.encode(["k": values]))
    }
}
