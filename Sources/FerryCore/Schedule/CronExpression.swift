import Foundation

/// Why a cron expression was refused: which field, and what is wrong with it.
public struct CronParseError: Error, Hashable, Sendable, CustomStringConvertible {
    /// `minute`, `hour`, `day-of-month`, `month`, `day-of-week`, or `expression` for the whole.
    public let field: String
    public let message: String

    public var description: String { "cron \(field): \(message)" }
}

/// A 5-field Vixie cron expression: minute hour day-of-month month day-of-week.
public struct CronExpression: Hashable, Sendable, CustomStringConvertible {
    public let source: String
    public let minutes: Set<Int>       // 0...59
    public let hours: Set<Int>         // 0...23
    public let daysOfMonth: Set<Int>   // 1...31
    public let months: Set<Int>        // 1...12
    public let daysOfWeek: Set<Int>    // 0...6, 0 = Sunday (7 is folded into 0)
    /// Whether the day-of-month field was restricted (did not start with `*`).
    public let isDayOfMonthRestricted: Bool
    /// Whether the day-of-week field was restricted (did not start with `*`).
    public let isDayOfWeekRestricted: Bool

    private static let monthNames = ["jan", "feb", "mar", "apr", "may", "jun",
                                     "jul", "aug", "sep", "oct", "nov", "dec"]
    private static let dayNames = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]

    /// Parses the five fields with `*`, lists, ranges, steps, and month and weekday names.
    public init(parsing text: String) throws(CronParseError) {
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard fields.count == 5 else {
            throw CronParseError(field: "expression",
                                 message: "expected 5 fields (minute hour day-of-month month day-of-week), found \(fields.count)")
        }
        source = fields.joined(separator: " ")
        minutes = try Self.parseField(fields[0], name: "minute", range: 0...59, names: [])
        hours = try Self.parseField(fields[1], name: "hour", range: 0...23, names: [])
        daysOfMonth = try Self.parseField(fields[2], name: "day-of-month", range: 1...31, names: [])
        months = try Self.parseField(fields[3], name: "month", range: 1...12, names: Self.monthNames, nameBase: 1)
        let dow = try Self.parseField(fields[4], name: "day-of-week", range: 0...7, names: Self.dayNames)
        daysOfWeek = Set(dow.map { $0 == 7 ? 0 : $0 })
        isDayOfMonthRestricted = !fields[2].hasPrefix("*")
        isDayOfWeekRestricted = !fields[4].hasPrefix("*")
    }

    public var description: String { source }

    /// Whether a local date matches the day fields (Vixie's OR rule when both are restricted).
    /// `weekday` is 0 = Sunday … 6 = Saturday.
    public func matchesDay(month: Int, day: Int, weekday: Int) -> Bool {
        guard months.contains(month) else { return false }
        let domHit = daysOfMonth.contains(day)
        let dowHit = daysOfWeek.contains(weekday)
        if isDayOfMonthRestricted && isDayOfWeekRestricted { return domHit || dowHit }
        return domHit && dowHit
    }

    private static func parseField(_ text: String, name: String, range: ClosedRange<Int>,
                                   names: [String], nameBase: Int = 0) throws(CronParseError) -> Set<Int> {
        var result = Set<Int>()
        for item in text.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
            guard !item.isEmpty else { throw CronParseError(field: name, message: "empty list item in '\(text)'") }
            var base = item
            var step = 1
            if let slash = item.firstIndex(of: "/") {
                base = String(item[..<slash])
                let stepText = String(item[item.index(after: slash)...])
                guard !stepText.isEmpty, stepText.allSatisfy({ $0.isASCII && $0.isNumber }),
                      let s = Int(stepText), s > 0 else {
                    throw CronParseError(field: name, message: "step '\(stepText)' must be a positive number")
                }
                step = s
            }
            let lower: Int
            var upper: Int
            if base == "*" {
                lower = range.lowerBound
                upper = range.upperBound
            } else if let dash = base.firstIndex(of: "-") {
                lower = try value(String(base[..<dash]), name: name, range: range, names: names, nameBase: nameBase)
                upper = try value(String(base[base.index(after: dash)...]), name: name, range: range, names: names, nameBase: nameBase)
                guard lower <= upper else {
                    throw CronParseError(field: name, message: "range '\(base)' runs backwards")
                }
            } else {
                lower = try value(base, name: name, range: range, names: names, nameBase: nameBase)
                // Vixie: `N/S` means N through the field's maximum in steps of S.
                upper = item.contains("/") ? range.upperBound : lower
            }
            if name == "day-of-week" && base == "*" { upper = 6 }
            result.formUnion(stride(from: lower, through: upper, by: step))
        }
        return result
    }

    private static func value(_ text: String, name: String, range: ClosedRange<Int>,
                              names: [String], nameBase: Int) throws(CronParseError) -> Int {
        if let index = names.firstIndex(of: text.lowercased()) { return index + nameBase }
        guard !text.isEmpty, text.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(text) else {
            throw CronParseError(field: name, message: "'\(text)' is not a number\(names.isEmpty ? "" : " or a name")")
        }
        guard range.contains(n) else {
            throw CronParseError(field: name, message: "\(n) is outside \(range.lowerBound)-\(range.upperBound)")
        }
        return n
    }
}
