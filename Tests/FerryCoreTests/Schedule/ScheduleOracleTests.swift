import Foundation
import Testing
@testable import FerryCore

/// Compares the engine with the brute-force oracle over 2026–2028 in zones with every kind of transition.
@Suite struct ScheduleOracleTests {
    static let zones = [
        "America/New_York", "Australia/Lord_Howe", "Pacific/Chatham", "Asia/Kathmandu", "America/St_Johns",
        "Pacific/Apia", "Europe/Dublin", "America/Sao_Paulo", "UTC",
    ]

    static let allPolicies: [DSTPolicy] = GapPolicy.allCases.flatMap { gap in
        OverlapPolicy.allCases.map { DSTPolicy(gap: gap, overlap: $0) }
    }

    static func wall(_ text: String) -> WallTime { WallTime(parsing: text)! }

    static func cron(_ text: String) -> ScheduleRule { .cron(try! CronExpression(parsing: text)) }

    static func seconds(_ rfc3339: String) -> Int64 {
        Int64(ISO8601DateFormatter().date(from: rfc3339)!.timeIntervalSince1970)
    }

    /// Every shape, with wall times at the fixed hot spots plus this zone's own transition edges.
    static func rules(for oracle: ScheduleOracle) -> [ScheduleRule] {
        let fixed = ["00:00", "01:30", "02:00", "02:30", "02:45", "03:00", "23:59"].map(wall)
        let edges = oracle.transitionWallTimes
        let at = Array(Set(fixed + edges)).sorted()
        var rules: [ScheduleRule] = [
            .times(at, days: .everyDay),
            .times(at, days: .weekdays([.sunday, .monday, .wednesday])),
            .times([wall("02:30"), wall("09:00")] + edges, days: .monthdays([.day(1), .day(15), .day(29), .day(30), .day(31), .last])),
            .times([wall("12:00")], days: .monthdays([.last])),
            .times(Schedule.timesPerDay(5, startingAt: wall("01:30")), days: .everyDay),
            .times(Schedule.timesPerDay(48, startingAt: wall("00:15")), days: .weekdays([.saturday, .sunday])),
            cron("30 2 * * *"),
            cron("*/15 1-3 * * *"),
            cron("0 9 13 * 5"),
            cron("15,45 0-4 * jan-apr,sep-dec sat,7"),
            cron("*/20 */6 29-31 * *"),
            cron("* 2 * * 0"),
            cron("0 0 29 2 *"),
            .once(LocalDateTime(year: 2027, month: 7, day: 4, time: wall("09:15"))),
            .once(LocalDateTime(year: 2025, month: 7, day: 4, time: wall("09:15"))),
        ]
        // A `once` inside each of the zone's first gap and overlap.
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        for kind in [true, false] {
            guard let tr = oracle.transitions.first(where: { $0.at > oracle.from && $0.isGap == kind && $0.before != $0.after })
            else { continue }
            let local = tr.at + min(tr.before, tr.after) + abs(tr.after - tr.before) / 120 * 60
            let c = calendar.dateComponents([.year, .month, .day, .hour, .minute],
                                            from: Date(timeIntervalSince1970: TimeInterval(local)))
            rules.append(.once(LocalDateTime(year: c.year!, month: c.month!, day: c.day!,
                                             time: WallTime(hour: c.hour!, minute: c.minute!)!)))
        }
        return rules
    }

    /// Runs the oracle once for the zone and checks every rule under every policy.
    static func compare(zone id: String, from: String, to: String) {
        let zone = TimeZone(identifier: id)!
        let start = seconds(from), end = seconds(to)
        let oracle = ScheduleOracle(zone: zone, from: start - 2 * 86_400, to: end + 2 * 86_400)
        let rules = rules(for: oracle)
        // Without a transition every policy means the same; checking one keeps the suite fast.
        let hasTransitions = oracle.transitions.contains { $0.at > start && $0.at <= end }
        let policies = hasTransitions ? allPolicies : [DSTPolicy.default]
        let expected = oracle.fires(of: rules, policies: policies)
        let engine = ScheduleEngine()
        for (r, rule) in rules.enumerated() {
            for (p, policy) in policies.enumerated() {
                let schedule = Schedule(rule: rule, timeZoneIdentifier: id, dst: policy)
                let want = expected[r][p]
                let inRange = want.filter { $0 > start && $0 <= end }
                let got = engine.fires(of: schedule, from: Date(timeIntervalSince1970: TimeInterval(start)),
                                       through: Date(timeIntervalSince1970: TimeInterval(end)))
                    .map { Int64($0.timeIntervalSince1970) }
                #expect(got == inRange, "\(id) \(rule) \(policy): first difference \(firstDifference(got, inRange))")

                // `after:count:` from just before each transition and from a few fires.
                var probes = oracle.transitions.filter { $0.at > start && $0.at < end }.map { $0.at - 3 * 3600 }
                probes += stride(from: 0, to: inRange.count, by: max(1, inRange.count / 4)).map { inRange[$0] }
                probes.append(start)
                for probe in probes {
                    // The oracle knows nothing past its walk, so compare up to `end` only.
                    let slice = want[Self.firstIndex(in: want, after: probe)...].prefix(4).filter { $0 <= end }
                    let next = engine.fires(of: schedule, after: Date(timeIntervalSince1970: TimeInterval(probe)), count: 4)
                        .map { Int64($0.timeIntervalSince1970) }.filter { $0 <= end }
                    #expect(next == slice, "\(id) \(rule) \(policy) after \(probe)")
                }
            }
        }
    }

    /// Index of the first element `> value` in an ascending array (binary search: the arrays are long).
    static func firstIndex(in sorted: [Int64], after value: Int64) -> Int {
        var lo = 0, hi = sorted.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if sorted[mid] > value { hi = mid } else { lo = mid + 1 }
        }
        return lo
    }

    static func firstDifference(_ a: [Int64], _ b: [Int64]) -> String {
        let f = ISO8601DateFormatter()
        func s(_ t: Int64?) -> String { t.map { f.string(from: Date(timeIntervalSince1970: TimeInterval($0))) } ?? "none" }
        for i in 0..<max(a.count, b.count) {
            let x = i < a.count ? a[i] : nil, y = i < b.count ? b[i] : nil
            if x != y { return "#\(i): engine \(s(x)), oracle \(s(y))" }
        }
        return "none"
    }

    @Test(arguments: zones)
    func engineMatchesOracle(zone: String) {
        Self.compare(zone: zone, from: "2026-01-01T00:00:00Z", to: "2029-01-01T00:00:00Z")
    }

    @Test func engineMatchesOracleAcrossApiasSkippedDay() {
        Self.compare(zone: "Pacific/Apia", from: "2011-09-01T00:00:00Z", to: "2012-05-01T00:00:00Z")
    }

    /// A daemon steps with `nextFire` from each fire; that must give the same list as one range query.
    @Test(arguments: ["America/New_York", "Australia/Lord_Howe", "Pacific/Chatham"])
    func steppingWithNextFireMatchesTheRange(zone: String) {
        let engine = ScheduleEngine()
        let start = Date(timeIntervalSince1970: TimeInterval(Self.seconds("2026-03-01T00:00:00Z")))
        let end = Date(timeIntervalSince1970: TimeInterval(Self.seconds("2026-11-30T00:00:00Z")))
        for policy in [DSTPolicy.default, DSTPolicy(gap: .transition, overlap: .both), DSTPolicy(gap: .skip, overlap: .last)] {
            for rule in [Self.cron("*/30 1-3 * * *"), .times(["01:45", "02:45"].map(Self.wall), days: .everyDay)] {
                let schedule = Schedule(rule: rule, timeZoneIdentifier: zone, dst: policy)
                var stepped: [Date] = []
                var cursor = start
                while let next = engine.nextFire(of: schedule, after: cursor), next <= end {
                    stepped.append(next)
                    cursor = next
                }
                #expect(stepped == engine.fires(of: schedule, from: start, through: end), "\(zone) \(rule) \(policy)")
            }
        }
    }

    // The oracle must be able to fail: it finds the known shifts, and not where none is due.

    @Test func oracleShiftsNewYorkGapTime() {
        let zone = TimeZone(identifier: "America/New_York")!
        let oracle = ScheduleOracle(zone: zone, from: Self.seconds("2026-03-07T00:00:00Z"), to: Self.seconds("2026-03-10T00:00:00Z"))
        #expect(oracle.transitions == [.init(at: Self.seconds("2026-03-08T07:00:00Z"), before: -18_000, after: -14_400)])
        let rule = ScheduleRule.times([Self.wall("02:30")], days: .everyDay)
        let policies = [DSTPolicy(gap: .shift), DSTPolicy(gap: .transition), DSTPolicy(gap: .skip)]
        let fires = oracle.fires(of: [rule], policies: policies)[0]
        #expect(fires[0] == ["2026-03-07T07:30:00Z", "2026-03-08T07:30:00Z", "2026-03-09T06:30:00Z"].map(Self.seconds))
        #expect(fires[1] == ["2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"].map(Self.seconds))
        #expect(fires[2] == ["2026-03-07T07:30:00Z", "2026-03-09T06:30:00Z"].map(Self.seconds))
    }

    @Test func oracleResolvesNewYorkOverlap() {
        let zone = TimeZone(identifier: "America/New_York")!
        let oracle = ScheduleOracle(zone: zone, from: Self.seconds("2026-11-01T00:00:00Z"), to: Self.seconds("2026-11-02T00:00:00Z"))
        let rule = ScheduleRule.times([Self.wall("01:30")], days: .everyDay)
        let fires = oracle.fires(of: [rule], policies: [DSTPolicy(overlap: .first), DSTPolicy(overlap: .last), DSTPolicy(overlap: .both)])[0]
        #expect(fires[0] == [Self.seconds("2026-11-01T05:30:00Z")])
        #expect(fires[1] == [Self.seconds("2026-11-01T06:30:00Z")])
        #expect(fires[2] == ["2026-11-01T05:30:00Z", "2026-11-01T06:30:00Z"].map(Self.seconds))
    }
}
