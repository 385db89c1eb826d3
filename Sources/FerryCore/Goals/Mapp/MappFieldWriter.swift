import Foundation

/// Writes a member's Mapp CSV fields straight from its stored properties JSON.
///
/// A 1.5 M-member export spent most of its CPU decoding each document into a dictionary of Strings
/// only to write them out again. This finds the columns' arrays in the UTF-8 bytes and copies plain
/// string values into the CSV as they are (quotes doubled), integers as their digits, `true`/`false`
/// as 1/0 and other numbers through `PropertyValue.format`, so the output is byte for byte what the
/// decoding path writes. Anything else (escapes, dates, objects, odd numbers, a repeated key,
/// malformed text) returns nil before anything is written, and the caller decodes that row the
/// general way (`PropertyCodec`).
struct MappFieldWriter {
    /// The columns' property names as UTF-8, in column order.
    let keys: [[UInt8]]
    /// For a column whose property an earlier column also shows (a goal may map one property to two headers),
    /// that earlier column: it takes the same array.
    private let sameAs: [Int?]

    init(columns: [String]) {
        keys = columns.map { Array($0.utf8) }
        sameAs = columns.indices.map { column in
            columns[..<column].firstIndex(of: columns[column])
        }
    }

    /// What one row came to: whether the identifier column held a non-empty value, and its first value.
    struct Written {
        var hasIdentifier: Bool
        var firstIdentifier: String
    }

    /// Appends the row's column fields (comma-separated, each quoted) to `out`, or returns nil with `out` untouched.
    func append(_ json: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) -> Written? {
        guard let ranges = locate(json) else { return nil }
        let mark = out.count
        var written = Written(hasIdentifier: false, firstIdentifier: "")
        for (column, range) in ranges.enumerated() {
            if column > 0 { out.append(UInt8(ascii: ",")) }
            out.append(UInt8(ascii: "\""))
            if let range {
                guard let values = appendValues(json, range, to: &out, keepFirst: column == 0) else {
                    out.removeSubrange(mark...)
                    return nil
                }
                if column == 0 { written = Written(hasIdentifier: values.nonEmpty, firstIdentifier: values.first) }
            }
            out.append(UInt8(ascii: "\""))
        }
        return written
    }

    /// Where each column's array sits in the top-level object (nil for a column that is absent or not an array).
    private func locate(_ json: UnsafeBufferPointer<UInt8>) -> [Range<Int>?]? {
        var scanner = JSONScanner(bytes: json)
        var ranges = [Range<Int>?](repeating: nil, count: keys.count)
        var seen = [Bool](repeating: false, count: keys.count)
        guard scanner.take(UInt8(ascii: "{")) else { return nil }
        if scanner.take(UInt8(ascii: "}")) { return scanner.atEndAfterSpace ? ranges : nil }
        while true {
            scanner.skipSpace()
            guard let key = scanner.plainString() else { return nil }
            guard scanner.take(UInt8(ascii: ":")) else { return nil }
            scanner.skipSpace()
            let column = keys.firstIndex { $0.elementsEqual(UnsafeBufferPointer(rebasing: json[key])) }
            let start = scanner.index
            guard scanner.skipValue() else { return nil }
            if let column {
                // A repeated key, or a value that is not an array: the general path knows what to make of it.
                guard !seen[column], json[start] == UInt8(ascii: "[") else { return nil }
                seen[column] = true
                ranges[column] = start..<scanner.index
            }
            if scanner.take(UInt8(ascii: ",")) { continue }
            guard scanner.take(UInt8(ascii: "}")), scanner.atEndAfterSpace else { return nil }
            for (column, earlier) in sameAs.enumerated() { if let earlier { ranges[column] = ranges[earlier] } }
            return ranges
        }
    }

    /// The values of one array, joined with `,`: whether any was non-empty and (when `keepFirst`) the first
    /// as text; nil when one of them needs the general path.
    private func appendValues(_ json: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, to out: inout [UInt8],
                              keepFirst: Bool) -> (nonEmpty: Bool, first: String)? {
        var scanner = JSONScanner(bytes: UnsafeBufferPointer(rebasing: json[..<range.upperBound]))
        scanner.index = range.lowerBound
        guard scanner.take(UInt8(ascii: "[")) else { return nil }
        var nonEmpty = false, first = ""
        if scanner.take(UInt8(ascii: "]")) { return (nonEmpty, first) }
        var count = 0
        while true {
            scanner.skipSpace()
            guard !scanner.atEnd else { return nil }
            let byte = json[scanner.index]
            var value: Range<Int>?
            var text: [UInt8]?
            switch byte {
            case UInt8(ascii: "\""):
                guard let string = scanner.plainString() else { return nil }
                value = string
            case UInt8(ascii: "t"):
                guard scanner.literal("true") else { return nil }
                text = [UInt8(ascii: "1")]
            case UInt8(ascii: "f"):
                guard scanner.literal("false") else { return nil }
                text = [UInt8(ascii: "0")]
            case UInt8(ascii: "n"):
                guard scanner.literal("null") else { return nil }  // null drops out, as when decoding
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                guard let number = scanner.number() else { return nil }
                if number.isPlainInteger {
                    value = number.range
                } else {
                    guard let parsed = Double(String(decoding: UnsafeBufferPointer(rebasing: json[number.range]), as: UTF8.self)),
                          parsed.isFinite else { return nil }
                    text = Array(PropertyValue.format(number: parsed).utf8)
                }
            default:
                return nil  // dates, other objects, nested arrays
            }
            if value != nil || text != nil {
                if count > 0 { out.append(UInt8(ascii: ",")) }
                let start = out.count
                if let value {
                    let bytes = UnsafeBufferPointer(rebasing: json[value])
                    var high: UInt8 = 0
                    for byte in bytes {
                        high |= byte
                        if byte == UInt8(ascii: "\"") { out.append(byte) }
                        out.append(byte)
                    }
                    // Decoding would repair invalid UTF-8; such a row takes the general path.
                    if high >= 0x80, !String(decoding: bytes, as: UTF8.self).utf8.elementsEqual(bytes) { return nil }
                } else if let text {
                    out.append(contentsOf: text)
                }
                if out.count > start { nonEmpty = true }
                if keepFirst && count == 0 {
                    first = value.map { String(decoding: UnsafeBufferPointer(rebasing: json[$0]), as: UTF8.self) }
                        ?? String(decoding: text ?? [], as: UTF8.self)
                }
                count += 1
            }
            if scanner.take(UInt8(ascii: ",")) { continue }
            return scanner.take(UInt8(ascii: "]")) ? (nonEmpty, first) : nil
        }
    }
}

/// A cursor over JSON bytes that reads only what `MappFieldWriter` copies as is and skips the rest.
private struct JSONScanner {
    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0

    init(bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    var atEnd: Bool { index >= bytes.count }

    var atEndAfterSpace: Bool {
        mutating get {
            skipSpace()
            return atEnd
        }
    }

    mutating func skipSpace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    mutating func take(_ byte: UInt8) -> Bool {
        skipSpace()
        guard index < bytes.count, bytes[index] == byte else { return false }
        index += 1
        return true
    }

    mutating func literal(_ word: StaticString) -> Bool {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count else { return false }
        for i in 0..<count where bytes[index + i] != word.utf8Start[i] { return false }
        index += count
        return true
    }

    /// The contents of a string without escapes or control characters; nil for anything else.
    mutating func plainString() -> Range<Int>? {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return nil }
        let start = index + 1
        var end = start
        while end < bytes.count {
            let byte = bytes[end]
            if byte == UInt8(ascii: "\"") {
                index = end + 1
                return start..<end
            }
            if byte == UInt8(ascii: "\\") || byte < 0x20 { return nil }
            end += 1
        }
        return nil
    }

    /// A JSON number's text, and whether its digits are already what `PropertyValue.format` writes
    /// (an integer of at most 15 digits, not `-0`); nil for forms the general path should judge.
    mutating func number() -> (range: Range<Int>, isPlainInteger: Bool)? {
        let start = index
        guard let scan = JSONNumberScan(bytes, at: start) else { return nil }
        index = scan.end
        guard index - start <= 40, !scan.isInteger || scan.integerDigits <= 15 else { return nil }
        return (start..<index, scan.isInteger && !scan.isNegativeZero)
    }

    /// Skips one JSON value of any kind (strings with escapes included); false when malformed.
    mutating func skipValue() -> Bool {
        skipSpace()
        guard index < bytes.count else { return false }
        switch bytes[index] {
        case UInt8(ascii: "\""):
            index += 1
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\\") {
                    index += 2
                    continue
                }
                index += 1
                if byte == UInt8(ascii: "\"") { return true }
            }
            return false
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            var depth = 0
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    guard skipValue() else { return false }
                    continue
                }
                index += 1
                if byte == UInt8(ascii: "{") || byte == UInt8(ascii: "[") { depth += 1 }
                if byte == UInt8(ascii: "}") || byte == UInt8(ascii: "]") {
                    depth -= 1
                    if depth == 0 { return true }
                }
            }
            return false
        default:
            while index < bytes.count {
                switch bytes[index] {
                case UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), 0x20, 0x09, 0x0A, 0x0D: return true
                default: index += 1
                }
            }
            return true
        }
    }
}
