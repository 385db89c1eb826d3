import Foundation
import Testing
@testable import FerryCore

/// A valid Sailthru connection; tests break one line of it at a time.
let validSailthru = """
name: nightly
timezone: America/New_York
schedule:
  at: ["02:30"]
  weekdays: [mon, fri]
destination:
  type: sailthru
  api_key: ${KEY}
  api_secret: ${SECRET}
goals:
  - export:
      segment: newsletter
      match: { email: email }
      lists: [Newsletter]
"""

@Suite struct ConnectionValidationTests {
    let parser = ConnectionParser(environment: ["KEY": "k-123", "SECRET": "topsecret-value"], knownSegments: ["newsletter", "vip"])

    func errors(_ text: String) -> [ConfigError] {
        parser.parse(text: text, file: "c.yaml").errors
    }

    @Test func validFileParsesIntoTypedValues() throws {
        let result = parser.parse(text: validSailthru, file: "c.yaml")
        #expect(result.errors.isEmpty)
        let connection = try #require(result.connection)
        #expect(connection.name == "nightly")
        #expect(connection.schedule.rule == .times([WallTime(hour: 2, minute: 30)!], days: .weekdays([.monday, .friday])))
        #expect(connection.schedule.dst == .default)
        guard case .sailthru(let destination) = connection.destination else { Issue.record("not sailthru"); return }
        #expect(destination.apiKey.value == "k-123")
        #expect(destination.baseURL == "https://api.sailthru.com")
        guard case .sailthruExport(let goal) = connection.goals.first else { Issue.record("no export"); return }
        #expect(goal.segment == "newsletter" && goal.matchProperty == "email" && goal.matchKey == .email && goal.method == .job)
    }

    @Test func unknownKeyIsLocatedAndSuggestsTheNearestKey() {
        let e = errors(validSailthru.replacingOccurrences(of: "timezone:", with: "timezon:"))
        #expect(e.contains { $0.kind == .unknownKey && $0.line == 2 && $0.column == 1 && $0.message.contains("did you mean 'timezone'?") })
        #expect(e.contains { $0.kind == .missingKey && $0.message.contains("'timezone'") })
    }

    @Test func unknownTimeZoneNamesTheZone() {
        let e = errors(validSailthru.replacingOccurrences(of: "America/New_York", with: "America/New_Yrok"))
        let error = e.first { $0.kind == .unknownTimeZone }
        #expect(error?.description == "c.yaml:2:11: unknown time zone 'America/New_Yrok': use an IANA name like America/New_York; did you mean 'America/New_York'?")
    }

    @Test(arguments: ["25:00", "2:30", "02:60", "noon"])
    func badTimeIsReportedAtTheItem(time: String) {
        let e = errors(validSailthru.replacingOccurrences(of: "\"02:30\"", with: "\"\(time)\""))
        #expect(e.map(\.kind) == [.badTime])
        #expect(e.first?.line == 4 && e.first?.column == 8)
    }

    @Test func badCronNamesTheField() {
        let text = validSailthru.replacingOccurrences(of: "  at: [\"02:30\"]\n  weekdays: [mon, fri]", with: "  cron: \"61 * * * *\"")
        let e = errors(text)
        #expect(e.map(\.kind) == [.badCron])
        #expect(e.first?.message == "schedule.cron '61 * * * *': minute field: 61 is outside 0-59")
    }

    @Test func weekdaysAndMonthdaysTogetherConflict() {
        let e = errors(validSailthru.replacingOccurrences(of: "  weekdays: [mon, fri]", with: "  weekdays: [mon]\n  monthdays: [1, last]"))
        #expect(e.map(\.kind) == [.conflictingKeys])
        #expect(e.first?.line == 6)
    }

    @Test(arguments: [("monthdays: [0]", "is not a day of the month"), ("times_per_day: 0", "1 to 1440"),
                      ("times_per_day: 1441", "1 to 1440"), ("at: []", "at least one time"), ("weekdays: [funday]", "is not a weekday")])
    func scheduleValuesOutOfRangeAreRefused(line: String, message: String) {
        let text = validSailthru.replacingOccurrences(of: "  weekdays: [mon, fri]", with: "  " + line)
            .replacingOccurrences(of: line.hasPrefix("at:") ? "  at: [\"02:30\"]\n" : "\u{0}", with: "")
        let e = errors(text)
        #expect(e.contains { $0.message.contains(message) }, "\(e)")
    }

    @Test func onceMustBeALocalDateTime() {
        let text = validSailthru.replacingOccurrences(of: "  at: [\"02:30\"]\n  weekdays: [mon, fri]", with: "  once: \"2026-02-30T09:00\"")
        #expect(errors(text).map(\.kind) == [.badTime])
    }

    @Test func unknownSegmentSuggestsAKnownOne() {
        let e = errors(validSailthru.replacingOccurrences(of: "segment: newsletter", with: "segment: newsleter"))
        #expect(e.map(\.kind) == [.unknownSegment])
        #expect(e.first?.message.contains("did you mean 'newsletter'?") == true)
    }

    @Test func unknownMergeModeIsNamed() {
        let text = validSailthru.replacingOccurrences(of: """
          - export:
              segment: newsletter
              match: { email: email }
              lists: [Newsletter]
        """, with: """
          - import:
              lists: [Newsletter]
              match: { email: email }
              fields:
                - { from: total, to: spend, mode: summ }
        """)
        let e = errors(text)
        #expect(e.map(\.kind) == [.unknownMergeMode])
        #expect(e.first?.message == "unknown merge mode 'summ': use set, set_if_empty, add or sum; did you mean 'sum'?")
    }

    @Test func missingVariableIsNamedAndNoSecretValueAppears() {
        let p = ConnectionParser(environment: ["KEY": "k-123"], knownSegments: ["newsletter"])
        let e = p.parse(text: validSailthru, file: "c.yaml").errors
        #expect(e.map(\.kind) == [.missingVariable])
        #expect(e.first?.message.contains("SECRET is not set") == true)
        let all = p.parse(text: validSailthru.replacingOccurrences(of: "segment: newsletter", with: "segment: x"), file: "c.yaml").errors
        #expect(!all.map(\.description).joined().contains("k-123"))
    }

    @Test func aSecretWrittenInTheFileIsRefusedWithoutEchoingIt() {
        let e = errors(validSailthru.replacingOccurrences(of: "${SECRET}", with: "hunter2-literal"))
        #expect(e.map(\.kind) == [.secretInFile])
        #expect(!(e.first?.description.contains("hunter2") ?? true))
    }

    @Test func twoExportsToTheSameListConflict() {
        let text = validSailthru + """

          - export:
              segment: vip
              match: { email: email }
              lists: [Newsletter]
        """
        let e = errors(text)
        #expect(e.map(\.kind) == [.conflictingGoals])
    }

    @Test func importOnlyExistsForSailthru() {
        let text = """
        name: sg
        timezone: UTC
        schedule: { at: ["01:00"] }
        destination: { type: sendgrid, api_key: "${KEY}" }
        goals:
          - import: { lists: [A], match: { email: email } }
        """
        #expect(errors(text).contains { $0.message.contains("has no import goal") })
    }

    @Test func mappNeedsAVerifiedHostKey() {
        let text = """
        name: drop
        timezone: UTC
        schedule: { cron: "0 3 * * 1" }
        destination: { type: mapp, host: h, username: u, password: "${SECRET}", folder: /in }
        goals:
          - export: { segment: vip, file_prefix: x, columns: [ { property: email, header: user.Email } ] }
        """
        let e = errors(text)
        #expect(e.map(\.kind) == [.missingKey])
        #expect(e.first?.message.contains("never connects to an unverified host") == true)
    }

    @Test func mappColumnsMustStartWithAnIdentifierAndLeaveMembershipToFerry() {
        let base = """
        name: drop
        timezone: UTC
        schedule: { cron: "0 3 * * 1" }
        destination: { type: mapp, host: h, username: u, password: "${SECRET}", folder: /in, host_key_sha256: "SHA256:abc" }
        goals:
          - export: { segment: vip, file_prefix: x, columns: [ COLUMNS ] }
        """
        #expect(errors(base.replacingOccurrences(of: "COLUMNS", with: "{ property: email, header: user.Email }")).isEmpty)
        let first = errors(base.replacingOccurrences(of: "COLUMNS", with: "{ property: city, header: user.CustomAttribute.City }"))
        #expect(first.map(\.message) == ["export.columns: the first Mapp column must be an identifier (user.Email, user.MobileNumber, user.FaxNumber, user.Identifier), not 'user.CustomAttribute.City'"])
        let membership = errors(base.replacingOccurrences(of: "COLUMNS", with: "{ property: email, header: user.Email }, { property: s, header: user.CustomAttribute.SegmentMembership }"))
        #expect(membership.first?.message.contains("is always written as the last column") == true)
    }

    @Test func everyProblemIsReportedNotJustTheFirst() {
        let text = validSailthru
            .replacingOccurrences(of: "America/New_York", with: "Mars/Base")
            .replacingOccurrences(of: "\"02:30\"", with: "\"24:00\"")
            .replacingOccurrences(of: "segment: newsletter", with: "segment: nope")
        #expect(Set(errors(text).map(\.kind)) == [.unknownTimeZone, .badTime, .unknownSegment])
    }

    @Test func scheduleErrorsAreSeparatedFromTheRest() {
        let result = parser.parse(text: validSailthru.replacingOccurrences(of: "segment: newsletter", with: "segment: nope"), file: "c.yaml")
        #expect(result.connection == nil)
        #expect(result.scheduleErrors.isEmpty)
        #expect(result.schedule != nil && result.name == "nightly")
    }

    @Test func yamlSyntaxErrorsAreLocated() {
        let e = errors("name: x\nschedule: [unclosed\n")
        #expect(e.first?.kind == .yamlSyntax)
        #expect((e.first?.line ?? 0) >= 2)
    }

    @Test func aliasBombIsRefused() {
        var text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        var previous = "a"
        for name in ["b", "c", "d", "e", "f", "g"] {
            text += "\(name): &\(name) [" + Array(repeating: "*\(previous)", count: 10).joined(separator: ", ") + "]\n"
            previous = name
        }
        let e = errors(text)
        #expect(e.first?.message.contains("too large") == true)
    }

    @Test func duplicateConnectionNamesAcrossFilesAreRefused() {
        let dir = TemporaryDirectory()
        dir.write("segments.yaml", "segments:\n  - name: newsletter\n")
        dir.write("a.yaml", validSailthru)
        dir.write("b.yaml", validSailthru)
        let config = ConfigLoader(environment: ["KEY": "k", "SECRET": "s"]).load(directory: dir.path)
        #expect(config.errors.map(\.kind) == [.duplicateName])
        #expect(config.errors.first?.file.hasSuffix("b.yaml") == true)
        #expect(config.connections.map(\.name) == ["nightly"])
    }

    @Test func invalidUTF8IsReportedWithItsPosition() {
        let dir = TemporaryDirectory()
        dir.write("bad.yaml", bytes: Array("name: x\ntimezone: ".utf8) + [0xFF, 0xFE] + Array("\n".utf8))
        let config = ConfigLoader(environment: [:]).load(directory: dir.path)
        #expect(config.errors.first?.message == "the file is not valid UTF-8")
        #expect(config.errors.first?.line == 2 && config.errors.first?.column == 11)
    }
}
