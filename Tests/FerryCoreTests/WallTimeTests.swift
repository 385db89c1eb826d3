import Testing
@testable import FerryCore

@Suite struct WallTimeTests {
    @Test(arguments: ["00:00", "02:30", "23:59"])
    func parsesValidTimes(text: String) {
        #expect(WallTime(parsing: text)?.description == text)
    }

    @Test(arguments: ["24:00", "25:00", "2:30", "02:60", "0230", "ab:cd", ""])
    func refusesInvalidTimes(text: String) {
        #expect(WallTime(parsing: text) == nil)
    }

    @Test func timesPerDaySpreadsFromStartAndWraps() {
        let times = Schedule.timesPerDay(4, startingAt: WallTime(hour: 6, minute: 0)!)
        #expect(times.map(\.description) == ["00:00", "06:00", "12:00", "18:00"])
        #expect(Schedule.timesPerDay(7, startingAt: WallTime(hour: 0, minute: 0)!).map(\.minuteOfDay)
                == [0, 205, 410, 615, 820, 1025, 1230])
    }
}
