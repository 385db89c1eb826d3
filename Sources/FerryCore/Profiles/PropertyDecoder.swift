import Foundation

/// Reads the stored properties JSON byte by byte, optionally keeping only some keys.
///
/// Exports read millions of documents; Foundation's `JSONSerialization` boxes every value in an
/// `Any` and costs several microseconds a document. This parser reads the one shape the store
/// holds (an object of arrays of strings, numbers and `{"$date": …}`) straight from UTF-8 and
/// skips the values of keys the caller does not need. It keeps `JSONSerialization`'s reading
/// (a non-array value drops its key, `null` and nested arrays drop out, `true`/`false` read as
/// 1/0); anything it is not sure of (odd escapes, huge numbers, malformed text) returns nil so
/// the caller falls back to Foundation and gets the same answer and the same errors as before.
struct PropertyDecoder {
    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0

    private init(bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    /// The properties in `bytes`, only those named in `keys` when given; nil when not sure (see the type).
    static func decode(_ bytes: UnsafeBufferPointer<UInt8>, keys: PropertyKeys? = nil) -> [String: [PropertyValue]]? {
        var decoder = PropertyDecoder(bytes: bytes)
        return decoder.object(keeping: keys)
    }

    private var atEnd: Bool { index >= bytes.count }

    private mutating func skipSpace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    private mutating func take(_ byte: UInt8) -> Bool {
        skipSpace()
        guard index < bytes.count, bytes[index] == byte else { return false }
        index += 1
        return true
    }

    private mutating func object(keeping kept: PropertyKeys?) -> [String: [PropertyValue]]? {
        guard take(UInt8(ascii: "{")) else { return nil }
        // Room for every kept key: grown one at a time, the result was copied into larger storage twice.
        var result: [String: [PropertyValue]] = Dictionary(minimumCapacity: kept?.count ?? 0)
        if take(UInt8(ascii: "}")) { return finish(result) }
        while true {
            skipSpace()
            guard let keptKey = key(kept) else { return nil }
            guard take(UInt8(ascii: ":")) else { return nil }
            skipSpace()
            guard !atEnd else { return nil }
            if let key = keptKey, bytes[index] == UInt8(ascii: "[") {
                guard let values = array() else { return nil }
                result[key] = values
            } else {
                guard skipValue() else { return nil }
                // JSONSerialization's reading drops a key whose value is not an array (and a later duplicate wins).
                if let key = keptKey { result[key] = nil }
            }
            if take(UInt8(ascii: ",")) { continue }
            guard take(UInt8(ascii: "}")) else { return nil }
            return finish(result)
        }
    }

    /// The object key at the current byte: `.some(nil)` when `kept` leaves it out, nil when malformed.
    private mutating func key(_ kept: PropertyKeys?) -> String?? {
        guard let kept else { return string().map { .some($0) } }
        // Plain ASCII keys are matched on their bytes (``PropertyKeys/name(utf8:)``); any other is read as `string()`
        // reads it, then looked up.
        guard let plain = plainASCIIString() else { return string().map { kept.contains($0) ? $0 : nil } }
        return .some(kept.name(utf8: plain))
    }

    /// The bytes of the string at the current byte when they are ASCII with no escape or control character, moving
    /// past it; nil (not moving) otherwise.
    private mutating func plainASCIIString() -> UnsafeBufferPointer<UInt8>? {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return nil }
        var end = index + 1
        while end < bytes.count {
            let byte = bytes[end]
            if byte == UInt8(ascii: "\"") {
                let plain = UnsafeBufferPointer(rebasing: bytes[(index + 1)..<end])
                index = end + 1
                return plain
            }
            if byte == UInt8(ascii: "\\") || byte < 0x20 || byte >= 0x80 { return nil }
            end += 1
        }
        return nil
    }

    private mutating func finish(_ result: [String: [PropertyValue]]) -> [String: [PropertyValue]]? {
        skipSpace()
        return atEnd ? result : nil
    }

    private mutating func array() -> [PropertyValue]? {
        guard take(UInt8(ascii: "[")) else { return nil }
        var values: [PropertyValue] = []
        if take(UInt8(ascii: "]")) { return values }
        while true {
            skipSpace()
            guard !atEnd else { return nil }
            switch bytes[index] {
            case UInt8(ascii: "\""):
                guard let s = string() else { return nil }
                values.append(.string(s))
            case UInt8(ascii: "{"):
                guard let date = dateObject() else { return nil }
                if let date { values.append(.date(date)) }
            case UInt8(ascii: "t"):
                guard literal("true") else { return nil }
                values.append(.number(1))
            case UInt8(ascii: "f"):
                guard literal("false") else { return nil }
                values.append(.number(0))
            case UInt8(ascii: "n"):
                guard literal("null") else { return nil }
            case UInt8(ascii: "["):
                guard skipValue() else { return nil }
            default:
                guard let n = number() else { return nil }
                values.append(.number(n))
            }
            if take(UInt8(ascii: ",")) { continue }
            guard take(UInt8(ascii: "]")) else { return nil }
            return values
        }
    }

    /// `{"$date": "…"}`: `.some(date)`, `.some(nil)` for any other object (dropped), nil when malformed.
    private mutating func dateObject() -> Date?? {
        guard take(UInt8(ascii: "{")) else { return nil }
        var date: Date?
        if take(UInt8(ascii: "}")) { return .some(nil) }
        while true {
            skipSpace()
            guard let key = string(), take(UInt8(ascii: ":")) else { return nil }
            skipSpace()
            guard !atEnd else { return nil }
            if key == "$date", bytes[index] == UInt8(ascii: "\"") {
                guard let text = string() else { return nil }
                date = ISO8601.parse(text)
            } else {
                if key == "$date" { date = nil }
                guard skipValue() else { return nil }
            }
            if take(UInt8(ascii: ",")) { continue }
            guard take(UInt8(ascii: "}")) else { return nil }
            return .some(date)
        }
    }

    private mutating func literal(_ word: StaticString) -> Bool {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count else { return false }
        let start = word.utf8Start
        for i in 0..<count where bytes[index + i] != start[i] { return false }
        index += count
        return true
    }

    /// A JSON number, read as `Double(text)` does (correctly rounded); nil for forms Foundation might read differently.
    private mutating func number() -> Double? {
        let start = index
        // JSON forbids leading zeros; Foundation rejects them, so the scan's nil lets it say so.
        guard let scan = JSONNumberScan(bytes, at: start) else { return nil }
        index = scan.end
        // Long integers may come back from Foundation as Decimal or UInt64; leave them to it.
        if scan.isInteger && scan.integerDigits > 15 { return nil }
        guard index - start <= 40 else { return nil }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        guard let value = Double(text), value.isFinite else { return nil }
        return value
    }

    /// A JSON string at the current byte; nil when malformed or when it holds escapes other than the simple ones.
    private mutating func string() -> String? {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return nil }
        index += 1
        let start = index
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let s = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
                index += 1
                return s
            }
            if byte == UInt8(ascii: "\\") { return escapedString(from: start) }
            if byte < 0x20 { return nil }
            index += 1
        }
        return nil
    }

    private mutating func escapedString(from start: Int) -> String? {
        var out: [UInt8] = Array(UnsafeBufferPointer(rebasing: bytes[start..<index]))
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                return String(decoding: out, as: UTF8.self)
            }
            if byte < 0x20 { return nil }
            guard byte == UInt8(ascii: "\\") else {
                out.append(byte)
                index += 1
                continue
            }
            guard index + 1 < bytes.count else { return nil }
            let escape = bytes[index + 1]
            index += 2
            switch escape {
            case UInt8(ascii: "u"):
                guard let unit = hex4() else { return nil }
                // Surrogates (pairs or lone) are rare: let Foundation decide what they mean.
                guard unit < 0xD800 || unit > 0xDFFF, let scalar = Unicode.Scalar(unit) else { return nil }
                out.append(contentsOf: String(Character(scalar)).utf8)
            default:
                guard let unescaped = JSONEscape.simple(escape) else { return nil }
                out.append(unescaped)
            }
        }
        return nil
    }

    private mutating func hex4() -> UInt32? {
        guard index + 4 <= bytes.count else { return nil }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[index]
            let digit: UInt32
            switch c {
            case 0x30...0x39: digit = UInt32(c - 0x30)
            case 0x41...0x46: digit = UInt32(c - 0x41 + 10)
            case 0x61...0x66: digit = UInt32(c - 0x61 + 10)
            default: return nil
            }
            value = value << 4 | digit
            index += 1
        }
        return value
    }

    /// Skips one JSON value of any kind; false when malformed.
    private mutating func skipValue() -> Bool {
        skipSpace()
        guard index < bytes.count else { return false }
        switch bytes[index] {
        case UInt8(ascii: "\""):
            return skipString()
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            let close = bytes[index] == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
            let isObject = close == UInt8(ascii: "}")
            index += 1
            if take(close) { return true }
            while true {
                if isObject {
                    skipSpace()
                    guard skipString(), take(UInt8(ascii: ":")) else { return false }
                }
                guard skipValue() else { return false }
                if take(UInt8(ascii: ",")) { continue }
                return take(close)
            }
        case UInt8(ascii: "t"): return literal("true")
        case UInt8(ascii: "f"): return literal("false")
        case UInt8(ascii: "n"): return literal("null")
        default: return number() != nil
        }
    }

    private mutating func skipString() -> Bool {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return false }
        index += 1
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") { index += 1; return true }
            if byte < 0x20 { return false }
            index += byte == UInt8(ascii: "\\") ? 2 : 1
        }
        return false
    }
}
