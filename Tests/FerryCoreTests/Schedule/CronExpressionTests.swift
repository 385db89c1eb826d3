import Testing
@testable import FerryCore

/// The Vixie cron parser: what it accepts, and which field it blames when it refuses.
@Suite struct CronExpressionTests {
    static func parse(_ text: String) throws(CronParseError) -> CronExpression { try CronExpression(parsing: text) }

    @Test func wildcardsCoverEachFieldAndLeaveDaysUnrestricted() throws {
        let c = try Self.parse("* * * * *")
        #expect(c.minutes == Set(0...59))
        #expect(c.hours == Set(0...23))
        #expect(c.daysOfMonth == Set(1...31))
        #expect(c.months == Set(1...12))
        #expect(c.daysOfWeek == Set(0...6))
        #expect(!c.isDayOfMonthRestricted && !c.isDayOfWeekRestricted)
    }

    @Test func listsRangesAndSteps() throws {
        let c = try Self.parse("0,30 1-3 */10 1-12/3 1-5")
        #expect(c.minutes == [0, 30])
        #expect(c.hours == [1, 2, 3])
        #expect(c.daysOfMonth == [1, 11, 21, 31])
        #expect(c.months == [1, 4, 7, 10])
        #expect(c.daysOfWeek == [1, 2, 3, 4, 5])
        #expect(c.isDayOfMonthRestricted == false) // `*/10` starts with `*`, as in Vixie cron
        #expect(c.isDayOfWeekRestricted)
    }

    @Test func aStartWithAStepRunsToTheFieldsEnd() throws {
        #expect(try Self.parse("5/20 * * * *").minutes == [5, 25, 45])
    }

    @Test func namesAreCaseInsensitiveAndMixWithNumbers() throws {
        let c = try Self.parse("0 9 * JAN-mar,dec Mon-fri")
        #expect(c.months == [1, 2, 3, 12])
        #expect(c.daysOfWeek == [1, 2, 3, 4, 5])
    }

    @Test(arguments: ["0 0 * * 7", "0 0 * * 0", "0 0 * * sun", "0 0 * * sun,7", "0 0 * * 7-7"])
    func sevenIsSunday(text: String) throws {
        #expect(try Self.parse(text).daysOfWeek == [0])
    }

    @Test func tabsAndRepeatedSpacesSeparateFields() throws {
        let c = try Self.parse(" 15\t2  *  *   * ")
        #expect(c.minutes == [15] && c.hours == [2])
        #expect(c.source == "15 2 * * *")
    }

    @Test func bothDayFieldsRestrictedMatchEither() throws {
        let c = try Self.parse("0 9 13 * 5")
        #expect(c.matchesDay(month: 1, day: 13, weekday: 2))   // Tuesday the 13th
        #expect(c.matchesDay(month: 1, day: 2, weekday: 5))    // a Friday
        #expect(!c.matchesDay(month: 1, day: 14, weekday: 3))
        let dayOnly = try Self.parse("0 9 13 * *")
        #expect(!dayOnly.matchesDay(month: 1, day: 2, weekday: 5))
        let monthBound = try Self.parse("0 9 13 feb 5")
        #expect(!monthBound.matchesDay(month: 1, day: 13, weekday: 5))
    }

    @Test(arguments: [
        ("61 * * * *", "minute"),
        ("60 * * * *", "minute"),
        ("5-1 * * * *", "minute"),
        ("*/0 * * * *", "minute"),
        ("*/+5 * * * *", "minute"),
        ("*/ * * * *", "minute"),
        ("1,,2 * * * *", "minute"),
        ("-5 * * * *", "minute"),
        ("* 24 * * *", "hour"),
        ("* * 0 * *", "day-of-month"),
        ("* * 32 * *", "day-of-month"),
        ("* * * 13 *", "month"),
        ("* * * foo *", "month"),
        ("* * * * 8", "day-of-week"),
        ("* * * * funday", "day-of-week"),
        ("* * * * *", nil),
        ("* * * *", "expression"),
        ("* * * * * *", "expression"),
        ("", "expression"),
    ] as [(String, String?)])
    func refusals(text: String, field: String?) {
        do {
            _ = try Self.parse(text)
            #expect(field == nil, "'\(text)' should be refused in \(field ?? "")")
        } catch {
            #expect(error.field == field, "'\(text)': \(error)")
            #expect(!error.message.isEmpty)
        }
    }

    @Test func monthNamesAreNotDayNames() {
        #expect(throws: CronParseError.self) { try Self.parse("* * * mon *") }
        #expect(throws: CronParseError.self) { try Self.parse("* * * * jan") }
    }
}
