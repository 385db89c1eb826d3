import Foundation
import Testing
@testable import FerryCore

/// `JSONValue.serialized()` is the signed `json` parameter and every update-job line: written by hand for
/// speed, it must stay byte-for-byte what `JSONEncoder` (sorted keys, unescaped slashes) writes.
@Suite struct JSONValueTextTests {
    func encoderText(_ value: JSONValue) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "null"
    }

    static let controlCharacters = String((0..<0x20).map { Character(Unicode.Scalar(UInt8($0))) }) + "\u{7F}"

    static let values: [JSONValue] = [
        .null, true, false, 0, -0.0, 1, -42, 999_999_999_999_999, 1e15, -1e15, 1e20, 1.5, 0.1, 392.36, -2.5e-7,
        "", "plain", "a/b \"q\" back\\slash", .string(controlCharacters), "Zoë 😀 \u{2028} é",
        [], [:], [1, "two", [3], ["k": .null]],
        ["b": 1, "B": 2, "a10": 3, "a9": 4, "_x": 5, "é": 6, "z": 7, "Z1": 8, "a": 9, "ab": 10, "a_b": 11, "": 12],
        ["id": "x@y.com", "key": "email", "vars": ["first_name": "Chloé", "spend": 392, "tags": ["a", "b"]],
         "lists": ["Bench": 1, "Old": 0]],
    ]

    @Test(arguments: values) func serializesExactlyAsJSONEncoder(value: JSONValue) {
        #expect(value.serialized() == encoderText(value))
    }

    @Test func nonFiniteNumbersGiveNullAsTheEncoderPathDid() {
        #expect(JSONValue.array([1, .number(.nan)]).serialized() == "null")
        #expect(JSONValue.object(["x": .number(.infinity)]).serialized() == "null")
    }

    @Test func jsonLinesBytesAreTheLinesOfSerializedUpdates() {
        let updates = [
            SailthruUserUpdate(id: "a@x.com", key: "email", vars: ["n": 1, "s": "x/y"], lists: ["L": true]),
            SailthruUserUpdate(id: "b@x.com", lists: ["Old": false]),
            SailthruUserUpdate(id: "c@x.com", vars: ["bad": .number(.nan)]),
        ]
        let expected = updates.map { $0.json.serialized() + "\n" }.joined()
        #expect(String(decoding: SailthruUserUpdate.jsonLinesBytes(updates), as: UTF8.self) == expected)
        #expect(SailthruUserUpdate.jsonLines(updates) == expected)
        #expect(expected.hasSuffix("null\n"))
    }
}
