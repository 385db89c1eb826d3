import Foundation

/// Writes `JSONValue`s as the compact, sorted-key text `JSONEncoder` makes (`.sortedKeys`,
/// `.withoutEscapingSlashes`), straight into bytes: an update job serialises a thousand users, and
/// going through `Encodable` cost more than everything else the export does per user.
enum JSONValueText {
    /// Appends `value`; false when it holds a non-finite number (which `JSONEncoder` refuses too).
    static func append(_ value: JSONValue, to out: inout [UInt8]) -> Bool {
        switch value {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .number(let n):
            guard n.isFinite else { return false }
            if n.rounded() == n, abs(n) < 1e15 { DecimalDigits.append(Int64(n), to: &out) }
            else { out.append(contentsOf: foundationNumber(n).utf8) }
        case .string(let s): appendString(s, to: &out)
        case .array(let elements):
            out.append(UInt8(ascii: "["))
            for (i, element) in elements.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                guard append(element, to: &out) else { return false }
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            // `.sortedKeys` orders by UTF-8 bytes (pinned by a test against JSONEncoder).
            let keys = members.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            for (i, key) in keys.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                appendString(key, to: &out)
                out.append(UInt8(ascii: ":"))
                guard append(members[key]!, to: &out) else { return false }
            }
            out.append(UInt8(ascii: "}"))
        }
        return true
    }

    /// A fractional or huge number exactly as `JSONEncoder` writes it (rare: vars are sent as integers).
    static func foundationNumber(_ value: Double) -> String {
        let text = (try? JSONEncoder().encode([value])).map { String(decoding: $0, as: UTF8.self) } ?? "[null]"
        return String(text.dropFirst().dropLast())
    }

    /// `"` and `\` escaped, control characters as `\b \t \n \f \r` or `\u00xx`, everything else as is.
    static func appendString(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\")); out.append(byte)
            case 0x08: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "b"))
            case 0x09: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "t"))
            case 0x0A: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "n"))
            case 0x0C: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "f"))
            case 0x0D: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "r"))
            case 0..<0x20:
                out.append(contentsOf: "\\u00".utf8)
                out.append(hexDigit(byte >> 4))
                out.append(hexDigit(byte & 0x0F))
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    private static func hexDigit(_ nibble: UInt8) -> UInt8 { nibble < 10 ? 48 + nibble : 87 + nibble }
}
