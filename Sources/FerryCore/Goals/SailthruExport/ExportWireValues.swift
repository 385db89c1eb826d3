import Foundation

/// Turns profile values into Sailthru vars with DESIGN.md's wire types (pure: no store, no network).
///
/// Rules: a property with several values → an array; numbers → integers; names ending in `_time` →
/// UNIX seconds; ending in `_date` → `YYYY-MM-DD`; other date-times → ISO 8601 UTC with milliseconds;
/// everything else → strings. Segments and objectives are always arrays (they are sets by nature).
public enum ExportWireValues {
    /// The var for one field, or nil when the profile has no value for it (nil vars are not sent,
    /// so Sailthru keeps what it had rather than losing a value ferry merely does not know).
    public static func value(of field: ExportField, profile: Profile, segments: [String]) -> JSONValue? {
        switch field.value {
        case .property(let name):
            let values = profile[name]
            guard !values.isEmpty else { return nil }
            // The source property's suffix decides; the var name is the fallback for unsuffixed properties.
            let kind = TimeKind(name: name) ?? TimeKind(name: field.to)
            let converted = values.map { convert($0, kind: kind) }
            return converted.count == 1 ? converted[0] : .array(converted)
        case .segments(let chosen):
            let names = chosen.map { wanted in wanted.filter(segments.contains) } ?? segments.sorted()
            return .array(names.map(JSONValue.string))
        case .objectives:
            return .array(profile.objectives.map(JSONValue.string))
        case .profileID:
            return .string(profile.id)
        case .text(let text):
            return .string(text)
        }
    }

    /// Every field's var for one profile (fields without a value are left out).
    public static func vars(for fields: [ExportField], profile: Profile, segments: [String]) -> [String: JSONValue] {
        var vars: [String: JSONValue] = [:]
        for field in fields {
            if let value = value(of: field, profile: profile, segments: segments) { vars[field.to] = value }
        }
        return vars
    }

    /// How a name's suffix asks for instants to be written.
    enum TimeKind {
        case unixSeconds, day
        init?(name: String) {
            if name.hasSuffix("_time") { self = .unixSeconds }
            else if name.hasSuffix("_date") { self = .day }
            else { return nil }
        }
    }

    /// One value on the wire.
    static func convert(_ value: PropertyValue, kind: TimeKind?) -> JSONValue {
        switch (kind, value) {
        case (.unixSeconds?, _):
            if let date = value.dateValue { return .number(date.timeIntervalSince1970.rounded(.down)) }
            if let number = value.numberValue { return integer(number) }
            return .string(value.description)
        case (.day?, _):
            if let date = value.dateValue { return .string(ISO8601.formatDate(date)) }
            return .string(value.description)
        case (nil, .date(let date)):
            return .string(ISO8601.format(date))
        case (nil, .number(let number)):
            return integer(number)
        case (nil, .string(let text)):
            return .string(text)
        }
    }

    /// DESIGN.md: numbers go out as integers (rounded half away from zero), non-finite ones as text.
    static func integer(_ number: Double) -> JSONValue {
        guard number.isFinite, abs(number) < 1e15 else { return .string(PropertyValue.format(number: number)) }
        return .number(number.rounded())
    }
}
