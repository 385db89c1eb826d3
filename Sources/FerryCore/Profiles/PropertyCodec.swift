import Foundation

/// Why a profile's stored or loaded properties could not be read.
public struct PropertyCodecError: Error, Hashable, Sendable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// Encodes a profile's properties as the compact JSON object the store keeps in one column.
///
/// Strings and numbers are plain JSON; a date is `{"$date":"…Z"}` so it keeps its type.
public enum PropertyCodec {
    /// The JSON text of `properties`, keys sorted so equal profiles encode equally.
    public static func encode(_ properties: [String: [PropertyValue]]) -> String {
        // Written as bytes: appending to a String piece by piece cost a tenth of a million-row load.
        var out: [UInt8] = []
        out.reserveCapacity(64 + properties.count * 32)
        out.append(UInt8(ascii: "{"))
        var first = true
        // The entries sorted, not the keys: each key looked up again was a tenth of encoding a profile.
        for (key, values) in properties.sorted(by: { $0.key < $1.key }) where !values.isEmpty {
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            appendEntry(key: key, values: values, to: &out)
        }
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }

    /// One `"key":[values]` entry as `encode` writes it inside its braces (an import splices such entries into
    /// stored text, so both must write the same bytes: they share this).
    static func appendEntry(key: String, values: [PropertyValue], to out: inout [UInt8]) {
        appendString(key, to: &out)
        out.append(UInt8(ascii: ":"))
        out.append(UInt8(ascii: "["))
        for (i, value) in values.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            switch value {
            case .string(let s): appendString(s, to: &out)
            case .number(let n): appendNumber(n, to: &out)
            case .date(let d):
                out.append(contentsOf: #"{"$date":""#.utf8)
                ISO8601.append(d, to: &out)
                out.append(contentsOf: #""}"#.utf8)
            }
        }
        out.append(UInt8(ascii: "]"))
    }

    /// Appends what `PropertyValue.format(number:)` writes (`null` when not finite), integers without a String.
    static func appendNumber(_ n: Double, to out: inout [UInt8]) {
        guard n.isFinite else { out.append(contentsOf: "null".utf8); return }
        guard n.rounded() == n, abs(n) < 1e15 else { out.append(contentsOf: String(n).utf8); return }
        DecimalDigits.append(Int64(n), to: &out)  // -0 is written as 0, as before
    }

    /// Reads what `encode` wrote.
    public static func decode(_ text: String) throws(PropertyCodecError) -> [String: [PropertyValue]] {
        var text = text
        if let fast = text.withUTF8({ PropertyDecoder.decode($0) }) { return fast }
        return try foundationDecode(text)
    }

    /// Reads what `encode` wrote from UTF-8 `bytes`, keeping only the properties named in `keys` (all when nil).
    public static func decode(utf8 bytes: UnsafeBufferPointer<UInt8>, keys: PropertyKeys? = nil) throws(PropertyCodecError) -> [String: [PropertyValue]] {
        if let fast = PropertyDecoder.decode(bytes, keys: keys) { return fast }
        var all = try foundationDecode(String(decoding: bytes, as: UTF8.self))
        if let keys { all = all.filter { keys.contains($0.key) } }
        return all
    }

    /// The reference reading, through Foundation: the fast parser defers to it whenever it is unsure.
    static func foundationDecode(_ text: String) throws(PropertyCodecError) -> [String: [PropertyValue]] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw PropertyCodecError(message: "stored properties are not a JSON object")
        }
        var result: [String: [PropertyValue]] = [:]
        for (key, raw) in object {
            guard let array = raw as? [Any] else { continue }
            result[key] = array.compactMap(storedValue)
        }
        return result
    }

    private static func storedValue(_ raw: Any) -> PropertyValue? {
        if let s = raw as? String { return .string(s) }
        if let dict = raw as? [String: Any], let s = dict["$date"] as? String, let d = ISO8601.parse(s) { return .date(d) }
        if let n = raw as? NSNumber { return .number(n.doubleValue) }
        return nil
    }

    /// Appends `s` as a JSON string literal.
    static func appendString(_ s: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        // Through the contiguous bytes: scanning the UTF-8 view byte by byte was a quarter of this function's time.
        var s = s
        s.withUTF8 { utf8 in
            // Most values need no escaping: append them whole.
            guard utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) else {
                out.append(contentsOf: utf8)
                return
            }
            let hex = Array("0123456789abcdef".utf8)
            for c in utf8 {
                switch c {
                case 0x22: out.append(contentsOf: #"\""#.utf8)
                case 0x5C: out.append(contentsOf: #"\\"#.utf8)
                case 0x0A: out.append(contentsOf: #"\n"#.utf8)
                case 0x0D: out.append(contentsOf: #"\r"#.utf8)
                case 0x09: out.append(contentsOf: #"\t"#.utf8)
                case 0..<0x20: out.append(contentsOf: [0x5C, UInt8(ascii: "u"), 48, 48, hex[Int(c >> 4)], hex[Int(c & 15)]])
                default: out.append(c)
                }
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

/// Which properties identify a profile, and how their values are compared.
public enum Identifiers {
    /// `email`, and every property whose name ends in `_id` (`sailthru_profile_id`, `customer_id`, …).
    public static func isIdentifier(_ property: String) -> Bool {
        property == "email" || property.hasSuffix("_id")
    }

    /// The form identifier values are indexed and looked up by: emails trimmed and lower-cased.
    public static func normalized(_ value: String, property: String) -> String {
        let trimmed = value.trimmedOfSpaces
        guard property == "email" else { return trimmed }
        // Most emails are already lower-case ASCII: keep the string instead of building a new one.
        if !trimmed.utf8.contains(where: { $0 >= 0x80 || ($0 >= 65 && $0 <= 90) }) { return trimmed }
        return trimmed.lowercased()
    }
}

extension String {
    /// The string without leading and trailing spaces and tabs (fast: the common case allocates nothing new).
    var trimmedOfSpaces: String {
        let utf8 = self.utf8
        guard let first = utf8.first, let last = utf8.last,
              first == 32 || first == 9 || last == 32 || last == 9 else { return self }
        let isSpace: (UInt8) -> Bool = { $0 == 32 || $0 == 9 }
        guard let start = utf8.firstIndex(where: { !isSpace($0) }), let end = utf8.lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[start...end])
    }
}
