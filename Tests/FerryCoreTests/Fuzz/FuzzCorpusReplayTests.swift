import Foundation
import Testing

/// Replays every committed fuzz input (`Fuzz/corpus/<target>/` seeds and `Fuzz/regressions/<target>/`
/// inputs that once crashed) through the same harness `make fuzz` runs, so a fixed crash stays fixed
/// without building the sanitized fuzzers. A crash or trap here takes the test process down.
@Suite(.timeLimit(.minutes(5))) struct FuzzCorpusReplayTests {
    static let fuzzFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fuzz")

    static func inputs(_ target: String) -> [URL] {
        ["corpus", "regressions"].flatMap { folder -> [URL] in
            let dir = fuzzFolder.appendingPathComponent(folder).appendingPathComponent(target)
            let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
            return names.filter { !$0.hasPrefix(".") && $0 != "README.md" }.sorted().map { dir.appendingPathComponent($0) }
        }
    }

    @Test(arguments: ["config", "csv", "jsonl", "cron"])
    func everyCommittedFuzzInputRunsThroughItsParserWithoutCrashing(_ target: String) throws {
        let inputs = Self.inputs(target)
        #expect(!inputs.isEmpty, "Fuzz/corpus/\(target) holds no seeds")
        let harness: ([UInt8]) -> Void
        switch target {
        case "config": harness = FuzzHarness.config
        case "csv": harness = FuzzHarness.csv
        case "jsonl": harness = FuzzHarness.jsonl
        default: harness = FuzzHarness.cron
        }
        for input in inputs {
            harness(Array(try Data(contentsOf: input)))
        }
    }
}
