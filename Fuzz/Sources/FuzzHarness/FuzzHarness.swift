import FerryCore
import Foundation

/// One fuzz input through one of ferry's parsers, through their public entry points only.
///
/// Shared by the libFuzzer targets in `Fuzz/` and by `FuzzCorpusReplayTests` in the root package (which
/// compiles this same file through a symlink), so every corpus and regression input is replayed by `make test`.
/// A crash, a trap or a hang is the failure; refusing the input is the expected outcome.
public enum FuzzHarness {
    /// A folder of this process's own for inputs that must be files (ConfigLoader, ByteStream).
    static let scratch: String = {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        let path = "\(base)/ferry-fuzz-\(getpid())-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }()

    /// A store shared by the profile inputs of one process (the loader needs one to upsert into).
    static let store: ProfileStore? = (try? AppDatabase.inMemory()).map { ProfileStore(database: $0) }

    static func file(_ name: String, _ bytes: [UInt8]) -> String {
        let path = "\(scratch)/\(name)"
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return path
    }

    /// The bytes as a connection file and as segments.yaml, through ConfigLoader (UTF-8 check, YAMLReader,
    /// ConnectionParser, SegmentsParser).
    public static func config(_ bytes: [UInt8]) {
        let folder = "\(scratch)/schedules"
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        _ = file("schedules/connection.yaml", bytes)
        _ = file("schedules/segments.yaml", bytes)
        let environment = ["SAILTHRU_API_KEY": "k", "SAILTHRU_API_SECRET": "s", "SENDGRID_API_KEY": "sg", "A": "x"]
        let config = ConfigLoader(environment: environment).load(directory: folder)
        for error in config.errors { _ = error.description }
        if let text = String(validating: bytes, as: UTF8.self) {
            _ = ConnectionParser(environment: environment, knownSegments: ["vip", "newsletter"]).parse(text: text, file: "c.yaml")
        }
    }

    /// The bytes as a CSV file, read record by record through a small buffer (so records cross chunk
    /// boundaries) and a small field limit (so the limit path runs).
    public static func csv(_ bytes: [UInt8]) {
        let path = file("input.csv", bytes)
        guard let stream = try? ByteStream(path: path, chunkSize: 7) else { return }
        let reader = CSVReader(stream: stream, maximumFieldBytes: 64)
        var records = 0
        while let record = try? reader.nextRecord() {
            records += 1
            // Every record consumes at least one byte: more records than bytes is a reader that stopped moving.
            precondition(records <= bytes.count + 1, "CSVReader returned more records than the input has bytes")
            if case .success(let fields) = record.result { _ = fields.map(CSVReader.foldedName) }
        }
    }

    /// The bytes as a JSON Lines profile file through `ProfileLoader.load` (line reader, JSON parsing, upsert).
    public static func jsonl(_ bytes: [UInt8]) {
        guard let store else { return }
        let path = file("profiles.jsonl", bytes)
        var loader = ProfileLoader(store: store, segments: [], batchSize: 3)
        loader.maximumLineBytes = 4096
        loader.maximumValueBytes = 256
        _ = try? loader.load(path: path, now: Date(timeIntervalSince1970: 1_800_000_000))
    }

    /// The bytes as a cron expression; a parsed one is also validated and asked for its next fires.
    public static func cron(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let expression = try? CronExpression(parsing: text) else { return }
        _ = expression.matchesDay(month: 2, day: 29, weekday: 0)
        let schedule = Schedule(rule: .cron(expression), timeZoneIdentifier: "Europe/Berlin", dst: .default)
        let engine = ScheduleEngine()
        guard (try? engine.validate(schedule)) != nil else { return }
        _ = engine.fires(of: schedule, after: Date(timeIntervalSince1970: 1_800_000_000), count: 3)
    }
}
