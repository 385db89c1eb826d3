import Foundation
import Logging
import Testing
@testable import FerryCore

/// The bad-input corpus in `Tests/Fixtures/bad/` (see its README): each file is refused with its expected
/// located message and exit code 2, the process ends by itself (no signal), and the good rows of a mixed
/// file are stored while the bad ones are not.
enum BadInputCorpus {
    static let root = BuiltProducts.packageRoot.appendingPathComponent("Tests/Fixtures/bad")

    /// The input files of one kind (folder), by name.
    static func inputs(_ kind: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent(kind).path)) ?? []
        return names.filter { !$0.hasSuffix(".expected") }.sorted()
    }

    /// What one input must produce: output fragments and `# directive value` lines.
    struct Expectation {
        var fragments: [String] = []
        var directives: [(name: String, value: String)] = []

        func values(_ name: String) -> [String] { directives.filter { $0.name == name }.map(\.value) }
    }

    /// Reads `NAME.expected` (config, segments) or `NAME.ext.expected` (data files) next to the input.
    static func expectation(kind: String, input: String) throws -> Expectation {
        let folder = root.appendingPathComponent(kind)
        let stem = (input as NSString).deletingPathExtension
        let candidates = [folder.appendingPathComponent(input + ".expected"), folder.appendingPathComponent(stem + ".expected")]
        guard let url = candidates.first(where: { FileManager.default.fileExists(atPath: $0.path) }) else {
            throw CorpusError(description: "\(kind)/\(input) has no .expected file")
        }
        var result = Expectation()
        for line in try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map(String.init) where !line.isEmpty {
            if line.hasPrefix("# ") {
                let parts = line.dropFirst(2).split(separator: " ", maxSplits: 1).map(String.init)
                result.directives.append((parts[0], parts.count > 1 ? parts[1] : ""))
            } else {
                result.fragments.append(line)
            }
        }
        guard !result.fragments.isEmpty else { throw CorpusError(description: "\(kind)/\(input).expected names no message") }
        return result
    }

    struct CorpusError: Error, CustomStringConvertible { var description: String }

    /// The corpus's own serial queue for running `ferry` (posix_spawn + waitpid): the waits hold neither the
    /// cooperative pool nor the shared `offPool` queue, whose timing-sensitive users (the kill tests) would
    /// otherwise wait behind a hundred and fifty corpus runs.
    static let queue = DispatchQueue(label: "ferry.integration-tests.bad-input-corpus")

    static func ferry(_ arguments: [String], environment: [String: String] = [:]) async throws -> CommandResult {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try BuiltProducts.ferry(arguments, environment: environment) }) }
        }
    }

    static let segments = "segments:\n  - name: vip\n  - name: newsletter\n"
    static let goodConnection = """
    name: good-one
    timezone: UTC
    schedule:
      at: ["03:00"]
    destination:
      type: sendgrid
      api_key: ${SENDGRID_API_KEY}
    goals:
      - export: { segments: [vip], email: email }

    """
    static let environment = ["SAILTHRU_API_KEY": "k", "SAILTHRU_API_SECRET": "s", "SENDGRID_API_KEY": "sg", "MAPP_SFTP_PASSWORD": "pw"]

    static func copy(_ kind: String, _ input: String, to path: String) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: root.appendingPathComponent(kind).appendingPathComponent(input).path, toPath: path)
    }

    /// Checks the exit code and every expected fragment, with `{file}` and `{dir}` filled in.
    static func check(_ result: CommandResult, _ expectation: Expectation, file: String, dir: String, input: String) {
        #expect(result.status == 2, "\(input): exit \(result.status) (above 128 = killed by a signal)\n\(result.stderr)")
        let output = result.stdout + result.stderr
        for fragment in expectation.fragments {
            let wanted = fragment.replacingOccurrences(of: "{file}", with: file).replacingOccurrences(of: "{dir}", with: dir)
            #expect(output.contains(wanted), "\(input): expected \(wanted)\nin:\n\(output.prefix(4000))")
        }
    }
}

/// The binary runs on the corpus's own queue, so the waits never hold the cooperative pool other suites need.
@Suite(.timeLimit(.minutes(5))) struct BadInputCorpusTests {
    @Test func theCorpusHoldsAtLeastAHundredInputsEachWithItsExpectation() throws {
        let kinds = ["config", "segments", "profiles", "sailthru-export"]
        let total = kinds.map { BadInputCorpus.inputs($0).count }.reduce(0, +)
        #expect(total >= 100, "\(total) inputs")
        for kind in kinds {
            for input in BadInputCorpus.inputs(kind) {
                _ = try BadInputCorpus.expectation(kind: kind, input: input)
            }
        }
    }

    @Test(arguments: BadInputCorpus.inputs("config"))
    func badConnectionFileIsRefusedWithItsLocation(_ input: String) async throws {
        let ws = Workspace()
        let dir = ws.path + "/s"
        ws.write("s/segments.yaml", BadInputCorpus.segments)
        ws.write("s/aaa.yaml", BadInputCorpus.goodConnection)
        let file = dir + "/" + input
        try BadInputCorpus.copy("config", input, to: file)
        let result = try await BadInputCorpus.ferry(["validate", "--schedules", dir], environment: BadInputCorpus.environment)
        BadInputCorpus.check(result, try BadInputCorpus.expectation(kind: "config", input: input), file: file, dir: dir, input: input)
        #expect(!result.stdout.contains("ok:"))
    }

    @Test(arguments: BadInputCorpus.inputs("segments"))
    func badSegmentsFileIsRefusedWithItsLocation(_ input: String) async throws {
        let ws = Workspace()
        let dir = ws.path + "/s"
        let file = dir + "/segments.yaml"
        try BadInputCorpus.copy("segments", input, to: file)
        let result = try await BadInputCorpus.ferry(["validate", "--schedules", dir], environment: BadInputCorpus.environment)
        BadInputCorpus.check(result, try BadInputCorpus.expectation(kind: "segments", input: input), file: file, dir: dir, input: input)
    }

    @Test(arguments: BadInputCorpus.inputs("profiles"))
    func badProfileFileNamesEachBadRowAndStoresTheGoodOnes(_ input: String) async throws {
        let ws = Workspace()
        ws.write("s/segments.yaml", BadInputCorpus.segments)
        let file = ws.path + "/" + input
        try BadInputCorpus.copy("profiles", input, to: file)
        let expectation = try BadInputCorpus.expectation(kind: "profiles", input: input)
        let arguments = ["profiles", "load", file, "--schedules", ws.path + "/s", "--db", ws.db]
        let result = try await BadInputCorpus.ferry(arguments)
        BadInputCorpus.check(result, expectation, file: file, dir: ws.path, input: input)
        guard FileManager.default.fileExists(atPath: ws.db) else {
            #expect(expectation.values("stored").isEmpty, "\(input): no store was written")
            return
        }
        let store = ProfileStore(database: try AppDatabase.open(path: ws.db))
        for id in expectation.values("stored") {
            #expect(try store.find(id) != nil, "\(input): good row \(id) was not stored")
        }
        for id in expectation.values("absent") {
            #expect(try store.find(id) == nil, "\(input): bad row \(id) was stored")
        }
    }

    /// Sailthru list exports go through the import goal's CSV reader and merge in-process: the sandbox only
    /// ever writes well-formed exports, so an export API double hands the executor each corpus file as the
    /// downloaded export (as `SailthruImportBadRowsTests` does); the runner, executor and store are the real ones.
    @Test(arguments: BadInputCorpus.inputs("sailthru-export"))
    func badSailthruExportNamesEachBadRowAndAppliesTheGoodOnes(_ input: String) async throws {
        let ws = Workspace()
        let setup = try SailthruImportBadRowsTests.fixtureImport(in: ws)
        let (connection, config) = (setup.connection, setup.config)
        let fixture = BadInputCorpus.root.appendingPathComponent("sailthru-export").appendingPathComponent(input)
        let database = try AppDatabase.open(path: ws.db)
        let api = SailthruImportBadRowsTests.FixtureExportAPI(fixture: fixture)
        let runner = ConnectionRunner(database: database, factory: SailthruImportBadRowsTests.Factory(api: api), logger: Logger(label: "test"))
        guard case .ran(let runs) = try await runner.run(connection, segments: config.segments, trigger: .manual, scheduledAt: nil),
              let run = runs.first, let record = try RunLedger(database: database).run(id: run.id) else {
            Issue.record("\(input): did not run"); return
        }
        let expectation = try BadInputCorpus.expectation(kind: "sailthru-export", input: input)
        let errors = ([record.error].compactMap { $0 } + record.rowErrors.map { "\($0.location): \($0.reason)" }).joined(separator: "\n")
        #expect(expectation.values("status") == [record.status.rawValue], "\(input): status \(record.status)\n\(errors)")
        let c = record.counts
        #expect(expectation.values("counts") == ["read=\(c.read) created=\(c.created) failed=\(c.failed)"], "\(input): \(c)\n\(errors)")
        for fragment in expectation.fragments {
            #expect(errors.contains(fragment), "\(input): expected \(fragment)\nin:\n\(errors)")
        }
        let store = ProfileStore(database: database)
        for email in expectation.values("stored") {
            #expect(try store.find(email) != nil, "\(input): good row \(email) was not applied")
        }
        for email in expectation.values("absent") {
            #expect(try store.find(email) == nil, "\(input): bad row \(email) was applied")
        }
    }
}
