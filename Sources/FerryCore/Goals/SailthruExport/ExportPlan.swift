import Foundation
import GRDB

/// What an export run would do (or did), per outcome, with up to five sample profiles each.
public struct ExportPlan: Codable, Hashable, Sendable {
    /// One outcome: `add`, `update`, `remove`, `skip (no identifier)`, …
    public struct Outcome: Codable, Hashable, Sendable {
        public var name: String
        public var count: Int
        /// `p1 (a@x.com)`, at most `ExportPlan.samplesKept`.
        public var samples: [String]
    }

    /// How many sample profiles each outcome keeps.
    public static let samplesKept = 5

    public var outcomes: [Outcome] = []
    /// Lines worth reading before the counts (a baseline, a tripped circuit breaker).
    public var notes: [String] = []

    public init() {}

    /// Counts one profile under `outcome`, keeping it as a sample while there is room.
    /// (`sample` is only built for the first few of each outcome: a run adds one per profile.)
    public mutating func add(_ outcome: String, sample: @autoclosure () -> String) {
        if let index = outcomes.firstIndex(where: { $0.name == outcome }) {
            outcomes[index].count += 1
            if outcomes[index].samples.count < Self.samplesKept { outcomes[index].samples.append(sample()) }
        } else {
            outcomes.append(Outcome(name: outcome, count: 1, samples: [sample()]))
        }
    }

    /// Makes sure an outcome is listed, even with a zero count (add/update/remove always show).
    public mutating func ensure(_ outcome: String) {
        if !outcomes.contains(where: { $0.name == outcome }) { outcomes.append(Outcome(name: outcome, count: 0, samples: [])) }
    }

    /// The count of one outcome.
    public func count(_ outcome: String) -> Int { outcomes.first { $0.name == outcome }?.count ?? 0 }

    /// The plan as people read it, one outcome a line.
    public var text: String {
        var lines = notes.map { "  note: \($0)" }
        let width = outcomes.map(\.name.count).max() ?? 0
        for outcome in outcomes {
            var line = "  \(outcome.name.padding(toLength: width, withPad: " ", startingAt: 0))  \(outcome.count)"
            if !outcome.samples.isEmpty { line += "  e.g. " + outcome.samples.joined(separator: ", ") }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }
}
