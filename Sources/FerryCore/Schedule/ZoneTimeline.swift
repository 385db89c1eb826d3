import Foundation

/// How one local wall-clock instant maps onto UTC in a zone.
struct WallResolution: Sendable {
    /// Earliest UTC second whose local time is the wall time; nil when it falls in a gap.
    var first: Int64?
    /// Latest such second; equal to `first` unless the wall time is in an overlap.
    var last: Int64?
    /// For a wall time in a gap: the transition instant and the offset in force before it.
    var gap: (transition: Int64, offsetBefore: Int)?

    /// The UTC seconds at which wall time `local` fires under `policy`: none, one, or (overlap `both`) two.
    func instants(local: Int64, under policy: DSTPolicy) -> (Int64?, Int64?) {
        if let first, let last {
            if first == last { return (first, nil) }
            switch policy.overlap {
            case .first: return (first, nil)
            case .last: return (last, nil)
            case .both: return (first, last)
            }
        }
        guard let gap else { return (nil, nil) }
        switch policy.gap {
        // Shifting by the gap's length is reading the wall time with the offset from before the gap.
        case .shift: return (local - Int64(gap.offsetBefore), nil)
        case .transition: return (gap.transition, nil)
        case .skip: return (nil, nil)
        }
    }
}

/// The UTC offsets of one zone over a stretch of time, read from the system's zone data.
///
/// One timeline lives for one engine call only: zone rules are read afresh every time, as
/// DESIGN.md requires, while inside a call every offset period is looked up once.
struct ZoneTimeline {
    /// Real offsets stay within ±16 h; every window below is sized from this bound.
    static let maxOffset: Int64 = 16 * 3600

    let zone: TimeZone
    /// Start (UTC seconds) of each known offset period, ascending; the last one runs to `end`.
    private var starts: [Int64] = []
    private var offsets: [Int] = []
    /// Start of the period after the last known one, or `Int64.max` when the zone has no more changes.
    private var end: Int64 = .max
    /// Index of the period last looked up: the engine's queries mostly move forward.
    private var hint = 0

    init(zone: TimeZone, from start: Int64) {
        self.zone = zone
        reset(from: start)
    }

    private mutating func reset(from start: Int64) {
        starts = [start]
        offsets = [zone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(start)))]
        end = transition(after: start)
        hint = 0
    }

    private func transition(after t: Int64) -> Int64 {
        guard let next = zone.nextDaylightSavingTimeTransition(after: Date(timeIntervalSince1970: TimeInterval(t))) else {
            return .max
        }
        let seconds = next.timeIntervalSince1970.rounded(.down)
        guard seconds < 9.0e15 else { return .max }
        // Never loop on a transition reported at or before the one we asked after.
        return max(Int64(seconds), t + 1)
    }

    /// Makes the known periods cover UTC seconds `lower...upper`.
    private mutating func cover(_ lower: Int64, _ upper: Int64) {
        if lower < starts[0] { reset(from: lower - 86_400) }
        while end <= upper && end != .max {
            let start = end
            starts.append(start)
            offsets.append(zone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(start))))
            end = transition(after: start)
        }
    }

    private func periodEnd(_ i: Int) -> Int64 { i + 1 < starts.count ? starts[i + 1] : end }

    /// Index of the period holding UTC second `t` (which must be covered).
    private mutating func index(of t: Int64) -> Int {
        var i = min(hint, starts.count - 1)
        if starts[i] > t {
            // Binary search backwards: rare (the first query of a call, or a backwards step).
            var lo = 0, hi = i
            while lo < hi {
                let mid = (lo + hi + 1) / 2
                if starts[mid] <= t { lo = mid } else { hi = mid - 1 }
            }
            i = lo
        }
        while t >= periodEnd(i) { i += 1 }
        hint = i
        return i
    }

    /// UTC offset in force at UTC second `t`.
    mutating func offset(at t: Int64) -> Int {
        cover(t, t)
        return offsets[index(of: t)]
    }

    /// Every UTC second whose local time is `local` (seconds since 1970-01-01 local), or the gap it falls in.
    mutating func resolve(local: Int64) -> WallResolution {
        let lower = local - Self.maxOffset
        let upper = local + Self.maxOffset
        cover(lower, upper)
        var result = WallResolution()
        var i = index(of: lower)
        while i < starts.count && starts[i] <= upper {
            let start = starts[i]
            let offset = offsets[i]
            let t = local - Int64(offset)
            if t >= start && t < periodEnd(i) {
                if result.first == nil { result.first = t }
                result.last = t
            }
            if i > 0 {
                let before = Int64(offsets[i - 1])
                if before < Int64(offset) && start + before <= local && local < start + Int64(offset) {
                    result.gap = (start, offsets[i - 1])
                }
            }
            i += 1
        }
        return result
    }

    /// The smallest and largest offsets in force anywhere in UTC seconds `lower...upper`.
    mutating func offsetRange(in lower: Int64, _ upper: Int64) -> (lowest: Int64, highest: Int64) {
        cover(lower, upper)
        var i = index(of: lower)
        var lowest = Int64(offsets[i]), highest = lowest
        i += 1
        while i < starts.count && starts[i] <= upper {
            lowest = min(lowest, Int64(offsets[i]))
            highest = max(highest, Int64(offsets[i]))
            i += 1
        }
        return (lowest, highest)
    }
}
