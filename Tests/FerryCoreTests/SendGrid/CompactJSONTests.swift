import FerryTestSupport
import Foundation
import Testing
@testable import FerryCore

/// The hand-written request JSON says what JSONEncoder said.
@Suite struct CompactJSONTests {
    @Test(arguments: [
        JSONValue.object(["email": .string("a@x.com"), "first_name": .string("Zoë \"Z\" / \\ \n\t\u{01}😀"),
                          "custom_fields": .object(["e1_T": .string("vip,newsletter"), "e2_N": .number(3), "e3_N": .number(2.5)])]),
        .array([.null, .bool(true), .bool(false), .number(-0.0), .number(1e20), .number(-123456789), .number(0.1)]),
        .object([:]), .array([]), .string(""),
    ])
    func matchesJSONEncoderOutput(value: JSONValue) throws {
        let fast = value.compactJSONBytes
        #expect(try JSONValue.parse(Data(fast)) == value)
        #expect(String(decoding: fast, as: UTF8.self) == value.serialized())
    }

    @Test func randomContactsReadBackEqual() throws {
        var generator = SplitMix64(seed: 42)
        let alphabet: [Character] = ["a", "Z", "0", " ", ",", "\"", "\\", "/", "\n", "\u{02}", "é", "😀"]
        func text() -> String { String((0..<Int.random(in: 0...10, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }) }
        for _ in 0..<500 {
            var contact = SendGridContact(email: text())
            contact.reserved["first_name"] = .string(text())
            contact.customFields["e1_T"] = .string(text())
            contact.customFields["e2_N"] = .number(Double(Int.random(in: -1000...1000, using: &generator)) / 8)
            #expect(try JSONValue.parse(Data(contact.json.compactJSONBytes)) == contact.json)
        }
    }
}
