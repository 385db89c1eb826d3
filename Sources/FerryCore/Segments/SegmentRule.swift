import Foundation

/// A value a segment condition compares with: text or a number, as written in segments.yaml.
public enum RuleValue: Hashable, Sendable, CustomStringConvertible {
    case text(String)
    case number(Double)

    public var description: String {
        switch self {
        case .text(let s): return s
        case .number(let n): return PropertyValue.format(number: n)
        }
    }

    /// Whether a profile value equals this one: numerically when both are numbers, else as text.
    func matches(_ value: PropertyValue) -> Bool {
        switch (self, value) {
        case (.number(let a), _): return value.numberValue == a
        case (.text(let a), .date(let d)): return ISO8601.parse(a).map { $0 == d } ?? false
        case (.text(let a), _): return value.description == a
        }
    }
}

/// One test on a property's values; a multi-valued property passes when any value passes.
public enum SegmentOperator: Hashable, Sendable {
    case eq(RuleValue)
    case ne(RuleValue)
    case `in`([RuleValue])
    case contains(String)
    case exists(Bool)
    case gt(Double), gte(Double), lt(Double), lte(Double)
    case before(Date), after(Date)
    case withinDays(Int)
}

/// A segment's membership rule: conditions combined with all / any / not.
public indirect enum SegmentRule: Hashable, Sendable {
    case all([SegmentRule])
    case any([SegmentRule])
    case not(SegmentRule)
    case condition(property: String, SegmentOperator)

    /// Whether `profile` is in the segment at instant `now`.
    public func matches(_ profile: Profile, now: Date) -> Bool {
        switch self {
        case .all(let rules): return rules.allSatisfy { $0.matches(profile, now: now) }
        case .any(let rules): return rules.contains { $0.matches(profile, now: now) }
        case .not(let rule): return !rule.matches(profile, now: now)
        case .condition(let property, let op):
            let values = profile[property]
            switch op {
            case .eq(let v): return values.contains(where: v.matches)
            case .ne(let v): return !values.contains(where: v.matches)
            case .in(let options): return values.contains { value in options.contains { $0.matches(value) } }
            case .contains(let text):
                return values.contains { $0.description.localizedCaseInsensitiveContains(text) }
            case .exists(let wanted): return values.isEmpty != wanted
            case .gt(let n): return values.contains { ($0.numberValue ?? -.infinity) > n }
            case .gte(let n): return values.contains { ($0.numberValue ?? -.infinity) >= n }
            case .lt(let n): return values.contains { ($0.numberValue ?? .infinity) < n }
            case .lte(let n): return values.contains { ($0.numberValue ?? .infinity) <= n }
            case .before(let d): return values.contains { ($0.dateValue ?? .distantFuture) < d }
            case .after(let d): return values.contains { ($0.dateValue ?? .distantPast) > d }
            case .withinDays(let days):
                let earliest = now.addingTimeInterval(-Double(days) * 86_400)
                return values.contains { $0.dateValue.map { $0 >= earliest && $0 <= now } ?? false }
            }
        }
    }
}

/// A named segment: a rule, or (with no rule) only the profiles explicitly placed in it when loaded.
public struct SegmentDefinition: Hashable, Sendable {
    /// The segment's stable id, `[a-z0-9-]+`.
    public var name: String
    public var rule: SegmentRule?

    public init(name: String, rule: SegmentRule?) {
        self.name = name
        self.rule = rule
    }

    /// Whether `profile` belongs: it matches the rule, or it was explicitly placed in the segment.
    public func contains(_ profile: Profile, now: Date) -> Bool {
        contains(profile, explicit: profile[Profile.segmentsProperty], now: now)
    }

    /// `contains(_:now:)` with the profile's `segments` values looked up once for all segments.
    func contains(_ profile: Profile, explicit: [PropertyValue], now: Date) -> Bool {
        // Not `explicitSegments`: that builds an array per segment per profile, and loads test millions.
        for value in explicit {
            if case .string(let s) = value { if s == name { return true } } else if value.description == name { return true }
        }
        return rule?.matches(profile, now: now) ?? false
    }
}
