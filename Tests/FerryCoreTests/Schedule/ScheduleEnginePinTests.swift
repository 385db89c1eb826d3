import Foundation
import Testing
@testable import FerryCore

/// Hand-checked fire instants for every kind of transition, written as RFC 3339 local times.
@Suite struct ScheduleEnginePinTests {
    let engine = ScheduleEngine()

    static func instant(_ rfc3339: String) -> Date {
        guard let date = ISO8601DateFormatter().date(from: rfc3339) else {
            preconditionFailure("bad RFC 3339 literal in a test: \(rfc3339)")
        }
        return date
    }

    static func at(_ times: String..., days: DayFilter = .everyDay) -> ScheduleRule {
        .times(times.map { WallTime(parsing: $0)! }, days: days)
    }

    static func cron(_ text: String) -> ScheduleRule { .cron(try! CronExpression(parsing: text)) }

    func fires(_ rule: ScheduleRule, _ zone: String, _ dst: DSTPolicy = .default,
               after: String, count: Int) -> [Date] {
        engine.fires(of: Schedule(rule: rule, timeZoneIdentifier: zone, dst: dst), after: Self.instant(after), count: count)
    }

    func expect(_ got: [Date], _ want: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        let f = ISO8601DateFormatter()
        #expect(got.map { f.string(from: $0) } == want.map { f.string(from: Self.instant($0)) }, sourceLocation: sourceLocation)
    }

    // MARK: New York

    @Test func newYorkSpringGapShiftsByTheGapLength() {
        expect(fires(Self.at("02:30"), "America/New_York", after: "2026-03-07T00:00:00-05:00", count: 3),
               ["2026-03-07T02:30:00-05:00", "2026-03-08T03:30:00-04:00", "2026-03-09T02:30:00-04:00"])
    }

    @Test func newYorkSpringGapTransitionFiresAtThreeOClock() {
        expect(fires(Self.at("02:30"), "America/New_York", DSTPolicy(gap: .transition),
                     after: "2026-03-07T00:00:00-05:00", count: 3),
               ["2026-03-07T02:30:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"])
    }

    @Test func newYorkSpringGapSkip() {
        expect(fires(Self.at("02:30"), "America/New_York", DSTPolicy(gap: .skip),
                     after: "2026-03-07T00:00:00-05:00", count: 2),
               ["2026-03-07T02:30:00-05:00", "2026-03-09T02:30:00-04:00"])
    }

    @Test func newYorkFallOverlapFirst() {
        expect(fires(Self.at("01:30"), "America/New_York", after: "2026-10-31T12:00:00-04:00", count: 2),
               ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"])
    }

    @Test func newYorkFallOverlapLast() {
        expect(fires(Self.at("01:30"), "America/New_York", DSTPolicy(overlap: .last),
                     after: "2026-10-31T12:00:00-04:00", count: 2),
               ["2026-11-01T01:30:00-05:00", "2026-11-02T01:30:00-05:00"])
    }

    @Test func newYorkFallOverlapBoth() {
        expect(fires(Self.at("01:30"), "America/New_York", DSTPolicy(overlap: .both),
                     after: "2026-10-31T12:00:00-04:00", count: 3),
               ["2026-11-01T01:30:00-04:00", "2026-11-01T01:30:00-05:00", "2026-11-02T01:30:00-05:00"])
    }

    @Test func overlapLastIsStillInTheFutureJustAfterTheFirst() {
        expect(fires(Self.at("01:30"), "America/New_York", DSTPolicy(overlap: .last),
                     after: "2026-11-01T01:45:00-04:00", count: 1),
               ["2026-11-01T01:30:00-05:00"])
    }

    @Test func twoWallTimesOnOneInstantFireOnce() {
        // 02:30 shifts onto 03:30 EDT, which is also the second wall time.
        expect(fires(Self.at("02:30", "03:30"), "America/New_York", after: "2026-03-08T00:00:00-05:00", count: 2),
               ["2026-03-08T03:30:00-04:00", "2026-03-09T02:30:00-04:00"])
        expect(fires(Self.at("02:30", "03:30"), "America/New_York", DSTPolicy(gap: .transition),
                     after: "2026-03-08T00:00:00-05:00", count: 2),
               ["2026-03-08T03:00:00-04:00", "2026-03-08T03:30:00-04:00"])
    }

    @Test func weekdaySchedulesKeepTheDSTSunday() {
        expect(fires(Self.at("02:30", days: .weekdays([.sunday])), "America/New_York",
                     after: "2026-03-01T12:00:00-05:00", count: 2),
               ["2026-03-08T03:30:00-04:00", "2026-03-15T02:30:00-04:00"])
        let weekdays: Set<Weekday> = [.monday, .tuesday, .wednesday, .thursday, .friday]
        expect(fires(Self.at("09:00", days: .weekdays(weekdays)), "America/New_York",
                     after: "2026-03-06T00:00:00-05:00", count: 2),
               ["2026-03-06T09:00:00-05:00", "2026-03-09T09:00:00-04:00"])
    }

    @Test func cronOnTheDSTSundayFollowsThePolicy() {
        expect(fires(Self.cron("30 2 * * 0"), "America/New_York", after: "2026-03-01T12:00:00-05:00", count: 2),
               ["2026-03-08T03:30:00-04:00", "2026-03-15T02:30:00-04:00"])
        expect(fires(Self.cron("30 2 * * 0"), "America/New_York", DSTPolicy(gap: .transition),
                     after: "2026-03-01T12:00:00-05:00", count: 2),
               ["2026-03-08T03:00:00-04:00", "2026-03-15T02:30:00-04:00"])
    }

    @Test func cronEveryHourInTheOverlapFollowsThePolicy() {
        expect(fires(Self.cron("30 * * * *"), "America/New_York", after: "2026-11-01T00:00:00-04:00", count: 3),
               ["2026-11-01T00:30:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-01T02:30:00-05:00"])
        expect(fires(Self.cron("30 * * * *"), "America/New_York", DSTPolicy(overlap: .both),
                     after: "2026-11-01T00:00:00-04:00", count: 4),
               ["2026-11-01T00:30:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-01T01:30:00-05:00",
                "2026-11-01T02:30:00-05:00"])
    }

    @Test func cronStepsAcrossTheGapMergeShiftedTimes() {
        // 02:00 and 02:30 shift onto 03:00 and 03:30 EDT, which the expression names anyway.
        expect(fires(Self.cron("*/30 1-3 * * *"), "America/New_York", after: "2026-03-08T00:00:00-05:00", count: 5),
               ["2026-03-08T01:00:00-05:00", "2026-03-08T01:30:00-05:00", "2026-03-08T03:00:00-04:00",
                "2026-03-08T03:30:00-04:00", "2026-03-09T01:00:00-04:00"])
    }

    @Test func newYorkFallBackLeavesTwoThirtyAlone() {
        // The repeated hour is 01:00–02:00; 02:30 happens once, in EST.
        expect(fires(Self.cron("30 2 * * *"), "America/New_York", DSTPolicy(overlap: .both),
                     after: "2026-10-31T12:00:00-04:00", count: 1),
               ["2026-11-01T02:30:00-05:00"])
    }

    @Test func amsterdamGapAndOverlap() {
        expect(fires(Self.cron("30 2 * * *"), "Europe/Amsterdam", after: "2026-03-28T12:00:00+01:00", count: 1),
               ["2026-03-29T01:30:00Z"])
        expect(fires(Self.cron("30 2 * * *"), "Europe/Amsterdam", DSTPolicy(gap: .transition),
                     after: "2026-03-28T12:00:00+01:00", count: 1),
               ["2026-03-29T01:00:00Z"])
        expect(fires(Self.cron("30 2 * * *"), "Europe/Amsterdam", after: "2026-10-24T12:00:00+02:00", count: 1),
               ["2026-10-25T00:30:00Z"])
        expect(fires(Self.cron("30 2 * * *"), "Europe/Amsterdam", DSTPolicy(overlap: .both),
                     after: "2026-10-24T12:00:00+02:00", count: 2),
               ["2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z"])
    }

    // MARK: Half-hour and 45-minute zones

    @Test func lordHoweThirtyMinuteGap() {
        let zone = "Australia/Lord_Howe"
        let after = "2026-10-03T00:00:00+10:30"
        expect(fires(Self.at("02:15"), zone, after: after, count: 3),
               ["2026-10-03T02:15:00+10:30", "2026-10-04T02:45:00+11:00", "2026-10-05T02:15:00+11:00"])
        expect(fires(Self.at("02:15"), zone, DSTPolicy(gap: .transition), after: after, count: 3),
               ["2026-10-03T02:15:00+10:30", "2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00"])
        expect(fires(Self.at("02:15"), zone, DSTPolicy(gap: .skip), after: after, count: 2),
               ["2026-10-03T02:15:00+10:30", "2026-10-05T02:15:00+11:00"])
    }

    @Test func lordHoweThirtyMinuteOverlap() {
        let zone = "Australia/Lord_Howe"
        let after = "2026-04-04T12:00:00+11:00"
        expect(fires(Self.at("01:45"), zone, after: after, count: 1), ["2026-04-05T01:45:00+11:00"])
        expect(fires(Self.at("01:45"), zone, DSTPolicy(overlap: .last), after: after, count: 1),
               ["2026-04-05T01:45:00+10:30"])
        expect(fires(Self.at("01:45"), zone, DSTPolicy(overlap: .both), after: after, count: 2),
               ["2026-04-05T01:45:00+11:00", "2026-04-05T01:45:00+10:30"])
        // 02:00 is where the clock turns back to 01:30, so it happens once.
        expect(fires(Self.at("02:00"), zone, DSTPolicy(overlap: .both), after: after, count: 1),
               ["2026-04-05T02:00:00+10:30"])
    }

    @Test func chathamGapAndOverlapAtQuarterToThree() {
        let zone = "Pacific/Chatham"
        expect(fires(Self.at("03:00"), zone, after: "2026-09-26T12:00:00+12:45", count: 1),
               ["2026-09-27T04:00:00+13:45"])
        expect(fires(Self.at("03:00"), zone, DSTPolicy(gap: .transition), after: "2026-09-26T12:00:00+12:45", count: 1),
               ["2026-09-27T03:45:00+13:45"])
        expect(fires(Self.at("03:00"), zone, DSTPolicy(overlap: .both), after: "2026-04-04T12:00:00+13:45", count: 2),
               ["2026-04-05T03:00:00+13:45", "2026-04-05T03:00:00+12:45"])
    }

    @Test func kathmanduWeekdaysAreLocalDays() {
        // Monday 00:30 in Kathmandu is still Sunday in UTC.
        expect(fires(Self.cron("30 0 * * 1-5"), "Asia/Kathmandu", after: "2026-03-07T00:00:00Z", count: 2),
               ["2026-03-09T00:30:00+05:45", "2026-03-10T00:30:00+05:45"])
        #expect(fires(Self.cron("0 9 * * *"), "Asia/Kathmandu", after: "2026-06-01T00:00:00Z", count: 1)
                == [Self.instant("2026-06-01T03:15:00Z")])
    }

    @Test func stJohnsHalfHourZoneGap() {
        expect(fires(Self.at("02:30"), "America/St_Johns", after: "2026-03-07T12:00:00-03:30", count: 2),
               ["2026-03-08T03:30:00-02:30", "2026-03-09T02:30:00-02:30"])
    }

    @Test func dublinNegativeSaveStillGapsInSpring() {
        expect(fires(Self.at("01:30"), "Europe/Dublin", after: "2026-03-28T12:00:00Z", count: 1),
               ["2026-03-29T02:30:00+01:00"])
        expect(fires(Self.at("01:30"), "Europe/Dublin", DSTPolicy(overlap: .both), after: "2026-10-24T12:00:00Z", count: 2),
               ["2026-10-25T01:30:00+01:00", "2026-10-25T01:30:00+00:00"])
    }

    @Test func santiagoMidnightGapAndOverlap() {
        expect(fires(Self.cron("0 0 * * *"), "America/Santiago", after: "2026-09-05T12:00:00-04:00", count: 2),
               ["2026-09-06T01:00:00-03:00", "2026-09-07T00:00:00-03:00"])
        expect(fires(Self.cron("30 23 * * *"), "America/Santiago", DSTPolicy(overlap: .last),
                     after: "2026-04-04T12:00:00-03:00", count: 1),
               ["2026-04-04T23:30:00-04:00"])
    }

    // MARK: Apia skipped 2011-12-30

    @Test func apiaSkippedDay() {
        let after = "2011-12-28T12:00:00-10:00"
        // The missing 12-30 10:00 shifts a whole day onto 12-31 10:00, which fires once.
        expect(fires(Self.cron("0 10 * * *"), "Pacific/Apia", after: after, count: 3),
               ["2011-12-29T10:00:00-10:00", "2011-12-31T10:00:00+14:00", "2012-01-01T10:00:00+14:00"])
        expect(fires(Self.cron("0 10 * * *"), "Pacific/Apia", DSTPolicy(gap: .transition), after: after, count: 3),
               ["2011-12-29T10:00:00-10:00", "2011-12-31T00:00:00+14:00", "2011-12-31T10:00:00+14:00"])
        expect(fires(Self.cron("0 10 30 * *"), "Pacific/Apia", DSTPolicy(gap: .skip), after: "2011-11-01T00:00:00Z", count: 2),
               ["2011-11-30T10:00:00-10:00", "2012-01-30T10:00:00+14:00"])
    }

    // MARK: Days of the month

    @Test func lastDayOfFebruaryInLeapAndCommonYears() {
        let rule = Self.at("12:00", days: .monthdays([.last]))
        expect(fires(rule, "America/New_York", after: "2027-01-31T13:00:00-05:00", count: 2),
               ["2027-02-28T12:00:00-05:00", "2027-03-31T12:00:00-04:00"])
        expect(fires(rule, "America/New_York", after: "2028-01-31T13:00:00-05:00", count: 2),
               ["2028-02-29T12:00:00-05:00", "2028-03-31T12:00:00-04:00"])
    }

    @Test func thirtyFirstSkipsShortMonths() {
        expect(fires(Self.at("09:00", days: .monthdays([.day(31)])), "Europe/Amsterdam",
                     after: "2026-01-01T00:00:00Z", count: 5),
               ["2026-01-31T09:00:00+01:00", "2026-03-31T09:00:00+02:00", "2026-05-31T09:00:00+02:00",
                "2026-07-31T09:00:00+02:00", "2026-08-31T09:00:00+02:00"])
        expect(fires(Self.at("09:00", days: .monthdays([.day(29)])), "UTC", after: "2027-01-30T00:00:00Z", count: 2),
               ["2027-03-29T09:00:00Z", "2027-04-29T09:00:00Z"])
    }

    @Test func timesPerDay() {
        let rule = ScheduleRule.times(Schedule.timesPerDay(4, startingAt: WallTime(hour: 6, minute: 0)!), days: .everyDay)
        expect(fires(rule, "Asia/Kathmandu", after: "2026-05-01T00:00:00+05:45", count: 4),
               ["2026-05-01T06:00:00+05:45", "2026-05-01T12:00:00+05:45", "2026-05-01T18:00:00+05:45",
                "2026-05-02T00:00:00+05:45"])
    }

    // MARK: Cron

    @Test func cronDayFieldsUseTheOrRule() {
        expect(fires(Self.cron("0 9 13 * 5"), "America/New_York", after: "2026-01-01T00:00:00-05:00", count: 4),
               ["2026-01-02T09:00:00-05:00", "2026-01-09T09:00:00-05:00", "2026-01-13T09:00:00-05:00",
                "2026-01-16T09:00:00-05:00"])
    }

    @Test(arguments: ["0 12 * * 7", "0 12 * * 0", "0 12 * * sun"])
    func sevenIsSunday(expression: String) {
        expect(fires(Self.cron(expression), "UTC", after: "2026-01-01T00:00:00Z", count: 2),
               ["2026-01-04T12:00:00Z", "2026-01-11T12:00:00Z"])
    }

    @Test func cronThatNeverMatchesReturnsNothing() {
        #expect(fires(Self.cron("0 0 30 2 *"), "UTC", after: "2026-01-01T00:00:00Z", count: 1).isEmpty)
        expect(fires(Self.cron("0 0 29 2 *"), "UTC", after: "2026-01-01T00:00:00Z", count: 2),
               ["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"])
    }

    // MARK: Once

    @Test func onceInThePastAndFuture() {
        let rule = ScheduleRule.once(LocalDateTime(parsing: "2026-12-24T09:00")!)
        expect(fires(rule, "America/New_York", after: "2026-01-01T00:00:00Z", count: 3), ["2026-12-24T09:00:00-05:00"])
        #expect(fires(rule, "America/New_York", after: "2026-12-24T09:00:00-05:00", count: 3).isEmpty)
        expect(fires(.once(LocalDateTime(parsing: "2026-03-08T02:30")!), "America/New_York",
                     after: "2026-01-01T00:00:00Z", count: 1),
               ["2026-03-08T03:30:00-04:00"])
    }

    // MARK: The API's edges

    @Test func rangeIsExclusiveAtStartAndInclusiveAtEnd() {
        let schedule = Schedule(rule: Self.at("09:00"), timeZoneIdentifier: "UTC")
        let got = engine.fires(of: schedule, from: Self.instant("2026-01-01T09:00:00Z"), through: Self.instant("2026-01-03T09:00:00Z"))
        expect(got, ["2026-01-02T09:00:00Z", "2026-01-03T09:00:00Z"])
        #expect(engine.fires(of: schedule, from: Self.instant("2026-01-03T09:00:00Z"), through: Self.instant("2026-01-01T09:00:00Z")).isEmpty)
    }

    @Test func nextFireIsTheFirstOfFires() {
        let schedule = Schedule(rule: Self.at("09:00", "17:00"), timeZoneIdentifier: "Europe/Dublin")
        #expect(engine.nextFire(of: schedule, after: Self.instant("2026-06-01T10:00:00+01:00"))
                == Self.instant("2026-06-01T17:00:00+01:00"))
        #expect(engine.fires(of: schedule, after: Self.instant("2026-06-01T10:00:00+01:00"), count: 0).isEmpty)
    }

    @Test func unknownZoneNeverFiresAndValidateSaysWhy() {
        let schedule = Schedule(rule: Self.at("09:00"), timeZoneIdentifier: "Mars/Olympus_Mons")
        #expect(engine.nextFire(of: schedule, after: Self.instant("2026-01-01T00:00:00Z")) == nil)
        #expect(engine.fires(of: schedule, from: Self.instant("2026-01-01T00:00:00Z"), through: Self.instant("2027-01-01T00:00:00Z")).isEmpty)
        #expect(throws: ScheduleEngine.Error.unknownTimeZone("Mars/Olympus_Mons")) { try engine.validate(schedule) }
    }

    @Test func invalidDatesAreRefusedNotCrashedOn() {
        let feb30 = LocalDateTime(year: 2026, month: 2, day: 30, time: WallTime(hour: 9, minute: 0)!)
        let once = Schedule(rule: .once(feb30), timeZoneIdentifier: "UTC")
        #expect(throws: ScheduleEngine.Error.invalidDate(feb30)) { try engine.validate(once) }
        #expect(engine.nextFire(of: once, after: Self.instant("2026-01-01T00:00:00Z")) == nil)
        let day40 = Schedule(rule: Self.at("09:00", days: .monthdays([.day(40)])), timeZoneIdentifier: "UTC")
        #expect(throws: ScheduleEngine.Error.invalidMonthDay(40)) { try engine.validate(day40) }
        #expect(engine.nextFire(of: day40, after: .distantFuture) == nil)
        #expect(engine.nextFire(of: Schedule(rule: Self.at("09:00"), timeZoneIdentifier: "UTC"),
                                after: Date(timeIntervalSince1970: .infinity)) == nil)
    }
}

/// `Schedule.timesPerDay` edges: every minute, and counts config validation should have refused.
@Suite struct TimesPerDayTests {
    @Test func everyMinuteAndOutOfRangeCounts() {
        let midnight = WallTime(hour: 0, minute: 0)!
        #expect(Schedule.timesPerDay(1440, startingAt: midnight).count == 1440)
        #expect(Schedule.timesPerDay(1, startingAt: WallTime(hour: 23, minute: 59)!).map(\.description) == ["23:59"])
        #expect(Schedule.timesPerDay(0, startingAt: midnight).isEmpty)
        #expect(Schedule.timesPerDay(1441, startingAt: midnight).isEmpty)
    }
}
