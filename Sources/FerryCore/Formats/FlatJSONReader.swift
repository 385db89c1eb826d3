import Foundation

/// Reads a flat JSON object (one JSON Lines profile) straight from its bytes.
///
/// A profile line holds strings, numbers, booleans and nulls, or lists of those. That is all this
/// reads; on anything else (nested objects, lists of lists, a duplicate key, invalid UTF-8, a lone
/// surrogate, a syntax error, a string over the size limit, a number with an exponent or over 15
/// digits) it returns nil, and the caller falls
/// back to Foundation's parser, which says what is wrong. It exists because Foundation's
/// `JSONSerialization` (boxing every value) cost a fifth of a million-row load.
struct FlatJSONReader {
    /// One scalar as written in the line.
    enum Scalar: Equatable {
        case string(String)
        case number(Double)
        case bool(Bool)
        case null
    }

    /// A member's value: a scalar, or a list of scalars.
    enum Value: Equatable {
        case scalar(Scalar)
        case list([Scalar])
    }

    /// The members of the object in the order written, or nil when the line is not a flat object this reads.
    static func members(of bytes: UnsafeBufferPointer<UInt8>, maximumStringBytes: Int) -> [(key: String, value: Value)]? {
        var reader = FlatJSONReader(bytes: bytes, maximumStringBytes: maximumStringBytes)
        return reader.object()
    }

    private let b: UnsafeBufferPointer<UInt8>
    private let maximumStringBytes: Int
    private var i = 0
    /// Unescaped bytes of a string with escapes, reused across strings.
    private var scratch: [UInt8] = []

    private init(bytes: UnsafeBufferPointer<UInt8>, maximumStringBytes: Int) {
        b = bytes
        self.maximumStringBytes = maximumStringBytes
    }

    private mutating func skipSpace() {
        while i < b.count, b[i] == 0x20 || b[i] == 0x09 || b[i] == 0x0A || b[i] == 0x0D { i += 1 }
    }

    private mutating func object() -> [(key: String, value: Value)]? {
        skipSpace()
        guard i < b.count, b[i] == UInt8(ascii: "{") else { return nil }
        i += 1
        var members: [(key: String, value: Value)] = []
        members.reserveCapacity(16)
        skipSpace()
        if i < b.count, b[i] == UInt8(ascii: "}") {
            i += 1
        } else {
            while true {
                skipSpace()
                guard i < b.count, b[i] == UInt8(ascii: "\""), let key = string() else { return nil }
                skipSpace()
                guard i < b.count, b[i] == UInt8(ascii: ":") else { return nil }
                i += 1
                skipSpace()
                guard i < b.count else { return nil }
                let value: Value
                if b[i] == UInt8(ascii: "[") {
                    guard let list = list() else { return nil }
                    value = .list(list)
                } else {
                    guard let scalar = scalar() else { return nil }
                    value = .scalar(scalar)
                }
                // A repeated key is rare and its meaning parser-specific: leave it to Foundation.
                if members.contains(where: { $0.key == key }) { return nil }
                members.append((key, value))
                skipSpace()
                guard i < b.count else { return nil }
                if b[i] == UInt8(ascii: ",") { i += 1; continue }
                guard b[i] == UInt8(ascii: "}") else { return nil }
                i += 1
                break
            }
        }
        skipSpace()
        return i == b.count ? members : nil
    }

    private mutating func list() -> [Scalar]? {
        i += 1
        var items: [Scalar] = []
        skipSpace()
        if i < b.count, b[i] == UInt8(ascii: "]") { i += 1; return items }
        while true {
            skipSpace()
            guard let item = scalar() else { return nil }
            items.append(item)
            skipSpace()
            guard i < b.count else { return nil }
            if b[i] == UInt8(ascii: ",") { i += 1; continue }
            guard b[i] == UInt8(ascii: "]") else { return nil }
            i += 1
            return items
        }
    }

    private mutating func scalar() -> Scalar? {
        guard i < b.count else { return nil }
        switch b[i] {
        case UInt8(ascii: "\""): return string().map(Scalar.string)
        case UInt8(ascii: "t"): return word("true") ? .bool(true) : nil
        case UInt8(ascii: "f"): return word("false") ? .bool(false) : nil
        case UInt8(ascii: "n"): return word("null") ? .null : nil
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return number().map(Scalar.number)
        default: return nil
        }
    }

    private mutating func word(_ text: StaticString) -> Bool {
        let n = text.utf8CodeUnitCount
        guard i + n <= b.count else { return false }
        for k in 0..<n where b[i + k] != text.utf8Start[k] { return false }
        i += n
        return true
    }

    /// Powers of ten exactly representable as a Double.
    private static let exactPowersOfTen: [Double] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ]

    /// A number in JSON's grammar with at most 15 significant digits and no exponent (nil otherwise).
    private mutating func number() -> Double? {
        let start = i
        if b[i] == UInt8(ascii: "-") { i += 1 }
        let isDigit = { (c: UInt8) in c >= 48 && c <= 57 }
        guard i < b.count, isDigit(b[i]) else { return nil }
        var mantissa: UInt64 = 0
        var digits = 0
        if b[i] == 48 {
            i += 1
        } else {
            while i < b.count, isDigit(b[i]) {
                mantissa = mantissa &* 10 &+ UInt64(b[i] - 48)
                digits += 1
                i += 1
            }
        }
        var fractionDigits = 0
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            guard i < b.count, isDigit(b[i]) else { return nil }
            while i < b.count, isDigit(b[i]) {
                mantissa = mantissa &* 10 &+ UInt64(b[i] - 48)
                fractionDigits += 1
                i += 1
            }
        }
        var hasExponent = false
        if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
            hasExponent = true
            i += 1
            if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
            guard i < b.count, isDigit(b[i]) else { return nil }
            while i < b.count, isDigit(b[i]) { i += 1 }
        }
        let negative = b[start] == UInt8(ascii: "-")
        // Exact mantissa and exact power of ten: one correctly rounded division, as strtod would give.
        if !hasExponent, digits + fractionDigits <= 15, mantissa != 0 || !negative {
            let value = Double(mantissa) / Self.exactPowersOfTen[fractionDigits]
            return negative ? -value : value
        }
        // Longer numbers and exponents: Foundation's rounding of them differs from strtod's in the
        // last bit, and rows already loaded were read by Foundation, so leave the line to it.
        return nil
    }

    /// A string literal starting at the opening quote; nil when malformed, not UTF-8, or over the limit.
    private mutating func string() -> String? {
        i += 1
        let start = i
        var isASCII = true
        while i < b.count {
            let c = b[i]
            if c == UInt8(ascii: "\"") {
                let raw = UnsafeBufferPointer(rebasing: b[start..<i])
                i += 1
                guard raw.count <= maximumStringBytes else { return nil }
                if isASCII { return String(decoding: raw, as: UTF8.self) }
                return String(validating: raw, as: UTF8.self)
            }
            if c == UInt8(ascii: "\\") { return escapedString(from: start) }
            if c < 0x20 { return nil }
            if c >= 0x80 { isASCII = false }
            i += 1
        }
        return nil
    }

    private mutating func escapedString(from start: Int) -> String? {
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: UnsafeBufferPointer(rebasing: b[start..<i]))
        while i < b.count {
            let c = b[i]
            if c == UInt8(ascii: "\"") {
                i += 1
                guard scratch.count <= maximumStringBytes else { return nil }
                return String(validating: scratch, as: UTF8.self)
            }
            if c < 0x20 { return nil }
            if c != UInt8(ascii: "\\") {
                scratch.append(c)
                i += 1
                continue
            }
            i += 1
            guard i < b.count else { return nil }
            switch b[i] {
            case UInt8(ascii: "u"):
                guard var unit = hex4(at: i + 1) else { return nil }
                i += 4
                if unit >= 0xD800, unit <= 0xDBFF {
                    guard i + 2 < b.count, b[i + 1] == UInt8(ascii: "\\"), b[i + 2] == UInt8(ascii: "u"),
                          let low = hex4(at: i + 3), low >= 0xDC00, low <= 0xDFFF else { return nil }
                    unit = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                    i += 6
                } else if unit >= 0xDC00, unit <= 0xDFFF {
                    return nil
                }
                guard let scalar = Unicode.Scalar(unit) else { return nil }
                scratch.append(contentsOf: UTF8.encode(scalar)!)
            default:
                guard let unescaped = JSONEscape.simple(b[i]) else { return nil }
                scratch.append(unescaped)
            }
            i += 1
        }
        return nil
    }

    private func hex4(at index: Int) -> UInt32? {
        guard index + 4 <= b.count else { return nil }
        var v: UInt32 = 0
        for k in index..<(index + 4) {
            let c = b[k]
            let digit: UInt8
            switch c {
            case 48...57: digit = c - 48
            case 97...102: digit = c - 87
            case 65...70: digit = c - 55
            default: return nil
            }
            v = v << 4 | UInt32(digit)
        }
        return v
    }
}
