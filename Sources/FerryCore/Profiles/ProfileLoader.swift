import Foundation

/// A line of a profile file that was not loaded, and why.
public struct RejectedRow: Hashable, Sendable, CustomStringConvertible {
    public let file: String
    public let line: Int
    public let reason: String
    public var description: String { "\(file):\(line): \(reason)" }
}

/// What a profile load did.
public struct LoadReport: Sendable {
    public var created = 0
    public var updated = 0
    public var unchanged = 0
    public var rejected: [RejectedRow] = []
    /// The last input line whose batch was committed.
    public var committedThroughLine = 0
}

/// Streams a JSON Lines or CSV profile file into the store in transactions of `batchSize` rows.
///
/// A bad line is reported by number and skipped; the rest load. A failure part-way leaves every
/// committed batch in place and the report says how far it got.
public struct ProfileLoader: Sendable {
    public var store: ProfileStore
    public var segments: [SegmentDefinition]
    public var batchSize: Int
    /// The longest line (JSON Lines) read; longer ones are rejected without being held in memory.
    public var maximumLineBytes: Int = 1 << 20
    /// The longest single value; longer ones reject their row.
    public var maximumValueBytes: Int = 1 << 16

    public init(store: ProfileStore, segments: [SegmentDefinition], batchSize: Int = 5000) {
        self.store = store
        self.segments = segments
        self.batchSize = batchSize
    }

    /// The input formats `load` reads.
    public enum Format: Sendable { case jsonLines, csv }

    /// Guesses the format from the extension: `.csv` is CSV, anything else JSON Lines.
    public static func format(forPath path: String) -> Format {
        path.lowercased().hasSuffix(".csv") ? .csv : .jsonLines
    }

    /// Loads `path`; `progress` is called after each committed batch with the report so far.
    /// Throws only when the file cannot be read at all or the store fails; row problems go in the report.
    public func load(path: String, now: Date = Date(), progress: (LoadReport) -> Void = { _ in }) throws -> LoadReport {
        // Reading, parsing and encoding run on their own thread, up to two batches ahead of the writes:
        // on two cores a load then takes about as long as the slower half instead of both together.
        let channel = BatchChannel<SpentBatch>(capacity: 2)
        let spent = SpentBatches()
        let reader = Thread { [self] in
            channel.finish(Result { try self.read(path: path, now: now, into: channel, freeing: spent) })
        }
        reader.stackSize = 8 << 20  // Foundation's parser recurses on deeply nested (refused) lines
        reader.start()
        defer { channel.cancelAndWait() }

        return try store.withBulkLoadSettings { committed in
            var filter = try store.keyFilter(forFile: path, bytesPerRow: 200)  // a profile line: a couple of hundred bytes
            var report = LoadReport()
            while true {
                switch channel.next() {
                case .item(let batch):
                    try write(batch, path: path, into: &report, progress: progress, committed: committed, filter: &filter)
                    // Freeing a batch (a dictionary and strings per row) took a tenth of this thread's time; the
                    // reading thread has room for it. Nothing of it is left here: `write` has returned and the box is a class.
                    spent.add(batch)
                case .end(let result):
                    guard try result.get() else { throw InputError(file: path, message: "the file holds no profiles") }
                    return report
                }
            }
        }
    }

    /// Upserts one batch from the reading thread in one transaction, adding its outcomes to `report`.
    private func write(_ batch: SpentBatch, path: String, into report: inout LoadReport, progress: (LoadReport) -> Void,
                       committed: (Int) -> Void, filter: inout StoreKeyFilter?) throws {
        let parsed = batch.parsed!
        report.rejected += parsed.rejected
        guard !parsed.rows.isEmpty else { return }
        let outcomes: [UpsertOutcome]
        (outcomes, batch.leftovers) = try store.upsert(parsed.rows, prepared: parsed.prepared, filter: &filter)
        committed(parsed.rows.count)
        for (line, outcome) in zip(parsed.lines, outcomes) {
            switch outcome {
            case .created: report.created += 1
            case .updated: report.updated += 1
            case .unchanged: report.unchanged += 1
            case .rejected(let reason): report.rejected.append(RejectedRow(file: path, line: line, reason: reason))
            }
        }
        report.committedThroughLine = parsed.lines.last!
        progress(report)
    }

    /// A parsed batch, and once written what its write held in memory: handed between threads in a box, so the
    /// thread that frees it is the one that empties the box, whoever lets go of the box last.
    ///
    /// `@unchecked Sendable`: each thread touches it only after the previous one has handed it over (through the
    /// channel's lock, then ``SpentBatches``' lock).
    final class SpentBatch: @unchecked Sendable {
        fileprivate(set) var parsed: ParsedBatch?
        fileprivate var leftovers: BatchLeftovers?

        init(_ parsed: ParsedBatch) {
            self.parsed = parsed
        }

        /// Frees the batch here: what the write held first, while the rows it shares strings with still hold them.
        func release() {
            leftovers = nil
            parsed = nil
        }
    }

    /// Written batches on their way back to the reading thread, which frees them between batches of its own.
    ///
    /// That thread allocated them: glibc frees a chunk fastest in the thread whose arena holds it, and the chunks it
    /// frees there serve its next allocations. Freed on a thread of their own they took that thread 3–4 s of
    /// locking and consolidating per million rows, and made the reading thread's own allocations slower.
    final class SpentBatches: @unchecked Sendable {
        private let lock = NSLock()
        private var batches: [SpentBatch] = []

        /// Hands a written batch back.
        func add(_ batch: SpentBatch) {
            lock.withLock { batches.append(batch) }
        }

        /// Frees every batch handed back so far, on the calling thread.
        func releaseAll() {
            let taken = lock.withLock { () -> [SpentBatch] in
                defer { batches.removeAll(keepingCapacity: true) }
                return batches
            }
            for batch in taken { batch.release() }
        }
    }

    /// A batch as the reading thread hands it over: rows with their lines and stored JSON, and the
    /// lines refused since the previous batch (reported before the batch's own outcomes).
    struct ParsedBatch: Sendable {
        var rows: [ProfileUpsert] = []
        var lines: [Int] = []
        var prepared: PreparedRows
        var rejected: [RejectedRow] = []
        var isEmpty: Bool { rows.isEmpty && rejected.isEmpty }

        init(segments: [SegmentDefinition], now: Date) {
            prepared = PreparedRows(segments: segments, now: now)
        }
    }

    /// Reads and parses `path` into batches on `channel`, freeing those `spent` hands back; true when the file held any row.
    func read(path: String, now: Date, into channel: BatchChannel<SpentBatch>, freeing spent: SpentBatches) throws -> Bool {
        var batch = ParsedBatch(segments: segments, now: now)
        var isStopped = false
        func accept(_ line: Int, _ result: Result<ProfileUpsert, RowProblem>) {
            switch result {
            case .success(let row):
                batch.rows.append(row)
                batch.lines.append(line)
                batch.prepared.append(row)
            case .failure(let problem): batch.rejected.append(RejectedRow(file: path, line: line, reason: problem.message))
            }
            if batch.rows.count >= batchSize {
                isStopped = !channel.put(SpentBatch(batch))
                batch = ParsedBatch(segments: segments, now: now)
                spent.releaseAll()
            }
        }

        var sawRow = false
        switch Self.format(forPath: path) {
        case .jsonLines:
            let stream = try ByteStream(path: path)
            var lineNumber = 0
            while !isStopped, let line = try stream.nextLine(maximumLength: maximumLineBytes) {
                lineNumber += 1
                switch line {
                case .tooLong(let n):
                    sawRow = true
                    accept(lineNumber, .failure(RowProblem("line is \(n) bytes, over the \(maximumLineBytes)-byte limit")))
                case .bytes(let bytes):
                    if bytes.allSatisfy({ $0 == 32 || $0 == 9 }) { continue }
                    sawRow = true
                    accept(lineNumber, parseJSONLine(bytes))
                }
            }
        case .csv:
            let reader = CSVReader(stream: try ByteStream(path: path), maximumFieldBytes: maximumValueBytes)
            guard let headerRecord = try reader.nextRecord() else { break }
            let header: [String]
            switch headerRecord.result {
            case .success(let fields): header = fields
            case .failure(let error):
                throw InputError(file: path, message: "line \(headerRecord.line): the header row cannot be read: \(error.message)")
            }
            let columns = header.map { $0.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "\u{FEFF}", with: "") }
            if let duplicate = Dictionary(grouping: columns, by: { $0 }).first(where: { $0.value.count > 1 })?.key {
                throw InputError(file: path, message: "line \(headerRecord.line): column '\(duplicate)' appears twice in the header")
            }
            while !isStopped, let record = try reader.nextRecord() {
                sawRow = true
                switch record.result {
                case .failure(let error): accept(record.line, .failure(RowProblem(error.message)))
                case .success(let fields): accept(record.line, parseCSVRow(fields, columns: columns))
                }
            }
        }
        if !isStopped, !batch.isEmpty { _ = channel.put(SpentBatch(batch)) }
        return sawRow
    }

    /// Why one row was refused.
    struct RowProblem: Error {
        let message: String
        init(_ message: String) { self.message = message }
    }

    func parseJSONLine(_ bytes: [UInt8]) -> Result<ProfileUpsert, RowProblem> {
        if let row = bytes.withUnsafeBufferPointer(quickParse) { return .success(row) }
        return parseJSONLineWithFoundation(bytes)
    }

    /// The row of a well-formed flat line, read by `FlatJSONReader`; nil leaves the line (good or bad) to Foundation.
    func quickParse(_ bytes: UnsafeBufferPointer<UInt8>) -> ProfileUpsert? {
        guard let members = FlatJSONReader.members(of: bytes, maximumStringBytes: maximumValueBytes) else { return nil }
        var id: String?
        var properties: [String: [PropertyValue]] = Dictionary(minimumCapacity: members.count)
        func value(_ scalar: FlatJSONReader.Scalar) -> PropertyValue? {
            switch scalar {
            case .string(let s): return s.isEmpty ? nil : PropertyValue.inferred(fromText: s)
            case .number(let n): return .number(n)
            case .bool(let b): return .string(b ? "true" : "false")
            case .null: return nil
            }
        }
        for (key, raw) in members {
            if key == "id" {
                switch raw {
                case .scalar(.string(let s)) where !s.isEmpty: id = s
                case .scalar(.null): break
                default: return nil  // numeric ids and bad ids: Foundation's path words them
                }
                continue
            }
            if key.isEmpty { return nil }
            var values: [PropertyValue] = []
            switch raw {
            case .scalar(let scalar):
                if let v = value(scalar) { values.append(v) }
            case .list(let items):
                values.reserveCapacity(items.count)
                for item in items { if let v = value(item) { values.append(v) } }
            }
            if !values.isEmpty { properties[key] = values }
        }
        return ProfileUpsert(id: id, properties: properties)
    }

    /// The reference reading of a line, and the one that explains why a line is refused.
    func parseJSONLineWithFoundation(_ bytes: [UInt8]) -> Result<ProfileUpsert, RowProblem> {
        guard String(validating: bytes, as: UTF8.self) != nil else { return .failure(RowProblem("the line is not valid UTF-8")) }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
        } catch {
            return .failure(RowProblem("not valid JSON"))
        }
        guard let dict = object as? [String: Any] else {
            return .failure(RowProblem("a line must be a JSON object like {\"id\": \"p1\", \"email\": \"a@x.com\"}"))
        }
        var id: String?
        var properties: [String: [PropertyValue]] = [:]
        for (key, raw) in dict {
            if key == "id" {
                if let s = raw as? String, !s.isEmpty { id = s } else if let n = raw as? NSNumber, String(cString: n.objCType) != "c" {
                    id = n.stringValue
                } else if !(raw is NSNull) {
                    return .failure(RowProblem("\"id\" must be a non-empty string"))
                }
                continue
            }
            guard !key.isEmpty else { return .failure(RowProblem("a property name is empty")) }
            let items: [Any] = (raw as? [Any]) ?? [raw]
            var values: [PropertyValue] = []
            for item in items {
                switch jsonValue(item) {
                case .success(let v?): values.append(v)
                case .success(nil): break
                case .failure(let problem): return .failure(RowProblem("property \"\(key)\": \(problem.message)"))
                }
            }
            if !values.isEmpty { properties[key] = values }
        }
        return .success(ProfileUpsert(id: id, properties: properties))
    }

    private func jsonValue(_ item: Any) -> Result<PropertyValue?, RowProblem> {
        if item is NSNull { return .success(nil) }
        if let s = item as? String {
            guard s.utf8.count <= maximumValueBytes else { return .failure(RowProblem("value is longer than \(maximumValueBytes) bytes")) }
            return .success(s.isEmpty ? nil : PropertyValue.inferred(fromText: s))
        }
        if let n = item as? NSNumber {
            // JSONSerialization gives booleans as NSNumber too; keep them as the words people wrote.
            if String(cString: n.objCType) == "c" { return .success(PropertyValue.string(n.boolValue ? "true" : "false")) }
            return .success(PropertyValue.number(n.doubleValue))
        }
        return .failure(RowProblem("nested objects and lists of lists are not supported; use a flat value or a list of values"))
    }

    func parseCSVRow(_ fields: [String], columns: [String]) -> Result<ProfileUpsert, RowProblem> {
        guard fields.count == columns.count else {
            return .failure(RowProblem("expected \(columns.count) fields (as in the header), found \(fields.count)"))
        }
        var id: String?
        var properties: [String: [PropertyValue]] = [:]
        for (column, cell) in zip(columns, fields) {
            let text = cell.trimmedOfSpaces
            if text.isEmpty || column.isEmpty { continue }
            if column == "id" { id = text; continue }
            properties[column] = text.split(separator: "|").map { part in
                Self.inferredCSVValue(String(part).trimmedOfSpaces)
            }.filter { $0.description != "" }
        }
        return .success(ProfileUpsert(id: id, properties: properties))
    }

    /// A CSV cell's value: a number only when written canonically (so `00123` stays text), a date when ISO 8601.
    static func inferredCSVValue(_ text: String) -> PropertyValue {
        if isCanonicalNumber(text), let n = Double(text) { return .number(n) }
        return PropertyValue.inferred(fromText: text)
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?`: how people write numbers, not codes like `00123`.
    static func isCanonicalNumber(_ text: String) -> Bool {
        var bytes = Substring(text).utf8[...]
        if bytes.first == UInt8(ascii: "-") { bytes = bytes.dropFirst() }
        let isDigit: (UInt8) -> Bool = { $0 >= 48 && $0 <= 57 }
        let integer = bytes.prefix(while: isDigit)
        guard let lead = integer.first, lead != 48 || integer.count == 1 else { return false }
        bytes = bytes.dropFirst(integer.count)
        if bytes.isEmpty { return true }
        guard bytes.first == UInt8(ascii: ".") else { return false }
        let fraction = bytes.dropFirst()
        return !fraction.isEmpty && fraction.allSatisfy(isDigit)
    }
}

/// A value one thread or task hands to another, which then owns it: a box for what is not `Sendable` itself.
///
/// `@unchecked Sendable`: its users touch `value` one at a time, each after the hand-over (a thread start, a
/// dispatch, an awaited transaction).
final class HandedOver<Value>: @unchecked Sendable {
    var value: Value?

    init(_ value: Value?) {
        self.value = value
    }
}

/// Items handed from one thread to another through a queue of at most `capacity`.
///
/// `@unchecked Sendable`: `items`, `end` and `isCancelled` are only touched with `condition` locked.
final class BatchChannel<Item: Sendable>: @unchecked Sendable {
    private let condition = NSCondition()
    private let capacity: Int
    private var items: [Item] = []
    private var end: Result<Bool, any Error>?
    private var isCancelled = false

    init(capacity: Int) {
        self.capacity = capacity
    }

    /// What `next` found: an item, or the producer's result once every item was taken.
    enum Next {
        case item(Item)
        case end(Result<Bool, any Error>)
    }

    /// Queues `item`, waiting while the queue is full; false when the consumer has gone and the producer should stop.
    func put(_ item: Item) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while items.count >= capacity && !isCancelled { condition.wait() }
        guard !isCancelled else { return false }
        items.append(item)
        condition.broadcast()
        return true
    }

    /// Records that the producer is done (or failed); it touches the channel no more.
    func finish(_ result: Result<Bool, any Error>) {
        condition.lock()
        end = result
        condition.broadcast()
        condition.unlock()
    }

    /// The next item, waiting for one; the producer's result after the last.
    func next() -> Next {
        condition.lock()
        defer { condition.unlock() }
        while items.isEmpty && end == nil { condition.wait() }
        guard items.isEmpty else {
            condition.broadcast()
            return .item(items.removeFirst())
        }
        return .end(end!)
    }

    /// Tells the producer to stop and waits until it has, so nothing outlives the consumer.
    func cancelAndWait() {
        condition.lock()
        isCancelled = true
        condition.broadcast()
        while end == nil { condition.wait() }
        condition.unlock()
    }
}
