import Foundation
import Testing
@testable import FerryCore

@Suite struct PropertyCodecTests {
    /// The String-building encoder the byte encoder replaced: rows already stored were written by it.
    func previousEncode(_ properties: [String: [PropertyValue]]) -> String {
        func appendString(_ s: String, to out: inout String) {
            out += "\""
            for scalar in s.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
                default: out.unicodeScalars.append(scalar)
                }
            }
            out += "\""
        }
        var out = "{"
        var first = true
        for key in properties.keys.sorted() {
            guard let values = properties[key], !values.isEmpty else { continue }
            if !first { out += "," }
            first = false
            appendString(key, to: &out)
            out += ":["
            for (i, v) in values.enumerated() {
                if i > 0 { out += "," }
                switch v {
                case .string(let s): appendString(s, to: &out)
                case .number(let n): out += n.isFinite ? PropertyValue.format(number: n) : "null"
                case .date(let d): out += "{\"$date\":\"\(ISO8601.format(d))\"}"
                }
            }
            out += "]"
        }
        return out + "}"
    }

    let sample: [String: [PropertyValue]] = [
        "email": [.string("a@x.com")],
        "note": [.string("q\"b\\s\n\r\t\u{0}\u{1F}\u{7F}é😀 €")],
        "numbers": [.number(0), .number(-0.0), .number(-5), .number(302.35), .number(1e15), .number(999_999_999_999_999),
                    .number(-999_999_999_999_999), .number(1e20), .number(0.1), .number(-2.5e-7), .number(.nan), .number(.infinity)],
        "when": [.date(Date(timeIntervalSince1970: 1_705_314_600.123)), .date(Date(timeIntervalSince1970: -86_400.5))],
        "Zed": [.string("")], "empty": [], "名前": [.string("山田")],
    ]

    @Test func encodesByteForByteAsBefore() {
        #expect(PropertyCodec.encode(sample) == previousEncode(sample))
        #expect(PropertyCodec.encode([:]) == "{}")
    }

    @Test func decodeReadsWhatEncodeWrites() throws {
        var finite = sample
        finite["numbers"] = finite["numbers"]!.filter { $0.numberValue?.isFinite ?? true }
        finite["empty"] = nil
        finite["when"] = [.date(Date(timeIntervalSince1970: 1_705_314_600)), .date(Date(timeIntervalSince1970: -86_400))]
        let decoded = try PropertyCodec.decode(PropertyCodec.encode(finite))
        #expect(decoded == finite)
    }
}
