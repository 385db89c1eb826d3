import Foundation

/// A local wall-clock time of day, minute precision.
public struct WallTime: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let hour: Int
    public let minute: Int

    public init?(hour: Int, minute: Int) {
        guard (0..<24).contains(hour), (0..<60).contains(minute) else { return nil }
        self.hour = hour
        self.minute = minute
    }

    /// Parses `HH:MM` (24 h, two digits each).
    public init?(parsing text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].count == 2, parts[1].count == 2,
              parts.allSatisfy({ $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
              let h = Int(parts[0]), let m = Int(parts[1]) else { return nil }
        self.init(hour: h, minute: m)
    }

    /// Minutes after local midnight.
    public var minuteOfDay: Int { hour * 60 + minute }

    public static func < (a: WallTime, b: WallTime) -> Bool { a.minuteOfDay < b.minuteOfDay }
    public var description: String { String(format: "%02d:%02d", hour, minute) }
}

/// A day of the week, numbered as Foundation's `Calendar` does (1 = Sunday … 7 = Saturday).
public enum Weekday: Int, Hashable, Sendable, CaseIterable {
    case sunday = 1, monday, tuesday, wednesday, thursday, friday, saturday

    /// The three-letter names used in connection files (`mon`, `tue`, …).
    public init?(shortName: String) {
        switch shortName.lowercased() {
        case "sun": self = .sunday
        case "mon": self = .monday
        case "tue": self = .tuesday
        case "wed": self = .wednesday
        case "thu": self = .thursday
        case "fri": self = .friday
        case "sat": self = .saturday
        default: return nil
        }
    }
}

/// A day of the month in a `monthdays` filter: a number 1…31 or the month's last day.
public enum MonthDay: Hashable, Sendable {
    case day(Int)
    case last
}

/// Which local dates a time-list schedule fires on.
public enum DayFilter: Hashable, Sendable {
    case everyDay
    case weekdays(Set<Weekday>)
    case monthdays(Set<MonthDay>)
}

/// A local date and time without a zone (`once: "2026-12-24T09:00"`).
public struct LocalDateTime: Hashable, Sendable, CustomStringConvertible {
    public let year: Int
    public let month: Int
    public let day: Int
    public let time: WallTime

    public init(year: Int, month: Int, day: Int, time: WallTime) {
        self.year = year
        self.month = month
        self.day = day
        self.time = time
    }

    /// Parses `YYYY-MM-DDTHH:MM`; nil when it is not a real calendar date and time.
    public init?(parsing text: String) {
        let parts = text.split(separator: "T", omittingEmptySubsequences: false)
        guard parts.count == 2, let time = WallTime(parsing: String(parts[1])) else { return nil }
        let date = parts[0].split(separator: "-", omittingEmptySubsequences: false)
        guard date.count == 3, date[0].count == 4, date[1].count == 2, date[2].count == 2,
              let y = Int(date[0]), let m = Int(date[1]), let d = Int(date[2]),
              (1...12).contains(m), d >= 1, d <= LocalDateTime.daysIn(year: y, month: m)
        else { return nil }
        self.init(year: y, month: m, day: d, time: time)
    }

    /// Days in a month of the proleptic Gregorian calendar.
    public static func daysIn(year: Int, month: Int) -> Int {
        switch month {
        case 4, 6, 9, 11: return 30
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        default: return 31
        }
    }

    public var description: String {
        String(format: "%04d-%02d-%02dT%@", year, month, day, time.description)
    }
}

/// What a schedule fires on: wall times on matching dates, a cron expression, or one local instant.
public enum ScheduleRule: Hashable, Sendable {
    /// Fire at each of `times` (local, sorted, unique) on every date that `days` matches.
    /// `at:` lists and `times_per_day:` both become this.
    case times([WallTime], days: DayFilter)
    /// Vixie cron, evaluated on local wall time.
    case cron(CronExpression)
    /// One run at this local date and time.
    case once(LocalDateTime)
}

/// What to do with a wall time inside a spring-forward gap.
public enum GapPolicy: String, Hashable, Sendable, CaseIterable {
    /// Fire at the wall time shifted forward by the gap's length (02:30 → 03:30 EDT). Default.
    case shift
    /// Fire at the first instant after the gap (03:00 EDT).
    case transition
    /// Do not fire on that date.
    case skip
}

/// What to do with a wall time that occurs twice in a fall-back overlap.
public enum OverlapPolicy: String, Hashable, Sendable, CaseIterable {
    /// Fire once, at the first occurrence. Default.
    case first
    /// Fire once, at the second occurrence.
    case last
    /// Fire at both occurrences.
    case both
}

/// A connection's daylight-saving policy (`dst: {gap: …, overlap: …}`).
public struct DSTPolicy: Hashable, Sendable {
    public var gap: GapPolicy
    public var overlap: OverlapPolicy

    public init(gap: GapPolicy = .shift, overlap: OverlapPolicy = .first) {
        self.gap = gap
        self.overlap = overlap
    }

    /// `shift` and `first`, as DESIGN.md requires.
    public static let `default` = DSTPolicy()
}

/// A complete, validated schedule: a rule, the zone its wall times are local to, and the DST policy.
public struct Schedule: Hashable, Sendable {
    public var rule: ScheduleRule
    /// An IANA zone identifier; rules are read afresh from the system's zone data on every computation.
    public var timeZoneIdentifier: String
    public var dst: DSTPolicy

    public init(rule: ScheduleRule, timeZoneIdentifier: String, dst: DSTPolicy = .default) {
        self.rule = rule
        self.timeZoneIdentifier = timeZoneIdentifier
        self.dst = dst
    }

    /// The wall times of `times_per_day: n` starting at `start`: `n` times, `floor(1440 / n)` minutes apart,
    /// wrapping past midnight, sorted and unique. `n` outside 1...1440 (which config validation refuses)
    /// gives no times rather than a crash.
    public static func timesPerDay(_ n: Int, startingAt start: WallTime) -> [WallTime] {
        guard (1...1440).contains(n) else { return [] }
        let step = 1440 / n
        let minutes = Set((0..<n).map { (start.minuteOfDay + $0 * step) % 1440 })
        return minutes.sorted().map { WallTime(hour: $0 / 60, minute: $0 % 60)! }
    }
}
