import Foundation
@testable import FerryCore

/// A brute-force model of DESIGN.md's schedule semantics: walk every UTC minute, read its local
/// wall time, and apply the rules literally. Slow on purpose and shares no code with the engine
/// (offsets come from hourly probes, dates from `Calendar`).
struct ScheduleOracle {
    /// One change of UTC offset found by probing.
    struct Transition: Equatable {
        let at: Int64
        let before: Int64
        let after: Int64
        var isGap: Bool { after > before }
        var isOverlap: Bool { after < before }
    }

    let zone: TimeZone
    /// UTC seconds, whole minutes: the walk covers `[from, to)`.
    let from: Int64
    let to: Int64
    let transitions: [Transition]

    init(zone: TimeZone, from: Int64, to: Int64) {
        self.zone = zone
        self.from = from
        self.to = to
        transitions = Self.probeTransitions(zone: zone, from: from - 3 * 86_400, to: to + 3 * 86_400)
    }

    private static func offset(_ zone: TimeZone, _ t: Int64) -> Int64 {
        Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(t))))
    }

    /// Probes the offset every hour, then finds each change to the minute by bisection; no
    /// `nextDaylightSavingTimeTransition`, which the engine uses.
    static func probeTransitions(zone: TimeZone, from: Int64, to: Int64) -> [Transition] {
        var result: [Transition] = []
        var t = from - from % 3600
        var previous = offset(zone, t)
        while t < to {
            let next = t + 3600
            let o = offset(zone, next)
            if o != previous {
                var lo = t, hi = next // offset(lo) == previous, offset(hi) == o
                while hi - lo > 60 {
                    let mid = lo + (hi - lo) / 120 * 60
                    if offset(zone, mid) == previous { lo = mid } else { hi = mid }
                }
                result.append(Transition(at: hi, before: previous, after: o))
                previous = o
            }
            t = next
        }
        return result
    }

    /// Calendar facts about one local date, from Foundation's Gregorian calendar.
    private struct Day {
        let year: Int, month: Int, day: Int, weekday: Int, lastDay: Int
    }

    private static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        a >= 0 ? a / b : -((-a + b - 1) / b)
    }

    /// Whether rule `rule` names local wall minute `minuteOfDay` on `day`.
    private static func matchesDay(_ rule: ScheduleRule, _ d: Day) -> Bool {
        switch rule {
        case .times(_, .everyDay):
            return true
        case .times(_, .weekdays(let set)):
            return set.contains(Weekday(rawValue: d.weekday)!)
        case .times(_, .monthdays(let set)):
            return set.contains(.day(d.day)) || (set.contains(.last) && d.day == d.lastDay)
        case .cron(let c):
            guard c.months.contains(d.month) else { return false }
            let dom = c.daysOfMonth.contains(d.day)
            let dow = c.daysOfWeek.contains(d.weekday - 1)
            return c.isDayOfMonthRestricted && c.isDayOfWeekRestricted ? (dom || dow) : (dom && dow)
        case .once(let l):
            return l.year == d.year && l.month == d.month && l.day == d.day
        }
    }

    private static func minuteTable(_ rule: ScheduleRule) -> [Bool] {
        var table = [Bool](repeating: false, count: 1440)
        switch rule {
        case .times(let times, _):
            for t in times { table[t.minuteOfDay] = true }
        case .cron(let c):
            for h in c.hours { for m in c.minutes { table[h * 60 + m] = true } }
        case .once(let l):
            table[l.time.minuteOfDay] = true
        }
        return table
    }

    /// Fire instants (UTC seconds) of each rule under each policy, in `(from, to)`: `[rule][policy]`.
    func fires(of rules: [ScheduleRule], policies: [DSTPolicy]) -> [[[Int64]]] {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let firstDay = Self.floorDiv(from, 86_400) - 3
        let lastDay = Self.floorDiv(to, 86_400) + 3
        // Rules as bit masks (bit r = rule r): per local day whose day filter matches, per minute
        // of the day whose time matches. Two scalar lookups per minute keep the debug-build walk fast.
        precondition(rules.count <= 64)
        var dayMasks: [UInt64] = []
        for n in firstDay...lastDay {
            let date = Date(timeIntervalSince1970: TimeInterval(n * 86_400))
            let c = calendar.dateComponents([.year, .month, .day, .weekday], from: date)
            let last = calendar.range(of: .day, in: .month, for: date)!.count
            let day = Day(year: c.year!, month: c.month!, day: c.day!, weekday: c.weekday!, lastDay: last)
            dayMasks.append(rules.indices.reduce(0) { Self.matchesDay(rules[$1], day) ? $0 | (1 << UInt64($1)) : $0 })
        }
        var minuteMasks = [UInt64](repeating: 0, count: 1440)
        for (r, rule) in rules.enumerated() {
            for (m, hit) in Self.minuteTable(rule).enumerated() where hit { minuteMasks[m] |= 1 << UInt64(r) }
        }
        func matching(wall: Int64) -> UInt64 {
            let n = Self.floorDiv(wall, 86_400)
            return dayMasks[Int(n - firstDay)] & minuteMasks[Int((wall - n * 86_400) / 60)]
        }

        var out = [[[Int64]]](repeating: [[Int64]](repeating: [], count: policies.count), count: rules.count)
        func fire(_ mask: UInt64, at t: Int64, where wanted: (DSTPolicy) -> Bool) {
            var m = mask
            while m != 0 {
                let r = m.trailingZeroBitCount
                m &= m - 1
                for (p, policy) in policies.enumerated() where wanted(policy) && out[r][p].last != t {
                    out[r][p].append(t)
                }
            }
        }

        var next = transitions.firstIndex { $0.at > from } ?? transitions.count
        var offset = Self.offset(zone, from)
        var t = from
        while t < to {
            while next < transitions.count && transitions[next].at <= t {
                offset = transitions[next].after
                next += 1
            }
            let wall = t + offset
            let hits = matching(wall: wall)
            let previous = next > 0 ? transitions[next - 1] : nil
            if hits != 0 {
                // Literal overlap: is this wall time seen again later, or was it seen already?
                let upcoming = next < transitions.count ? transitions[next] : nil
                let seenLater = upcoming.map { $0.isOverlap && wall >= $0.at + $0.after } ?? false
                let seenBefore = previous.map { $0.isOverlap && wall < $0.at + $0.before } ?? false
                fire(hits, at: t) { policy in
                    !(seenLater && policy.overlap == .last) && !(seenBefore && policy.overlap == .first)
                }
            }
            if let gap = previous, gap.isGap, t < gap.at + (gap.after - gap.before) {
                // `shift`: the missing wall time `wall - gap length` fires now.
                fire(matching(wall: t + gap.before), at: t) { $0.gap == .shift }
                // `transition`: every missing wall time fires at the first instant after the gap.
                if t == gap.at {
                    var missing = gap.at + gap.before
                    while missing < gap.at + gap.after {
                        fire(matching(wall: missing), at: t) { $0.gap == .transition }
                        missing += 60
                    }
                }
            }
            t += 60
        }
        return out
    }

    /// Local wall times (minute of day) at and around each transition in `[from, to)`: the edges
    /// and middle of every gap and overlap.
    var transitionWallTimes: [WallTime] {
        var minutes = Set<Int64>()
        for tr in transitions where tr.at >= from && tr.at < to {
            let low = tr.at + min(tr.before, tr.after)
            let high = tr.at + max(tr.before, tr.after)
            for wall in [low - 60, low, (low + high) / 2 / 60 * 60, high - 60, high] {
                minutes.insert(((wall % 86_400) + 86_400) % 86_400 / 60)
            }
        }
        return minutes.sorted().map { WallTime(hour: Int($0) / 60, minute: Int($0) % 60)! }
    }
}
