import Foundation

/// A strict JSON reader and a compact writer over UTF-8 bytes for the sandboxes' hot paths (Sailthru
/// update-job lines, the `json` parameter, replies, journal lines; SendGrid request bodies). They read and write what `JSONDecoder` and
/// `JSONEncoder` (sorted keys, unescaped slashes) do, without Codable's per-value cost; anything they
/// do not handle exactly (non-finite or fractional numbers on output) goes to Foundation.
enum JSONBytes {
    /// Nesting deeper than this is refused, as Foundation's decoder does, so input cannot overflow the stack.
    static let maximumDepth = 512

    /// Parses one JSON text (surrounding whitespace allowed); nil when it is not valid JSON.
    static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> JSON? {
        var reader = Reader(bytes: bytes)
        reader.skipSpace()
        guard let value = reader.value(depth: 0) else { return nil }
        reader.skipSpace()
        return reader.position == bytes.count ? value : nil
    }

    static func parse(_ data: some ContiguousBytes) -> JSON? {
        data.withUnsafeBytes { parse($0.bindMemory(to: UInt8.self)) }
    }

    static func parse(_ text: String) -> JSON? {
        var text = text
        return text.withUTF8 { parse($0) }
    }

    private struct Reader {
        let bytes: UnsafeBufferPointer<UInt8>
        var position = 0

        init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

        var current: UInt8? { position < bytes.count ? bytes[position] : nil }

        mutating func skipSpace() {
            while position < bytes.count {
                switch bytes[position] {
                case 0x20, 0x09, 0x0A, 0x0D: position += 1
                default: return
                }
            }
        }

        mutating func literal(_ word: StaticString, _ value: JSON) -> JSON? {
            let count = word.utf8CodeUnitCount
            guard bytes.count - position >= count else { return nil }
            for i in 0..<count where bytes[position + i] != word.utf8Start[i] { return nil }
            position += count
            return value
        }

        mutating func value(depth: Int) -> JSON? {
            guard depth < JSONBytes.maximumDepth, let byte = current else { return nil }
            switch byte {
            case UInt8(ascii: "{"): return object(depth: depth)
            case UInt8(ascii: "["): return array(depth: depth)
            case UInt8(ascii: "\""): return string().map(JSON.string)
            case UInt8(ascii: "t"): return literal("true", .bool(true))
            case UInt8(ascii: "f"): return literal("false", .bool(false))
            case UInt8(ascii: "n"): return literal("null", .null)
            default: return number()
            }
        }

        mutating func object(depth: Int) -> JSON? {
            position += 1
            var members: [String: JSON] = [:]
            skipSpace()
            if current == UInt8(ascii: "}") { position += 1; return .object(members) }
            while true {
                skipSpace()
                guard current == UInt8(ascii: "\""), let key = string() else { return nil }
                skipSpace()
                guard current == UInt8(ascii: ":") else { return nil }
                position += 1
                skipSpace()
                guard let value = value(depth: depth + 1) else { return nil }
                members[key] = value
                skipSpace()
                switch current {
                case UInt8(ascii: ","): position += 1
                case UInt8(ascii: "}"): position += 1; return .object(members)
                default: return nil
                }
            }
        }

        mutating func array(depth: Int) -> JSON? {
            position += 1
            var elements: [JSON] = []
            skipSpace()
            if current == UInt8(ascii: "]") { position += 1; return .array(elements) }
            while true {
                skipSpace()
                guard let value = value(depth: depth + 1) else { return nil }
                elements.append(value)
                skipSpace()
                switch current {
                case UInt8(ascii: ","): position += 1
                case UInt8(ascii: "]"): position += 1; return .array(elements)
                default: return nil
                }
            }
        }

        /// A string token starting at its opening quote; nil on bad escapes, control characters or invalid UTF-8.
        mutating func string() -> String? {
            position += 1
            let start = position
            // Fast path: no escapes.
            while position < bytes.count {
                let byte = bytes[position]
                if byte == UInt8(ascii: "\"") {
                    let slice = UnsafeBufferPointer(rebasing: bytes[start..<position])
                    position += 1
                    return String(validating: slice, as: UTF8.self)
                }
                if byte == UInt8(ascii: "\\") { break }
                if byte < 0x20 { return nil }
                position += 1
            }
            guard position < bytes.count else { return nil }
            var out = Array(bytes[start..<position])
            while position < bytes.count {
                let byte = bytes[position]
                switch byte {
                case UInt8(ascii: "\""):
                    position += 1
                    return String(validating: out, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    position += 1
                    guard let escape = current else { return nil }
                    position += 1
                    switch escape {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escape)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "u"):
                        guard var scalar = hex4() else { return nil }
                        if (0xD800..<0xDC00).contains(scalar) {
                            // A high surrogate must be followed by an escaped low one.
                            guard bytes.count - position >= 6, bytes[position] == UInt8(ascii: "\\"),
                                  bytes[position + 1] == UInt8(ascii: "u") else { return nil }
                            position += 2
                            guard let low = hex4(), (0xDC00..<0xE000).contains(low) else { return nil }
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        } else if (0xDC00..<0xE000).contains(scalar) {
                            return nil
                        }
                        guard let unicode = Unicode.Scalar(scalar) else { return nil }
                        out.append(contentsOf: String(Character(unicode)).utf8)
                    default: return nil
                    }
                default:
                    if byte < 0x20 { return nil }
                    out.append(byte)
                    position += 1
                }
            }
            return nil
        }

        mutating func hex4() -> UInt32? {
            guard bytes.count - position >= 4 else { return nil }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = bytes[position]
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: return nil
                }
                value = value << 4 | UInt32(digit)
                position += 1
            }
            return value
        }

        /// A number as `JSONDecoder` gives it to `JSON`: an integer when the value is whole and fits, else a double.
        mutating func number() -> JSON? {
            let start = position
            func digits() -> Int {
                let from = position
                while position < bytes.count, bytes[position] >= 0x30, bytes[position] <= 0x39 { position += 1 }
                return position - from
            }
            if current == UInt8(ascii: "-") { position += 1 }
            guard let first = current, first >= 0x30, first <= 0x39 else { return nil }
            if first == 0x30 { position += 1 } else { _ = digits() }
            var integral = true
            if current == UInt8(ascii: ".") {
                position += 1
                integral = false
                guard digits() > 0 else { return nil }
            }
            if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
                position += 1
                integral = false
                if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { position += 1 }
                guard digits() > 0 else { return nil }
            }
            let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
            if integral, let int = Int(text) { return .int(int) }
            guard let double = Double(text), double.isFinite else { return nil }
            if double.rounded() == double, double >= -9.223372036854775808e18, double < 9.223372036854775808e18 {
                return .int(Int(double))
            }
            return .double(double)
        }
    }

    // MARK: - Writing

    /// Appends `value` as compact JSON with sorted keys and unescaped slashes; false when it holds a
    /// number JSON cannot write (the caller then falls back to Foundation, which reports it).
    static func write(_ value: JSON, to out: inout [UInt8]) -> Bool {
        switch value {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .int(let i): appendInt(i, to: &out)
        case .double(let d):
            guard d.isFinite else { return false }
            if d.rounded() == d, abs(d) < 1e15 { appendInt(Int(d), to: &out) }
            else { out.append(contentsOf: foundationNumber(d).utf8) }
        case .string(let s): appendString(s, to: &out)
        case .array(let elements):
            out.append(UInt8(ascii: "["))
            for (i, element) in elements.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                guard write(element, to: &out) else { return false }
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (i, key) in sortedKeys(members).enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                appendString(key, to: &out)
                out.append(UInt8(ascii: ":"))
                guard write(members[key]!, to: &out) else { return false }
            }
            out.append(UInt8(ascii: "}"))
        }
        return true
    }

    /// Keys in the order `JSONEncoder`'s `.sortedKeys` writes them: by UTF-8 bytes.
    static func sortedKeys<V>(_ members: [String: V]) -> [String] {
        members.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    static func appendInt(_ value: Int, to out: inout [UInt8]) {
        out.append(contentsOf: String(value).utf8)
    }

    /// A fractional or huge number exactly as `JSONEncoder` writes it (rare on the hot paths).
    static func foundationNumber(_ value: Double) -> String {
        let text = (try? JSONEncoder().encode([value])).map { String(decoding: $0, as: UTF8.self) } ?? "[null]"
        return String(text.dropFirst().dropLast())
    }

    /// A JSON string as `JSONEncoder` writes it: `"` and `\` escaped, control characters as `\b \t \n \f \r`
    /// or `\u00XX`, everything else (slashes, non-ASCII) as is.
    static func appendString(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        // Most strings need no escaping: copied whole instead of byte by byte.
        let copied = text.utf8.withContiguousStorageIfAvailable { bytes -> Bool in
            guard !bytes.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) else { return false }
            out.append(contentsOf: bytes)
            return true
        }
        if copied == true {
            out.append(UInt8(ascii: "\""))
            return
        }
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(UInt8(ascii: "\\")); out.append(byte)
            case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\")); out.append(byte)
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
