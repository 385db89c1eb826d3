import Foundation

/// One value of a profile property: text, a number, or an instant.
public enum PropertyValue: Hashable, Sendable, CustomStringConvertible {
    case string(String)
    case number(Double)
    case date(Date)

    /// The value as people read it: numbers without a trailing `.0`, dates in ISO 8601 UTC.
    public var description: String {
        switch self {
        case .string(let s): return s
        case .number(let n): return PropertyValue.format(number: n)
        case .date(let d): return ISO8601.format(d)
        }
    }

    /// The number this value holds, if it is a number or text that reads as one.
    public var numberValue: Double? {
        switch self {
        case .number(let n): return n
        case .string(let s): return Double(s.trimmingCharacters(in: .whitespaces))
        case .date: return nil
        }
    }

    /// The instant this value holds, if it is a date or text that reads as one.
    public var dateValue: Date? {
        switch self {
        case .date(let d): return d
        case .string(let s): return ISO8601.parse(s)
        case .number: return nil
        }
    }

    /// Formats a number the way people write it: `3`, `2.5`, never `3.0`.
    public static func format(number n: Double) -> String {
        if n.rounded() == n, abs(n) < 1e15 { return String(Int64(n)) }
        return String(n)
    }

    /// Reads a text value from an input file: ISO 8601 date-times and dates become `.date`, the rest stays text.
    public static func inferred(fromText text: String) -> PropertyValue {
        if let first = text.utf8.first, first >= UInt8(ascii: "0"), first <= UInt8(ascii: "9"),
           let date = ISO8601.parse(text) {
            return .date(date)
        }
        return .string(text)
    }
}

/// A profile: an id and named properties, each holding a list of values.
public struct Profile: Hashable, Sendable {
    public var id: String
    public var properties: [String: [PropertyValue]]

    public init(id: String, properties: [String: [PropertyValue]] = [:]) {
        self.id = id
        self.properties = properties
    }

    /// The values of one property (empty when it has none).
    public subscript(property: String) -> [PropertyValue] {
        get { properties[property] ?? [] }
        set { properties[property] = newValue.isEmpty ? nil : newValue }
    }

    /// The objectives the profile consented to.
    public var objectives: [String] { self[Profile.objectivesProperty].map(\.description) }

    /// The segments the profile was explicitly placed in when it was loaded.
    public var explicitSegments: [String] { self[Profile.segmentsProperty].map(\.description) }

    /// The reserved property listing consented objectives.
    public static let objectivesProperty = "objectives"
    /// The reserved property listing explicitly assigned segments.
    public static let segmentsProperty = "segments"
}
