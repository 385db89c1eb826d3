import Foundation
import Testing
@testable import FerryCore

@Suite struct ISO8601Tests {
    @Test(arguments: [
        ("2024-01-15", 1_705_276_800.0),
        ("2024-01-15T10:30:00Z", 1_705_314_600.0),
        ("2024-01-15T10:30Z", 1_705_314_600.0),
        ("2024-01-15T10:30:00.250Z", 1_705_314_600.25),
        ("2024-01-15T12:30:00+02:00", 1_705_314_600.0),
        ("2024-01-15T05:00:00-0530", 1_705_314_600.0),
        ("1969-12-31T23:59:59Z", -1.0),
    ])
    func parsesTheAcceptedForms(text: String, seconds: Double) {
        #expect(ISO8601.parse(text)?.timeIntervalSince1970 == seconds)
    }

    @Test(arguments: ["2024-02-30", "2024-13-01", "24-01-15", "2024-01-15T25:00Z", "2024-01-15T10:30:00+2", "hello", "2024-01-15Tx"])
    func refusesEverythingElse(text: String) {
        #expect(ISO8601.parse(text) == nil)
    }

    @Test func formatsUTCWithMillisecondsAndRoundTrips() {
        let date = Date(timeIntervalSince1970: -0.5)
        #expect(ISO8601.format(date) == "1969-12-31T23:59:59.500Z")
        #expect(ISO8601.parse(ISO8601.format(date)) == date)
        #expect(ISO8601.formatDate(Date(timeIntervalSince1970: 1_705_314_600)) == "2024-01-15")
    }
}
