import Foundation

/// Rewrites a profile's stored properties JSON with some properties replaced, copying the rest as stored.
///
/// An import changes four or five of a profile's properties; decoding all of them into a
/// dictionary and encoding them back cost more than the rest of a row. The store writes the
/// text with `PropertyCodec.encode` (keys sorted, empty properties left out), so replacing a
/// key's entry in place gives exactly what encoding the merged profile would. Text that is not
/// in that form (keys out of order, escaped or non-ASCII keys, anything unexpected) returns nil
/// and the caller encodes the whole profile instead.
enum ImportStoredText {
    /// `stored` with each of `changes` (sorted by key, unique) written as `PropertyCodec.encode` writes it
    /// (a property without values is left out); nil when `stored` is not canonical text.
    static func splice(_ stored: String, changes: [(key: String, values: [PropertyValue])]) -> String? {
        var text = stored
        return text.withUTF8 { splice($0, changes: changes) }
    }

    private static func splice(_ bytes: UnsafeBufferPointer<UInt8>, changes: [(key: String, values: [PropertyValue])]) -> String? {
        guard bytes.count >= 2, bytes[0] == UInt8(ascii: "{"), bytes[bytes.count - 1] == UInt8(ascii: "}") else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 64)
        out.append(UInt8(ascii: "{"))
        var wroteEntry = false
        var nextChange = 0
        func emit(_ change: (key: String, values: [PropertyValue])) {
            guard !change.values.isEmpty else { return }
            if wroteEntry { out.append(UInt8(ascii: ",")) }
            PropertyCodec.appendEntry(key: change.key, values: change.values, to: &out)
            wroteEntry = true
        }
        var index = 1
        var previousKey: UnsafeBufferPointer<UInt8>?
        if bytes.count > 2 {
            while true {
                // "key":
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return nil }
                let entryStart = index
                index += 1
                let keyStart = index
                while index < bytes.count, bytes[index] != UInt8(ascii: "\"") {
                    let b = bytes[index]
                    // Escaped or non-ASCII keys: their sort order is not plain byte order; let the caller encode.
                    if b == UInt8(ascii: "\\") || b < 0x20 || b >= 0x80 { return nil }
                    index += 1
                }
                guard index < bytes.count else { return nil }
                let key = UnsafeBufferPointer(rebasing: bytes[keyStart..<index])
                index += 1
                guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { return nil }
                index += 1
                guard let valueEnd = skipValue(bytes, from: index) else { return nil }
                index = valueEnd
                if let previousKey, !previousKey.lexicographicallyPrecedes(key) { return nil }
                previousKey = key
                // Changes sorting before this key come first; a change of this key replaces it.
                var replaced = false
                while nextChange < changes.count {
                    let order = compare(changes[nextChange].key, key)
                    if order > 0 { break }
                    emit(changes[nextChange])
                    nextChange += 1
                    if order == 0 { replaced = true; break }
                }
                if !replaced {
                    if wroteEntry { out.append(UInt8(ascii: ",")) }
                    out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[entryStart..<valueEnd]))
                    wroteEntry = true
                }
                guard index < bytes.count else { return nil }
                if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                guard bytes[index] == UInt8(ascii: "}"), index == bytes.count - 1 else { return nil }
                break
            }
        }
        while nextChange < changes.count {
            emit(changes[nextChange])
            nextChange += 1
        }
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }

    /// -1, 0 or 1 as `key`'s UTF-8 sorts before, equal to or after `stored`; keys with non-ASCII bytes never reach here.
    /// Walks the key's UTF-8 view in place: a copy of the key to call `withUTF8` on, for each stored key of each
    /// profile, was a retain and release apiece.
    private static func compare(_ key: String, _ stored: UnsafeBufferPointer<UInt8>) -> Int {
        var index = 0
        for byte in key.utf8 {
            guard index < stored.count else { return 1 }
            let other = stored[index]
            if byte != other { return byte < other ? -1 : 1 }
            index += 1
        }
        return index == stored.count ? 0 : -1
    }

    /// The index just past the JSON value starting at `start` (an array, object, string or bare word), or nil.
    private static func skipValue(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int? {
        var index = start
        var depth = 0
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "\""):
                // Most of a profile's bytes are inside strings: run to the closing quote in a loop of its own.
                index += 1
                while index < bytes.count, bytes[index] != UInt8(ascii: "\"") {
                    index += bytes[index] == UInt8(ascii: "\\") ? 2 : 1
                }
                guard index < bytes.count else { return nil }
                index += 1
                if depth == 0 { return index }
                continue
            case UInt8(ascii: "["), UInt8(ascii: "{"): depth += 1
            case UInt8(ascii: "]"), UInt8(ascii: "}"):
                if depth == 0 { return index == start ? nil : index }
                depth -= 1
                if depth == 0 { return index + 1 }
            case UInt8(ascii: ","):
                if depth == 0 { return index == start ? nil : index }
            default: break
            }
            index += 1
        }
        return nil
    }
}
