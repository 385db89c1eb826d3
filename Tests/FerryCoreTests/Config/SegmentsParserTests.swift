import Foundation
import Testing
@testable import FerryCore

@Suite struct SegmentsParserTests {
    let now = ISO8601.parse("2026-06-01T00:00:00Z")!

    func profile(_ properties: [String: [PropertyValue]]) -> Profile { Profile(id: "p", properties: properties) }

    @Test func parsesNestedRulesAndEvaluatesThem() throws {
        let text = """
        segments:
          - name: newsletter
            all:
              - { property: email, exists: true }
              - any:
                  - { property: country, in: [US, CA] }
                  - { property: lifetime_spend, gte: 100 }
              - { property: last_order_time, within_days: 90 }
          - name: vip
        """
        let (segments, errors) = SegmentsParser.parse(text: text, file: "s.yaml")
        #expect(errors.isEmpty)
        let newsletter = try #require(segments.first)
        let recent = PropertyValue.date(ISO8601.parse("2026-05-01T00:00:00Z")!)
        #expect(newsletter.contains(profile(["email": [.string("a@x.com")], "country": [.string("CA")], "last_order_time": [recent]]), now: now))
        #expect(newsletter.contains(profile(["email": [.string("a@x.com")], "country": [.string("DE")], "lifetime_spend": [.number(150)], "last_order_time": [recent]]), now: now))
        #expect(!newsletter.contains(profile(["email": [.string("a@x.com")], "country": [.string("DE")], "lifetime_spend": [.number(50)], "last_order_time": [recent]]), now: now))
        #expect(!newsletter.contains(profile(["country": [.string("US")], "last_order_time": [recent]]), now: now))
        let old = PropertyValue.date(ISO8601.parse("2025-01-01T00:00:00Z")!)
        #expect(!newsletter.contains(profile(["email": [.string("a@x.com")], "country": [.string("US")], "last_order_time": [old]]), now: now))
        let vip = segments[1]
        #expect(vip.rule == nil)
        #expect(vip.contains(profile(["segments": [.string("vip")]]), now: now))
        #expect(!vip.contains(profile(["email": [.string("a@x.com")]]), now: now))
    }

    @Test(arguments: [
        ("{ property: tier, eq: gold }", ["tier": [PropertyValue.string("gold")]], true),
        ("{ property: tier, ne: gold }", ["tier": [.string("gold")]], false),
        ("{ property: tier, ne: gold }", [:], true),
        ("{ property: score, eq: 3 }", ["score": [.number(3)]], true),
        ("{ property: zip, eq: \"007\" }", ["zip": [.string("007")]], true),
        ("{ property: interests, contains: GOLF }", ["interests": [.string("wine"), .string("mini golf")]], true),
        ("{ property: interests, in: [golf, wine] }", ["interests": [.string("jazz"), .string("wine")]], true),
        ("{ property: email, exists: false }", [:], true),
        ("{ property: spend, gt: 10 }", ["spend": [.number(10)]], false),
        ("{ property: spend, gte: 10 }", ["spend": [.number(10)]], true),
        ("{ property: spend, lt: 10 }", ["spend": [.string("9.5")]], true),
        ("{ property: spend, lte: 10 }", ["spend": [.string("n/a")]], false),
        ("{ property: signup, before: 2026-01-01 }", ["signup": [.date(ISO8601.parse("2025-12-31")!)]], true),
        ("{ property: signup, after: 2026-01-01 }", ["signup": [.date(ISO8601.parse("2025-12-31")!)]], false),
        ("{ property: seen, within_days: 7 }", ["seen": [.string("2026-05-28T10:00:00Z")]], true),
    ] as [(String, [String: [PropertyValue]], Bool)])
    func eachOperatorMatchesAnyValue(rule: String, properties: [String: [PropertyValue]], expected: Bool) throws {
        let (segments, errors) = SegmentsParser.parse(text: "segments:\n  - name: s\n    all:\n      - \(rule)\n", file: "s.yaml")
        #expect(errors.isEmpty, "\(errors)")
        #expect(try #require(segments.first).contains(profile(properties), now: now) == expected)
    }

    @Test func notNegatesAndNests() throws {
        let text = "segments:\n  - name: s\n    not:\n      - any:\n          - { property: a, exists: true }\n          - { property: b, exists: true }\n"
        let (segments, errors) = SegmentsParser.parse(text: text, file: "s.yaml")
        #expect(errors.isEmpty)
        #expect(try #require(segments.first).contains(profile([:]), now: now))
        #expect(try !#require(segments.first).contains(profile(["b": [.string("x")]]), now: now))
    }

    @Test func problemsAreLocated() {
        let text = """
        segments:
          - name: Bad Name
          - name: ok
            all:
              - { property: a, gt: lots }
              - { property: b, between: 1 }
          - name: ok
        """
        let (segments, errors) = SegmentsParser.parse(text: text, file: "s.yaml")
        #expect(segments.isEmpty)
        #expect(errors.map(\.description) == [
            "s.yaml:2:11: segment name 'Bad Name' may hold only a-z, 0-9 and '-'",
            "s.yaml:5:28: segments[1].all[0].gt must be a number, found 'lots'",
            "s.yaml:6:24: unknown key 'between' in segments[1].all[1]",
            "s.yaml:6:9: segments[1].all[1] needs exactly one operator (eq, ne, in, contains, exists, gt, gte, lt, lte, before, after, within_days), found none",
            "s.yaml:7:11: segment 'ok' is defined twice (first on line 3)",
        ])
    }
}
