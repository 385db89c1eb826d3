import Foundation

/// Computes when a `Schedule` fires: pure, no I/O, no clock reads ("now" is always a parameter).
///
/// Semantics (DESIGN.md, "Schedule semantics"): a schedule is a set of local wall-clock times on
/// matching local dates. Each wall time is resolved against the zone's UTC offsets, read afresh on
/// every call: a wall time in a spring-forward gap follows `dst.gap` (`shift`: the wall time read
/// with the offset from before the gap, i.e. moved forward by the gap's length; `transition`: the
/// first instant after the gap; `skip`: no fire); a wall time that occurs twice follows
/// `dst.overlap` (`first`, `last`, or `both`). Cron expressions are resolved the same way, one
/// matching wall time at a time, so `30 * * * *` fires once in a repeated hour under the default
/// `overlap: first` and twice under `overlap: both`. Instants are unique: two wall times that land
/// on the same instant fire once. Fires are whole seconds.
///
/// A schedule whose zone is unknown, or that `validate(_:)` refuses for another reason, never fires
/// (the non-throwing queries return no instants); call `validate(_:)` to learn why.
public struct ScheduleEngine: Sendable {
    /// Why a schedule cannot be evaluated.
    public enum Error: Swift.Error, Hashable, Sendable, CustomStringConvertible {
        /// The system's zone data has no zone with this identifier.
        case unknownTimeZone(String)
        /// A `once` date and time that is not a real calendar date.
        case invalidDate(LocalDateTime)
        /// A `monthdays` entry outside 1...31.
        case invalidMonthDay(Int)

        public var description: String {
            switch self {
            case .unknownTimeZone(let id): "unknown time zone '\(id)'"
            case .invalidDate(let date): "'\(date)' is not a calendar date"
            case .invalidMonthDay(let day): "month day \(day) is outside 1-31"
            }
        }
    }

    public init() {}

    /// Checks that `schedule` can be evaluated: its zone exists and its dates are real.
    public func validate(_ schedule: Schedule) throws(Error) {
        guard TimeZone(identifier: schedule.timeZoneIdentifier) != nil else {
            throw .unknownTimeZone(schedule.timeZoneIdentifier)
        }
        try Self.checkRule(schedule.rule)
    }

    private static func checkRule(_ rule: ScheduleRule) throws(Error) {
        switch rule {
        case .times(_, days: .monthdays(let days)):
            for case .day(let d) in days where !(1...31).contains(d) { throw .invalidMonthDay(d) }
        case .once(let local):
            guard (1...12).contains(local.month), local.day >= 1,
                  local.day <= LocalDateTime.daysIn(year: local.year, month: local.month)
            else { throw .invalidDate(local) }
        case .times, .cron:
            break
        }
    }

    /// The first `count` fire instants strictly after `instant`, ascending and unique.
    public func fires(of schedule: Schedule, after instant: Date, count: Int) -> [Date] {
        guard count > 0, let after = Self.seconds(instant) else { return [] }
        return run(schedule, after: after, through: nil, limit: count).map(Self.date)
    }

    /// The first fire instant strictly after `instant`, or nil when the schedule never fires again.
    public func nextFire(of schedule: Schedule, after instant: Date) -> Date? {
        fires(of: schedule, after: instant, count: 1).first
    }

    /// Every fire instant in `(start, end]`, ascending and unique: what a daemon that was down missed.
    public func fires(of schedule: Schedule, from start: Date, through end: Date) -> [Date] {
        guard let after = Self.seconds(start), let through = Self.seconds(end), after < through else { return [] }
        return run(schedule, after: after, through: through, limit: .max).map(Self.date)
    }

    // MARK: - Walking local dates

    /// Years 1...9999 and then some: far beyond any schedule, safely inside `Int64` arithmetic.
    private static let secondsRange: ClosedRange<Double> = -70_000_000_000 ... 260_000_000_000

    private static func seconds(_ date: Date) -> Int64? {
        let s = date.timeIntervalSince1970.rounded(.down)
        guard secondsRange.contains(s) else { return nil }
        return Int64(s)
    }

    private static func date(_ seconds: Int64) -> Date { Date(timeIntervalSince1970: TimeInterval(seconds)) }

    private static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        a >= 0 ? a / b : -((-a + b - 1) / b)
    }

    /// Fire instants in `(after, through]` (or unbounded), at most `limit` of them, as UTC seconds.
    private func run(_ schedule: Schedule, after: Int64, through: Int64?, limit: Int) -> [Int64] {
        guard let zone = TimeZone(identifier: schedule.timeZoneIdentifier),
              (try? Self.checkRule(schedule.rule)) != nil else { return [] }
        let margin = ZoneTimeline.maxOffset
        var timeline = ZoneTimeline(zone: zone, from: after - 3 * margin)
        let policy = schedule.dst

        if case .once(let local) = schedule.rule {
            let date = CivilDate(year: local.year, month: local.month, day: local.day)
            let wall = Int64(date.dayNumber) * 86_400 + Int64(local.time.minuteOfDay) * 60
            let (a, b) = timeline.resolve(local: wall).instants(local: wall, under: policy)
            return [a, b].compactMap { $0 }.filter { $0 > after && $0 <= (through ?? .max) }.prefix(limit).map { $0 }
        }

        let plan = DayPlan(schedule.rule)
        guard !plan.minutes.isEmpty else { return [] }

        var out: [Int64] = []
        // Resolved instants not yet known to be the smallest left; a handful at most.
        var pending: [Int64] = []
        var lastOut = after
        let ceiling = through ?? .max

        /// Emits pending instants `<= bound` in order; true once the caller has all it asked for.
        func flush(upTo bound: Int64) -> Bool {
            guard !pending.isEmpty else { return out.count >= limit }
            pending.sort()
            var kept = 0
            for t in pending {
                if t <= bound {
                    if t > lastOut && t <= ceiling && out.count < limit {
                        out.append(t)
                        lastOut = t
                    }
                } else {
                    pending[kept] = t
                    kept += 1
                }
            }
            pending.removeLast(pending.count - kept)
            return out.count >= limit
        }

        // A wall time never fires later than `wall - lowest offset around it`, so the walk starts at
        // the first wall time that can still fire after `after`, not a day or two before it.
        let firstWall = after + timeline.offsetRange(in: after - 2 * margin, after + 2 * margin).lowest
        var dayNumber = Int(Self.floorDiv(firstWall, 86_400))
        let lastDay = through.map { Int(Self.floorDiv($0 + margin, 86_400)) + 1 }
            ?? dayNumber + 146_097 + 2  // a whole 400-year Gregorian cycle: a date that never came never will
        var date = CivilDate(dayNumber: dayNumber)

        while dayNumber <= lastDay {
            if plan.skipsMonth(date.month) {
                let next = date.firstOfNextMonth
                dayNumber += date.daysInMonth - date.day + 1
                date = next
                continue
            }
            if plan.matches(date, weekday: CivilDate.weekday(ofDayNumber: dayNumber)) {
                let midnight = Int64(dayNumber) * 86_400
                // Why pending instants `<= wall - highest` are final: a later wall time W within 32 h
                // resolves at or after `W - offset`, with the offset from this window, so after
                // `wall - highest`; one beyond 32 h resolves after `wall + 16 h`, past any offset.
                let highest = timeline.offsetRange(in: midnight - margin, midnight + 86_400 + 3 * margin).highest
                for minute in plan.minutes {
                    let wall = midnight + Int64(minute) * 60
                    if wall <= firstWall { continue }
                    let (a, b) = timeline.resolve(local: wall).instants(local: wall, under: policy)
                    if let a, a > after { pending.append(a) }
                    if let b, b > after { pending.append(b) }
                    let bound = wall - highest
                    if flush(upTo: bound) { return out }
                    if bound >= ceiling { return out }
                }
            }
            dayNumber += 1
            date = date.next
        }
        _ = flush(upTo: .max)
        return out
    }
}

/// Which local dates a rule fires on and at which minutes of those dates, prepared once per call.
private struct DayPlan {
    private enum Days {
        case every
        case weekdays([Bool])              // indexed 0 = Sunday … 6
        case monthdays([Bool], last: Bool) // indexed by day 0...31
        /// Cron's day fields as bit masks: set lookups per walked date would dominate the walk.
        case cron(months: UInt16, daysOfMonth: UInt32, daysOfWeek: UInt8, either: Bool)
    }

    private static func mask<T: FixedWidthInteger>(_ values: Set<Int>) -> T {
        values.reduce(T.zero) { $0 | (T(1) << $1) }
    }

    private let days: Days
    /// Minutes after local midnight, ascending and unique.
    let minutes: [Int]

    init(_ rule: ScheduleRule) {
        switch rule {
        case .times(let times, let filter):
            minutes = Array(Set(times.map(\.minuteOfDay))).sorted()
            switch filter {
            case .everyDay:
                days = .every
            case .weekdays(let set):
                var flags = [Bool](repeating: false, count: 7)
                for w in set { flags[w.rawValue - 1] = true }
                days = .weekdays(flags)
            case .monthdays(let set):
                var flags = [Bool](repeating: false, count: 32)
                for case .day(let d) in set where (1...31).contains(d) { flags[d] = true }
                days = .monthdays(flags, last: set.contains(.last))
            }
        case .cron(let cron):
            let hours = cron.hours.sorted(), minutesOfHour = cron.minutes.sorted()
            var list: [Int] = []
            list.reserveCapacity(hours.count * minutesOfHour.count)
            for h in hours {
                for m in minutesOfHour { list.append(h * 60 + m) }
            }
            minutes = list
            days = .cron(months: Self.mask(cron.months), daysOfMonth: Self.mask(cron.daysOfMonth),
                         daysOfWeek: Self.mask(cron.daysOfWeek),
                         either: cron.isDayOfMonthRestricted && cron.isDayOfWeekRestricted)
        case .once:
            minutes = []
            days = .every
        }
    }

    /// Whether no date of `month` can match, so the walk may jump to the next month.
    func skipsMonth(_ month: Int) -> Bool {
        if case .cron(let months, _, _, _) = days { return months & (1 << month) == 0 }
        return false
    }

    func matches(_ date: CivilDate, weekday: Int) -> Bool {
        switch days {
        case .every:
            return true
        case .weekdays(let flags):
            return flags[weekday]
        case .monthdays(let flags, let last):
            return flags[date.day] || (last && date.day == date.daysInMonth)
        case .cron(let months, let daysOfMonth, let daysOfWeek, let either):
            // The same rule as `CronExpression.matchesDay`, which the oracle tests hold it to.
            guard months & (1 << date.month) != 0 else { return false }
            let dom = daysOfMonth & (1 << date.day) != 0
            let dow = daysOfWeek & (1 << weekday) != 0
            return either ? (dom || dow) : (dom && dow)
        }
    }
}
