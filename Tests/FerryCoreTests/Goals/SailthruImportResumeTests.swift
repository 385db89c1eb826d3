import Foundation
import Logging
import Testing
@testable import FerryCore

/// The import's checkpoint logic on an in-memory store: a resumed file skips what was applied.
@Suite struct SailthruImportResumeTests {
    /// An API whose list export must not be called (a resume reads the kept file).
    struct NoExportAPI: SailthruAPI {
        struct Unexpected: Error {}
        func user(id: String, key: String) async throws -> SailthruUser { throw Unexpected() }
        func saveUser(_ update: SailthruUserUpdate) async throws { throw Unexpected() }
        func deleteUser(id: String, key: String) async throws { throw Unexpected() }
        func list(named name: String) async throws -> SailthruList { throw Unexpected() }
        func lists(primaryOnly: Bool) async throws -> [SailthruList] { throw Unexpected() }
        func saveList(_ list: SailthruListDefinition) async throws -> SailthruList { throw Unexpected() }
        func deleteList(named name: String) async throws { throw Unexpected() }
        func startUpdateJob(file: URL, update: [String: JSONValue]?) async throws -> SailthruJob { throw Unexpected() }
        func startImportJob(list: String, file: URL) async throws -> SailthruJob { throw Unexpected() }
        func startListExport(list: String, vars: [String]) async throws -> SailthruJob { throw Unexpected() }
        func job(id: String) async throws -> SailthruJob { throw Unexpected() }
        func waitForJob(id: String) async throws -> SailthruJob { throw Unexpected() }
        func exportList(_ list: String, vars: [String], to file: URL, observer: (any DownloadObserver)?) async throws -> SailthruJob {
            throw Unexpected()
        }
    }

    /// Connection `c` with `sumOrderTotalByEmail`, and an in-memory store whose checkpoint keeps `csv` as list L's
    /// export, none of it applied yet.
    func keptSumImport(_ csv: String, in dir: TemporaryDirectory) throws -> (Connection, SailthruImportGoal, AppDatabase, kept: String) {
        let (connection, goal) = try loadSailthruImportConnection(sumOrderTotalByEmail, in: dir)
        let database = try AppDatabase.inMemory()
        return (connection, goal, database, try keepImportExport(csv, in: dir, database: database))
    }

    @Test func aResumedImportAppliesOnlyTheRecordsAfterTheCheckpoint() async throws {
        let dir = TemporaryDirectory()
        let (connection, goal, database, kept) = try keptSumImport("Email,order_total\na@x.com,1\nb@x.com,2\nc@x.com,3\nd@x.com,4\n", in: dir)
        try await database.writer.write { db in
            try ImportCheckpoint.advance(connection: "c", list: "L", recordsApplied: 2, runID: 0, at: Date(), db: db)
        }

        let ledger = RunLedger(database: database)
        let runID = try ledger.start(connection: "c", goal: "import L", trigger: .manual, scheduledAt: nil)
        let recorder = RunRecorder(ledger: ledger, runID: runID)
        let context = GoalContext(connection: connection, segments: [], database: database, recorder: recorder,
                                  progress: SilentProgress(), logger: Logger(label: "test"))
        let executor = SailthruImportExecutor(goal: goal, api: NoExportAPI(), batchSize: 1,
                                              stateDirectory: URL(fileURLWithPath: dir.path + "/state"))
        try await executor.run(in: context)

        let store = ProfileStore(database: database)
        #expect(try store.count() == 2)
        #expect(try store.find("a@x.com") == nil)
        #expect(try store.find("c@x.com")?.profile["lifetime_spend"] == [.number(3)])
        #expect(try store.find("d@x.com")?.profile["lifetime_spend"] == [.number(4)])
        #expect(await recorder.counts.read == 2)
        #expect(try ImportCheckpoint.load(connection: "c", list: "L", db: database) == nil)
        #expect(!FileManager.default.fileExists(atPath: kept))
    }

    /// A new export is digested as it downloads, in whatever pieces the transfer hands over, and a retried download
    /// starts the digest over: it must be the digest a resume reads back from the kept file.
    @Test func aDigestWorkedOutWhileDownloadingIsTheKeptFilesDigest() throws {
        let dir = TemporaryDirectory()
        let file = URL(fileURLWithPath: dir.path + "/export.csv")
        let csv = Data(("Email,order_total\n" + (0..<5000).map { "user.\($0)@example.com,\($0)\n" }.joined()).utf8)
        try csv.write(to: file)
        let stream = SHA256Stream()
        Data("the first attempt's bytes, before its connection dropped".utf8).withUnsafeBytes { stream.consume($0) }
        stream.restart()
        var offset = 0
        for size in [1, 0, 4095, 7, 65536, 100_000] where offset < csv.count {
            csv[offset..<min(offset + size, csv.count)].withUnsafeBytes { stream.consume($0) }
            offset = min(offset + size, csv.count)
        }
        csv[offset...].withUnsafeBytes { stream.consume($0) }
        let streamed = try stream.digest(of: file)
        #expect(streamed == (try KeptExportDigest.of(file)))
        #expect(try KeptExportDigest.matches(file, digest: streamed))
        // `printf 'abc' | sha256sum`, so the two are not merely equally wrong.
        let abc = SHA256Stream()
        Data("abc".utf8).withUnsafeBytes { abc.consume($0) }
        #expect(try abc.digest(of: file) == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(throws: DigestError.self) { try abc.digest(of: file) }  // given once
    }

    /// A new checkpoint keeps the export's SHA-256; one an older ferry left keeps an MD5 of its own making, and the run
    /// after an upgrade must still resume from it, or refuse a changed file, as before.
    @Test func aCheckpointWithTheOlderMD5DigestStillResumesAndStillRefusesAChangedFile() async throws {
        let csv = "Email,order_total\na@x.com,1\nb@x.com,2\nc@x.com,3\nd@x.com,4\n"
        let dir = TemporaryDirectory()
        let (connection, goal, database, kept) = try keptSumImport(csv, in: dir)
        let keptURL = URL(fileURLWithPath: kept)
        // `printf '…' | sha256sum`; and what ferry stored before (the hex MD5 of the file's MD5).
        #expect(try ImportCheckpoint.load(connection: "c", list: "L", db: database)?.digest
            == "sha256:9e9ecf8347a0363ec1e18992399cb77bf8bf40fbb7982a658fed3894c238c943")
        #expect(try KeptExportDigest.md5(of: keptURL) == "de097f7fbb934647462f5b755c800c30")
        try ImportCheckpoint.begin(connection: "c", list: "L", file: kept, digest: "de097f7fbb934647462f5b755c800c30", runID: 0,
                                   at: Date(), db: database)
        try await database.writer.write { db in
            try ImportCheckpoint.advance(connection: "c", list: "L", recordsApplied: 3, runID: 0, at: Date(), db: db)
        }
        _ = try await runKeptImport(goal, of: connection, database: database, in: dir, batchSize: 2)
        let store = ProfileStore(database: database)
        #expect(try store.count() == 1)
        #expect(try store.find("d@x.com")?.profile["lifetime_spend"] == [.number(4)])

        // The same checkpoint over a file changed since: nothing applied, the checkpoint cleared.
        let changed = dir.write("kept.csv", csv.replacingOccurrences(of: "d@x.com,4", with: "d@x.com,5"))
        try ImportCheckpoint.begin(connection: "c", list: "L", file: changed, digest: "de097f7fbb934647462f5b755c800c30", runID: 0,
                                   at: Date(), db: database)
        await #expect(throws: GoalFailure.self) {
            try await runKeptImport(goal, of: connection, database: database, in: dir, batchSize: 2)
        }
        #expect(try store.find("d@x.com")?.profile["lifetime_spend"] == [.number(4)])
        #expect(try ImportCheckpoint.load(connection: "c", list: "L", db: database) == nil)
    }

    /// Cancels the task that reports progress once `after` records are committed (a shutdown mid-list).
    struct CancellingProgress: ProgressSink {
        let after: Int
        func progress(label: String, done: Int, total: Int?) async {
            if done >= after { withUnsafeCurrentTask { $0?.cancel() } }
        }
    }

    /// A run stopped mid-list (its reading thread batches ahead) keeps the checkpoint of its last committed
    /// batch, and the next run applies exactly the records after it.
    @Test(.timeLimit(.minutes(2)))
    func aStoppedImportStopsItsReadingThreadAndTheNextRunAppliesTheRestOnce() async throws {
        let dir = TemporaryDirectory()
        let rows = (1...50).map { "m\($0)@x.com,\($0)" }
        let (connection, goal, database, _) = try keptSumImport("Email,order_total\n" + rows.joined(separator: "\n") + "\n", in: dir)
        let ledger = RunLedger(database: database)
        let executor = SailthruImportExecutor(goal: goal, api: NoExportAPI(), batchSize: 5,
                                              stateDirectory: URL(fileURLWithPath: dir.path + "/state"))

        let first = try ledger.start(connection: "c", goal: "import L", trigger: .manual, scheduledAt: nil)
        let stopped = GoalContext(connection: connection, segments: [], database: database, recorder: RunRecorder(ledger: ledger, runID: first),
                                  progress: CancellingProgress(after: 10), logger: Logger(label: "test"))
        // A task of its own: the progress sink cancels the task it is called from.
        let run = Task { try await executor.run(in: stopped) }
        await #expect(throws: CancellationError.self) { try await run.value }
        let store = ProfileStore(database: database)
        #expect(try store.count() == 10)
        #expect(try ImportCheckpoint.load(connection: "c", list: "L", db: database)?.recordsApplied == 10)

        let second = try ledger.start(connection: "c", goal: "import L", trigger: .manual, scheduledAt: nil)
        let recorder = RunRecorder(ledger: ledger, runID: second)
        let context = GoalContext(connection: connection, segments: [], database: database, recorder: recorder,
                                  progress: SilentProgress(), logger: Logger(label: "test"))
        try await executor.run(in: context)
        #expect(try store.count() == 50)
        for i in 1...50 { #expect(try store.find("m\(i)@x.com")?.profile["lifetime_spend"] == [.number(Double(i))], "m\(i)") }
        #expect(await recorder.counts.read == 40)
        #expect(try ImportCheckpoint.load(connection: "c", list: "L", db: database) == nil)
    }
}
