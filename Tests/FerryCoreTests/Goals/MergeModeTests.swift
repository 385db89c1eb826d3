import Foundation
import Testing
@testable import FerryCore

@Suite struct MergeModeTests {
    private func merge(_ current: [PropertyValue], _ cell: String, _ mode: MergeMode) -> [PropertyValue]? {
        try? ImportMerge.merge(current, cell: cell, mode: mode).get()
    }

    /// A column merged into several properties is read once for the row: each merge must still get what reading the
    /// cell for its own mode gives (commas split only for `add`, JSON arrays for every mode, numbers and dates typed).
    @Test(arguments: ["Jun", "a, b, a", #"["golf","wine"]"#, "42", "2024-01-15T10:30:00Z", "  ", "x,", "12.5"])
    func aColumnMergedSeveralWaysIsReadAsEachModeReadsIt(cell: String) {
        let merges: [(mode: MergeMode, column: Int)] = [(.setIfEmpty, 1), (.set, 1), (.add, 1), (.sum, 0), (.add, 1), (.sum, 1)]
        let cells = ["3", cell]
        let one = ImportMerge.incoming(cells, merges: merges)
        #expect(one == merges.map { ImportMerge.incoming(cells[$0.column], mode: $0.mode) })
    }

    @Test func setReplacesTheValues() {
        #expect(merge([.string("a"), .string("b")], "c", .set) == [.string("c")])
        #expect(merge([], "42", .set) == [.number(42)])
        #expect(merge([.string("x")], #"["golf","wine"]"#, .set) == [.string("golf"), .string("wine")])
    }

    @Test func setIfEmptyOnlyFillsAnEmptyProperty() {
        #expect(merge([], "Jane", .setIfEmpty) == [.string("Jane")])
        #expect(merge([.string("Janet")], "Jane", .setIfEmpty) == [.string("Janet")])
    }

    @Test func addAppendsWithoutDuplicates() {
        #expect(merge([.string("golf")], "wine", .add) == [.string("golf"), .string("wine")])
        #expect(merge([.string("golf")], "golf", .add) == [.string("golf")])
        #expect(merge([.string("golf")], #"["golf","wine","ski"]"#, .add) == [.string("golf"), .string("wine"), .string("ski")])
        #expect(merge([], "golf, wine,golf", .add) == [.string("golf"), .string("wine")])
        #expect(merge([.number(1)], "[1, 2, true, null]", .add) == [.number(1), .number(2), .string("true")])
    }

    @Test func sumAddsNumbersWithEmptyAsZero() {
        #expect(merge([], "129.5", .sum) == [.number(129.5)])
        #expect(merge([.number(10)], "2.5", .sum) == [.number(12.5)])
        #expect(merge([.string("7")], "-2", .sum) == [.number(5)])
    }

    @Test func sumRefusesWhatIsNotANumber() {
        guard case .failure(let error) = ImportMerge.merge([.number(1)], cell: "lots", mode: .sum) else {
            Issue.record("expected a failure"); return
        }
        #expect(error.message.contains("'lots' is not a number"))
        #expect(throws: ImportValueError.self) { try ImportMerge.merge([.string("abc")], cell: "3", mode: .sum).get() }
    }

    @Test(arguments: MergeMode.allCases)
    func anEmptyCellChangesNothingInAnyMode(mode: MergeMode) {
        let current: [PropertyValue] = [.number(3)]
        #expect(merge(current, "", mode) == current)
        #expect(merge(current, "   ", mode) == current)
        #expect(merge([], "", mode) == [])
    }

    @Test func cellsKeepTheirTypes() {
        #expect(ImportCell.typed("12") == .number(12))
        #expect(ImportCell.typed("-1.5e2") == .number(-150))
        #expect(ImportCell.typed("02134") == .string("02134"))
        #expect(ImportCell.typed("nan") == .string("nan"))
        #expect(ImportCell.typed("2024-01-15T10:30:00Z") == .date(Date(timeIntervalSince1970: 1_705_314_600)))
        #expect(ImportCell.typed("Mon, 15 Jan 2024 10:30:00 -0500") == .date(Date(timeIntervalSince1970: 1_705_332_600)))
        #expect(ImportCell.typed("Jane") == .string("Jane"))
    }

    @Test(arguments: [
        ("Mon, 15 Jan 2024 10:30:00 -0500", 1_705_332_600.0),
        ("15 Jan 2024 15:30:00 +0000", 1_705_332_600.0),
        ("Mon, 15 Jan 2024 15:30 GMT", 1_705_332_600.0),
        ("Mon, 15 Jan 24 10:30:00 EST", 1_705_332_600.0),
        ("Thu, 01 Jan 1970 05:30:00 +0530", 0.0),
    ])
    func parsesRFC2822(text: String, seconds: Double) {
        #expect(RFC2822.parse(text)?.timeIntervalSince1970 == seconds)
    }

    @Test(arguments: ["Mon, 30 Feb 2024 10:30:00 +0000", "Mon, 15 Foo 2024 10:30:00 +0000", "15 Jan 2024", "Mon, 15 Jan 2024 25:00:00 +0000",
                      "Mon, 15 Jan 2024 10:30:00 +05", "golf, wine, ski, tennis"])
    func refusesWhatIsNotRFC2822(text: String) {
        #expect(RFC2822.parse(text) == nil)
    }
}
