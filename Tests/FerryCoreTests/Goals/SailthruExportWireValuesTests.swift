import Foundation
import Testing
@testable import FerryCore

/// DESIGN.md's wire types for Sailthru export vars.
@Suite struct SailthruExportWireValuesTests {
    let instant = ISO8601.parse("2024-01-15T10:30:00.250Z")!

    func value(_ field: ExportValue, to: String = "v", _ profile: Profile, segments: [String] = []) -> JSONValue? {
        ExportWireValues.value(of: ExportField(value: field, to: to), profile: profile, segments: segments)
    }

    @Test func singleValuesAreScalarsAndSeveralAreArrays() {
        let profile = Profile(id: "p1", properties: ["first_name": [.string("Jane")], "interests": [.string("golf"), .string("wine")]])
        #expect(value(.property("first_name"), profile) == .string("Jane"))
        #expect(value(.property("interests"), profile) == .array(["golf", "wine"]))
        #expect(value(.property("missing"), profile) == nil)
    }

    @Test func numbersAreIntegers() {
        let profile = Profile(id: "p1", properties: ["spend": [.number(129.5)], "orders": [.number(3)], "scores": [.number(1.2), .number(-2.5)]])
        #expect(value(.property("spend"), profile) == .number(130))
        #expect(value(.property("orders"), profile)?.serializedText == "3")
        #expect(value(.property("scores"), profile) == .array([.number(1), .number(-3)]))
    }

    @Test func timePropertiesAreUnixSeconds() {
        let profile = Profile(id: "p1", properties: ["last_order_time": [.date(instant)], "text_time": [.string("2024-01-15T10:30:00Z")]])
        #expect(value(.property("last_order_time"), profile) == .number(1_705_314_600))
        #expect(value(.property("text_time"), profile) == .number(1_705_314_600))
    }

    @Test func datePropertiesAreDays() {
        let profile = Profile(id: "p1", properties: ["signup_date": [.date(instant)], "odd_date": [.string("soon")]])
        #expect(value(.property("signup_date"), profile) == .string("2024-01-15"))
        #expect(value(.property("odd_date"), profile) == .string("soon"))
    }

    @Test func otherDateTimesAreISO8601WithMilliseconds() {
        let profile = Profile(id: "p1", properties: ["seen": [.date(instant)]])
        #expect(value(.property("seen"), profile) == .string("2024-01-15T10:30:00.250Z"))
        // An unsuffixed property takes the var name's suffix.
        #expect(value(.property("seen"), to: "seen_time", profile) == .number(1_705_314_600))
    }

    @Test func segmentsObjectivesIdAndText() {
        let profile = Profile(id: "p9", properties: ["objectives": [.string("email-marketing"), .string("ads")]])
        #expect(value(.segments(nil), profile, segments: ["vip", "newsletter"]) == .array(["newsletter", "vip"]))
        #expect(value(.segments(["vip", "lapsed"]), profile, segments: ["vip", "newsletter"]) == .array(["vip"]))
        #expect(value(.segments(nil), profile) == .array([]))
        #expect(value(.objectives, profile) == .array(["email-marketing", "ads"]))
        #expect(value(.profileID, profile) == .string("p9"))
        #expect(value(.text("ferry"), profile) == .string("ferry"))
    }

    @Test func varsLeaveOutFieldsWithoutValues() {
        let profile = Profile(id: "p1", properties: ["first_name": [.string("Jane")]])
        let vars = ExportWireValues.vars(for: [ExportField(value: .property("first_name"), to: "first_name"),
                                               ExportField(value: .property("city"), to: "city"),
                                               ExportField(value: .text("ferry"), to: "source")],
                                         profile: profile, segments: [])
        #expect(vars == ["first_name": "Jane", "source": "ferry"])
        #expect(JSONValue.object(vars).serialized() == #"{"first_name":"Jane","source":"ferry"}"#)
    }
}

extension JSONValue {
    var serializedText: String { serialized() }
}
