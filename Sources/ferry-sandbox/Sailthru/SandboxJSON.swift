import Foundation

/// A JSON value in the sandbox (its own type: the sandbox shares no code with FerryCore).
enum JSON: Sendable, Hashable, Codable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSON])
    case object([String: JSON])

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let v = try? c.decode(Bool.self) { self = .bool(v) }
        else if let v = try? c.decode(Int.self) { self = .int(v) }
        else if let v = try? c.decode(Double.self) { self = .double(v) }
        else if let v = try? c.decode(String.self) { self = .string(v) }
        else if let v = try? c.decode([JSON].self) { self = .array(v) }
        else { self = .object(try c.decode([String: JSON].self)) }
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let v): try c.encode(v)
        case .int(let v): try c.encode(v)
        case .double(let v): try c.encode(v)
        case .string(let v): try c.encode(v)
        case .array(let v): try c.encode(v)
        case .object(let v): try c.encode(v)
        }
    }

    /// Parses JSON text as `JSONDecoder` would (see `JSONBytes`); nil when it is not valid JSON.
    static func parse(_ text: String) -> JSON? {
        JSONBytes.parse(text)
    }

    /// Compact (or pretty) text with sorted keys and unescaped slashes.
    func text(pretty: Bool = false) -> String {
        if !pretty {
            var out: [UInt8] = []
            out.reserveCapacity(256)
            if JSONBytes.write(self, to: &out) { return String(decoding: out, as: UTF8.self) }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "null"
    }

    subscript(key: String) -> JSON? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    var string: String? { if case .string(let s) = self { s } else { nil } }
    var object: [String: JSON]? {
        switch self {
        case .object(let o): o
        case .array(let a) where a.isEmpty: [:]
        default: nil
        }
    }
    var array: [JSON]? { if case .array(let a) = self { a } else { nil } }

    /// 1/true → true, 0/false → false (Sailthru list flags and `primary`).
    var flag: Bool? {
        switch self {
        case .bool(let b): b
        case .int(let i): i != 0
        case .double(let d): d != 0
        case .string(let s): ["1", "true"].contains(s) ? true : (["0", "false", ""].contains(s) ? false : nil)
        default: nil
        }
    }

    /// Scalars as text (for CSV cells and smart-list comparisons); containers as compact JSON.
    var cell: String {
        switch self {
        case .null: ""
        case .bool(let b): b ? "true" : "false"
        case .int(let i): String(i)
        case .double(let d): d.rounded() == d && abs(d) < 1e15 ? String(Int(d)) : String(d)
        case .string(let s): s
        case .array, .object: text()
        }
    }
}
