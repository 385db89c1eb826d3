import Foundation
import GRDB
import Logging

/// Runs a Sailthru import goal: each list's export CSV → linked, merged profiles, applied exactly once.
///
/// ## Exactly once
///
/// `sum` and `add` are not idempotent, so a row must be applied once even when the process is
/// killed mid-list and the run is started again. A re-export cannot be trusted to hold the same
/// rows in the same order (members join, leave and change between two exports), so the
/// checkpoint is tied to one concrete file, not to the list:
///
/// 1. The export is downloaded to `<db>.imports/<connection>/<list>.part`, digested as it downloads (``KeptExportDigest``),
///    and renamed to `<list>.csv`. Only then is an `import_checkpoint` row written
///    (connection, list, file, digest, records_applied = 0, run id). A kill before that row
///    exists leaves at most an orphan file, which the next run deletes and exports afresh:
///    nothing was applied from it.
/// 2. Rows are applied in transactions of `batchSize` records. The same transaction that writes
///    a batch's profiles also advances `records_applied` and saves the run's counters
///    (`RunLedger.update`), so the store never holds a batch without its checkpoint or the
///    other way round: a kill loses either the whole batch or nothing.
/// 3. A run that finds a checkpoint resumes from the kept file after its first
///    `records_applied` records, once the file's digest matches. If the file is gone or changed,
///    ferry cannot know which rows were applied: the run fails saying so and clears the
///    checkpoint, so the following run starts afresh (a person decides).
/// 4. When the file is fully applied, the checkpoint is marked completed, then the file deleted
///    (a kill between the two leaves an orphan file, cleaned as in 1). Completed checkpoints stay
///    until every list of the goal is done, so a run killed in its second list and run again
///    does not import the first list a second time. When the goal ends, its checkpoints go; when
///    it fails (rather than being killed or stopped), only the completed ones go, so the next run
///    imports those lists afresh while a half-applied file is still resumed, never re-applied.
///
/// A dry run downloads to a temporary file and applies each batch inside a transaction that
/// is rolled back, so it counts exactly what a real run would do and writes nothing but the run.
public struct SailthruImportExecutor: GoalExecutor {
    public var goal: SailthruImportGoal
    public var api: any SailthruAPI
    /// Records per transaction (and per checkpoint).
    public var batchSize: Int
    /// Where kept exports live; nil puts them next to the database file (`<db>.imports`).
    public var stateDirectory: URL?

    /// Rows per transaction and checkpoint: 4,000 took 3 % less time than 2,000 on a million rows, for 30 MB more
    /// peak memory (BENCHMARKS.md, 2026-12-03 late).
    public static let defaultBatchSize = 4000

    public init(goal: SailthruImportGoal, api: any SailthruAPI, batchSize: Int = defaultBatchSize, stateDirectory: URL? = nil) {
        self.goal = goal
        self.api = api
        self.batchSize = max(1, batchSize)
        self.stateDirectory = stateDirectory
    }

    public func run(in context: GoalContext) async throws {
        do {
            for list in goal.lists {
                try Task.checkCancellation()
                try await importList(list, context: context)
            }
        } catch {
            // A stopped run (shutdown) resumes like a killed one; a failed run starts its finished lists afresh next time.
            if !context.isDryRun, !(error is CancellationError) {
                try? ImportCheckpoint.clear(connection: context.connection.name, onlyCompleted: true, db: context.database)
            }
            throw error
        }
        if !context.isDryRun {
            try ImportCheckpoint.clear(connection: context.connection.name, onlyCompleted: false, db: context.database)
        }
    }

    // MARK: - One list

    private func importList(_ list: String, context: GoalContext) async throws {
        let connection = context.connection.name
        let checkpoint = context.isDryRun ? nil : try ImportCheckpoint.load(connection: connection, list: list, db: context.database)
        if let checkpoint, checkpoint.isCompleted {
            context.logger.info("list already imported by the interrupted run; not imported again", metadata: [
                "list": "\(list)", "from_run": "\(checkpoint.runID.map(String.init) ?? "?")"])
            return
        }
        // The store's keys are read on a reading connection while Sailthru prepares the export (seconds to hours; the
        // read takes about a second a million profiles), and kept only when the export is large enough to pay for them.
        // Handed over in a box the import empties: a copy left in the task would make the import's first write to the
        // filter copy all of it (16 MB for a million identifiers).
        let filterBuild = Task { [writer = context.database.writer] in HandedOver(try await StoreKeyFilter.build(reading: writer)) }
        defer { filterBuild.cancel() }
        if context.isDryRun {
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-import-\(UUID().uuidString).csv")
            defer { try? FileManager.default.removeItem(at: file) }
            _ = try await api.exportList(list, vars: requestedVars, to: file)
            let filter = try await Self.keyFilter(filterBuild, forExport: file, context: context)
            try await apply(file: file, list: list, skipping: 0, checkpointed: false, filter: filter, context: context)
            return
        }

        let folder = try folder(for: context)
        let base = Self.fileStem(list)
        let keptFile = folder.appendingPathComponent(base + ".csv")
        var skipping = 0
        if let checkpoint {
            let file = URL(fileURLWithPath: checkpoint.file)
            guard FileManager.default.fileExists(atPath: file.path), try KeptExportDigest.matches(file, digest: checkpoint.digest) else {
                try ImportCheckpoint.delete(connection: connection, list: list, db: context.database)
                throw GoalFailure("list \(list): the interrupted import's kept export \(checkpoint.file) is missing or changed, "
                    + "so ferry cannot tell which of its rows were applied (\(checkpoint.recordsApplied) were); "
                    + "the checkpoint was cleared and the next run imports the list afresh")
            }
            context.logger.info("resuming interrupted import", metadata: [
                "list": "\(list)", "records_applied": "\(checkpoint.recordsApplied)", "from_run": "\(checkpoint.runID.map(String.init) ?? "?")"])
            skipping = checkpoint.recordsApplied
            let filter = try await Self.keyFilter(filterBuild, forExport: file, context: context)
            try await apply(file: file, list: list, skipping: skipping, checkpointed: true, filter: filter, context: context)
            try finish(list: list, file: file, context: context)
            return
        }

        // No checkpoint: anything left in the folder for this list was never applied.
        let partial = folder.appendingPathComponent(base + ".part")
        try? FileManager.default.removeItem(at: partial)
        try? FileManager.default.removeItem(at: keptFile)
        // Digested as it downloads: reading 150 MB again took 0.1-0.3 s before the first batch could start.
        let digesting = SHA256Stream()
        _ = try await api.exportList(list, vars: requestedVars, to: partial, observer: digesting)
        let digest = try digesting.digest(of: partial)
        try FileManager.default.moveItem(at: partial, to: keptFile)
        let filter = try await Self.keyFilter(filterBuild, forExport: keptFile, context: context)
        let (runID, now) = (context.recorder.runID, context.now)
        try await context.database.writer.write { db in
            if let current = filter.value, try !current.isCurrent(db) { filter.value = nil }
            try ImportCheckpoint.begin(connection: connection, list: list, file: keptFile.path, digest: digest, runID: runID, at: now, db: db)
            try filter.value?.stamp(db)  // the checkpoint holds no id or identifier: the filter still holds every key of the store
        }
        try await apply(file: keptFile, list: list, skipping: 0, checkpointed: true, filter: filter, context: context)
        try finish(list: list, file: keptFile, context: context)
    }

    /// Sailthru's built-in export columns (research notes §4.4), folded; every other configured column is a var.
    static let standardColumns: Set<String> = Set([
        "profile_id", "email", "email_hash", "domain", "engagement", "lists", "profile_created_date", "signup", "opens", "clicks",
        "pageviews", "last_open", "last_click", "last_pageview", "optout_time", "list_signup", "geolocation_city",
        "geolocation_state", "geolocation_country", "geolocation_zip", "lifetime_message", "first_purchase_time",
        "purchase_count", "purchase_price", "purchase_incomplete", "last_purchase_time", "largest_purchase_item_price",
        "top_device", "email_status",
    ].map(CSVReader.foldedName))

    /// The vars to ask the export for: Sailthru writes a var's column only for vars some member has,
    /// unless asked, and a smart list's members may lack a var the goal matches on.
    var requestedVars: [String] {
        var seen = Set<String>()
        return (goal.match.map(\.column) + goal.fields.map(\.from)).filter {
            let folded = CSVReader.foldedName($0)
            return !Self.standardColumns.contains(folded) && seen.insert(folded).inserted
        }
    }

    private func finish(list: String, file: URL, context: GoalContext) throws {
        try ImportCheckpoint.complete(connection: context.connection.name, list: list, db: context.database)
        try? FileManager.default.removeItem(at: file)
    }

    /// `<db>.imports/<connection>/`, or a temporary folder for an in-memory store.
    private func folder(for context: GoalContext) throws -> URL {
        let root: URL
        if let stateDirectory {
            root = stateDirectory
        } else {
            let path = context.database.writer.path
            if path.isEmpty || path == ":memory:" || path.hasPrefix("file:") {
                root = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-imports")
            } else {
                root = URL(fileURLWithPath: path + ".imports")
            }
        }
        let folder = root.appendingPathComponent(Self.fileStem(context.connection.name))
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    /// A file-name-safe, collision-free stem for a list name (`VIP Customers` → `VIP_Customers-<md5 prefix>`).
    static func fileStem(_ name: String) -> String {
        let safe = String(name.unicodeScalars.map { CharacterSet.alphanumerics.contains($0) && $0.isASCII ? Character($0) : "_" })
        return safe.prefix(60) + "-" + MD5.hex(name).prefix(8)
    }

    // MARK: - Applying a file

    /// The key filter `build` reads, when an export the size of `file` pays for it (``ProfileStore/keyFilterPays(storedPK:rows:)``);
    /// otherwise nil, and the build is stopped.
    private static func keyFilter(_ build: Task<HandedOver<StoreKeyFilter>, any Error>, forExport file: URL,
                                  context: GoalContext) async throws -> HandedOver<StoreKeyFilter> {
        // A Sailthru export line is some tens of bytes to a couple of hundred; the estimate only decides whether
        // the store's keys pay.
        let rows = ProfileStore.estimatedRows(inFile: file.path, bytesPerRow: 100)
        guard ProfileStore.keyFilterPays(storedPK: try await context.database.writer.read(ProfileStore.largestPK), rows: rows) else {
            build.cancel()
            return HandedOver(nil)
        }
        return try await build.value
    }

    /// Applies `file`'s records after the first `skipping`; `filter` is the import's to take (``keyFilter(_:forExport:context:)``).
    private func apply(file: URL, list: String, skipping: Int, checkpointed: Bool, filter: HandedOver<StoreKeyFilter>,
                       context: GoalContext) async throws {
        let reader: CSVReader
        do { reader = try CSVReader(path: file.path) } catch { throw GoalFailure("list \(list): \(error.message)") }
        var header = try readHeader(reader, list: list, logger: context.logger)
        header.keys = ImportProfiles.keys(goal: goal, segments: context.segments)
        (header.segments, header.now) = (context.segments, context.now)
        if !context.segments.contains(where: { $0.rule?.dependsOnClock ?? false }) {
            header.membershipInputs = SegmentDefinition.membershipInputs(of: context.segments)
        }
        let plan = header
        // Only the matched and merged columns are read as text; the others are still checked (size, UTF-8).
        var used = [Bool](repeating: false, count: plan.width)
        for (_, index) in plan.match { used[index] = true }
        for (_, index) in plan.fields { used[index] = true }
        reader.usedColumns = used

        // Reading, parsing and reading the cells run on their own thread, up to two batches ahead of
        // the transactions: on two cores the import then takes about as long as the slower half.
        // The batches, their order and what each transaction writes are exactly as without it.
        let channel = BatchChannel<ReadBatch>(capacity: 2)
        let handOver = HandedOver(reader)  // only the reading thread uses it from then on
        let readingThread = Thread { [self] in
            channel.finish(Result { try self.read(handOver.value!, plan: plan, skipping: skipping, into: channel) })
        }
        readingThread.start()
        let outcome: (skipped: Int, firstSkipped: Int?)
        do {
            // A dry run rolls every batch back: it writes no log to checkpoint.
            outcome = checkpointed
                ? try await BackgroundCheckpointer.whileImporting(into: context.database) { checkpointer in
                    try await commitBatches(from: channel, plan: plan, list: list, checkpointed: true, filter: filter,
                                            checkpointer: checkpointer, context: context)
                }
                : try await commitBatches(from: channel, plan: plan, list: list, checkpointed: false, filter: filter,
                                          checkpointer: nil, context: context)
        } catch {
            // The reading thread stops within a record or two; nothing of it outlives the list.
            await Self.stop(channel)
            throw error
        }
        if outcome.skipped > 0 {
            // One note per list, not per row: skips can be most of a list and must not crowd out real row errors.
            let columns = goal.match.map(\.column).joined(separator: ", ")
            let reason = "\(outcome.skipped) row\(outcome.skipped == 1 ? "" : "s") skipped (first at line \(outcome.firstSkipped ?? 0)): "
                + "no profile matches \(columns) and create_profiles is off"
            await context.recorder.noteSkipped(RunRowError(location: "list \(list)", reason: reason))
            context.logger.info("rows skipped", metadata: ["list": "\(list)", "reason": "\(reason)"])
        }
    }

    /// Commits the reading thread's batches in order until it has read the whole file; the rows skipped for no match.
    ///
    /// Each batch is worked out on another thread (its plan: ``ImportPlan``) while the batch before it is written, so
    /// the transactions' thread, which otherwise spent more than half its time merging rows, only reads and writes.
    /// The owners and ids a plan needs are read on the writer at the end of the transaction two batches before, and
    /// the plan starts as that transaction commits, so it has the whole of the next transaction to be made in (the
    /// second batch, with no transaction two before it, is read for at the start of the first). The plan sees the
    /// store as it was before the batch in between wrote, so it is used only when that batch wrote nothing it read and
    /// no one else wrote before either batch began (``WriterStamp``); otherwise the batch is worked out again on the
    /// writer. A dry run rolls every batch back, so it works each out on the writer. `checkpointer`, when given, is
    /// told of each committed batch (``BackgroundCheckpointer/whileImporting(into:_:)``).
    private func commitBatches(from channel: BatchChannel<ReadBatch>, plan: ColumnPlan, list: String, checkpointed: Bool,
                               filter: HandedOver<StoreKeyFilter>, checkpointer: BackgroundCheckpointer?,
                               context: GoalContext) async throws -> (skipped: Int, firstSkipped: Int?) {
        var skippedNoMatch = 0
        var firstSkipped: Int?
        var (batches, plannedAhead) = (0, 0)
        let carried = HandedOver<CarriedWrites>(nil)
        // Plans under way, by the batch's last record index.
        var plans: [Int: Task<ImportPlan?, Never>] = [:]
        defer { for task in plans.values { task.cancel() } }
        let planning = checkpointed && Self.plansAhead
        var current = await Self.next(from: channel)
        var upcoming = await Self.next(after: current, from: channel)
        while case .item(let batch) = current {
            let later = await Self.next(after: upcoming, from: channel)
            let ahead = HandedOver(await plans.removeValue(forKey: batch.through)?.value ?? nil)
            var following: ReadBatch?
            var afterFollowing: ReadBatch?
            if planning, case .item(let next) = upcoming {
                if plans[next.through] == nil { following = next }
                if case .item(let after) = later { afterFollowing = after }
            }
            let startedNow = HandedOver<Task<ImportPlan?, Never>>(nil)
            defer { startedNow.value?.cancel() }  // left only when the transaction failed
            let readForLater = HandedOver<ImportLookups>(nil)
            let committed = try await commit(batch, plan: plan, list: list, checkpointed: checkpointed, filter: filter,
                                             ahead: ahead, following: following, planning: startedNow, afterFollowing: afterFollowing,
                                             readAhead: readForLater, carried: carried, context: context)
            if let following, let task = startedNow.value.take() { plans[following.through] = task }
            if let afterFollowing, let known = readForLater.value.take() {
                // Committed: the plan's own reads now see at least what this transaction wrote.
                plans[afterFollowing.through] = startPlan(afterFollowing, known: known, readAsTheBatchBeforeLastEnded: true, plan: plan,
                                                          list: list, context: context)
            }
            checkpointer?.committed(rows: batch.records.count)
            skippedNoMatch += committed.skipped
            firstSkipped = firstSkipped ?? committed.firstSkippedLine
            (batches, plannedAhead) = (batches + 1, plannedAhead + (committed.plannedAhead ? 1 : 0))
            if batch.records.count >= batchSize { try Task.checkCancellation() }
            (current, upcoming) = (upcoming, later)
        }
        // How many plans held says whether the second core helped (a list repeating members batch after batch, or
        // another process writing, makes the writer work batches out again).
        context.logger.debug("list applied", metadata: ["list": "\(list)", "batches": "\(batches)", "planned_ahead": "\(plannedAhead)"])
        guard case .end(let result) = current else { return (skippedNoMatch, firstSkipped) }
        do { _ = try result.get() } catch let error as InputError { throw GoalFailure("list \(list): \(error.message)") }
        return (skippedNoMatch, firstSkipped)
    }

    /// The batch after `previous`: the channel's next one, or `previous` again once the channel has ended.
    private static func next(after previous: BatchChannel<ReadBatch>.Next, from channel: BatchChannel<ReadBatch>) async
        -> BatchChannel<ReadBatch>.Next {
        guard case .item = previous else { return previous }
        return await next(from: channel)
    }

    /// Whether batches are planned ahead: only a second core makes it pay.
    static var plansAhead: Bool { ProcessInfo.processInfo.activeProcessorCount > 1 }

    /// Works `batch` out from `known` (owners and ids read for it on the writer: at the start of the transaction before
    /// it, or, `readAsTheBatchBeforeLastEnded`, at the end of the one before that) and the owners' profiles, read on a
    /// reading connection once what `known` was read from is committed. The rows are then merged with no transaction
    /// open, which would keep the writer's checkpoints from finishing and its log from starting over. A profile read
    /// there may already hold what the transaction before wrote: that plan is then refused like any other that read
    /// what that batch wrote. A plan that cannot be made (a row changes or sets identifiers, a read fails) is only not
    /// used: the writer works the batch out itself, and a real error surfaces there.
    private func startPlan(_ batch: ReadBatch, known: ImportLookups, readAsTheBatchBeforeLastEnded: Bool = false, plan: ColumnPlan,
                           list: String, context: GoalContext) -> Task<ImportPlan?, Never> {
        let writer = context.database.writer
        let now = context.now
        let known = HandedOver(known)
        return Task {
            do {
                try await writer.read { db in try known.value?.readProfiles(keys: plan.keys, db: db) }
            } catch {
                return nil
            }
            // On a dispatch thread: merging a batch takes milliseconds, which would hold up one of the two threads that
            // run the import's own tasks.
            return await withCheckedContinuation { continuation in
                DispatchQueue.global().async {
                    var store = ImportProfiles(db: nil, now: now, keys: plan.keys, known: known.value.take() ?? ImportLookups(), planning: true)
                    let rows = try? self.applyRows(of: batch, plan: plan, list: list, store: &store)
                    continuation.resume(returning: rows.map {
                        store.finishPlan(result: $0.result, changed: $0.changed, exchanged: $0.exchanged,
                                         readAsTheBatchBeforeLastEnded: readAsTheBatchBeforeLastEnded)
                    })
                }
            }
        }
    }

    /// What one committed batch leaves for the next: what it wrote, and the writer's stamp as it committed.
    struct CarriedWrites: Sendable {
        var wrote: WrittenKeys
        var committed: WriterStamp
        /// Whether nobody wrote between the commit of the batch before and this batch's start: then this batch began
        /// on the store that batch's transaction ended with.
        var beganAsTheBatchBeforeEnded: Bool
    }

    /// Tells the reading thread to stop and waits for it on a dispatch thread (a blocking wait, kept off the cooperative pool).
    private static func stop(_ channel: BatchChannel<ReadBatch>) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                channel.cancelAndWait()
                continuation.resume()
            }
        }
    }

    /// The channel's next batch, waited for on a dispatch thread: the reading thread is not one of
    /// Swift's cooperative threads, and blocking one of those (two on two cores) could stall other tasks.
    private static func next(from channel: BatchChannel<ReadBatch>) async -> BatchChannel<ReadBatch>.Next {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: channel.next()) }
        }
    }

    /// A batch of records as the reading thread hands it over, with what can be read from them
    /// before any profile is seen.
    struct ReadBatch: Sendable {
        var records: [CSVRecord] = []
        /// Each record's identifiers as the `identifier` table keys them (``identifiers(of:plan:)``).
        var keys: [[IdentifierKey]] = []
        /// Each record's merged cells, in `plan.fields` order (empty for a record that is not well formed).
        var cells: [[ImportMerge.Incoming]] = []
        /// The index of the batch's last record in the file (the checkpoint's `records_applied`).
        var through = 0
    }

    /// Reads the records after the header into batches of `batchSize`, skipping the first `skipping`
    /// (already applied). A read error ends the reading: the full batches before it are handed over and
    /// committed, the unfinished one is not. Always true (the channel's end carries a Bool).
    private func read(_ reader: CSVReader, plan: ColumnPlan, skipping: Int, into channel: BatchChannel<ReadBatch>) throws -> Bool {
        var recordIndex = 0
        var batch = ReadBatch()
        while let record = try reader.nextRecord() {
            recordIndex += 1
            if recordIndex <= skipping { continue }
            batch.records.append(record)
            batch.keys.append(identifiers(of: record, plan: plan))
            if case .success(let cells) = record.result, cells.count == plan.width {
                batch.cells.append(ImportMerge.incoming(cells, merges: plan.merges))
            } else {
                batch.cells.append([])
            }
            if batch.records.count >= batchSize {
                batch.through = recordIndex
                guard channel.put(batch) else { return true }
                batch = ReadBatch()
            }
        }
        if !batch.records.isEmpty {
            batch.through = recordIndex
            _ = channel.put(batch)
        }
        return true
    }

    /// Where each configured column sits in this export.
    struct ColumnPlan: Sendable {
        var width: Int
        var match: [(link: IdentifierLink, index: Int)]
        var fields: [(field: ImportField, index: Int)]
        /// Each field's mode and column, in `fields` order.
        var merges: [(mode: MergeMode, column: Int)] = []
        /// The properties the import decodes (``ImportProfiles/keys(goal:segments:)``), worked out once per list.
        var keys: PropertyKeys = []
        /// The properties segment membership follows, when it follows nothing else (nil when a segment reads the clock).
        var membershipInputs: Set<String>? = nil {
            didSet { fieldsFeedMembership = fields.map { feedsMembership($0.field.to) } }
        }
        /// For each of `fields`, whether its property is one of `membershipInputs` (worked out once, not hashed each row).
        private(set) var fieldsFeedMembership: [Bool] = []
        /// The segments a new profile's membership is worked out for where it is created (on a plan's thread rather
        /// than the writer's), and the run's instant their rules are evaluated at.
        var segments: [SegmentDefinition] = []
        var now = Date(timeIntervalSince1970: 0)

        init(width: Int, match: [(link: IdentifierLink, index: Int)], fields: [(field: ImportField, index: Int)],
             merges: [(mode: MergeMode, column: Int)] = []) {
            (self.width, self.match, self.fields, self.merges) = (width, match, fields, merges)
            fieldsFeedMembership = fields.map { _ in true }
        }

        /// Whether writing `property` can change a profile's segments (always, when a segment reads the clock).
        func feedsMembership(_ property: String) -> Bool { membershipInputs?.contains(property) ?? true }

        /// ``ProfileBatchWriter/Touched/membershipIfNew`` of a profile just created as `profile`: nil past 64 segments.
        func membership(ofNew profile: Profile) -> UInt64? {
            guard segments.count <= 64 else { return nil }
            let explicit = profile[Profile.segmentsProperty]
            var bits: UInt64 = 0
            for (index, segment) in segments.enumerated() where segment.contains(profile, explicit: explicit, now: now) {
                bits |= 1 << UInt64(index)
            }
            return bits
        }
    }

    private func readHeader(_ reader: CSVReader, list: String, logger: Logger) throws -> ColumnPlan {
        let first: CSVRecord?
        do { first = try reader.nextRecord() } catch { throw GoalFailure("list \(list): \(error.message)") }
        guard let first else { throw GoalFailure("list \(list): the export is empty (no header row)") }
        let header: [String]
        switch first.result {
        case .success(let fields): header = fields
        case .failure(let error): throw GoalFailure("list \(list): the export's header row cannot be read: \(error.message)")
        }
        var index: [String: Int] = [:]
        for (i, name) in header.enumerated() where index[CSVReader.foldedName(name)] == nil {
            index[CSVReader.foldedName(name)] = i
        }
        var match: [(IdentifierLink, Int)] = []
        for link in goal.match {
            guard let i = index[CSVReader.foldedName(link.column)] else {
                throw GoalFailure("list \(list): the export has no column '\(link.column)' to match profiles on; "
                    + "its columns are: \(header.joined(separator: ", "))")
            }
            match.append((link, i))
        }
        var fields: [(ImportField, Int)] = []
        for field in goal.fields {
            if let i = index[CSVReader.foldedName(field.from)] {
                fields.append((field, i))
            } else {
                // Sailthru exports a var's column only when some member has the var: no column = all cells empty.
                logger.warning("export has no column for field; nothing to merge", metadata: ["list": "\(list)", "column": "\(field.from)"])
            }
        }
        return ColumnPlan(width: header.count, match: match, fields: fields, merges: fields.map { ($0.mode, $1) })
    }

    /// What one batch did, gathered inside its transaction and handed to the recorder after commit.
    struct BatchResult: Sendable {
        var counts = RunCounts()
        var rowErrors: [RunRowError] = []
        var touched: [TouchedProfile] = []
        var skippedNoMatch = 0
        var firstSkippedLine: Int?
    }

    /// Applies one batch in one transaction with its checkpoint and run progress; returns the rows skipped for no match,
    /// and whether the batch's plan held. `ahead` holds the batch's plan (or nothing), `carried` what the previous batch
    /// left; the transaction empties both and leaves its own in `carried`. With `following`, it starts that batch's plan
    /// in `planning`; with `afterFollowing`, it reads the owners and ids that batch needs, last, into `readAhead`.
    private func commit(_ batch: ReadBatch, plan: ColumnPlan, list: String, checkpointed: Bool, filter: HandedOver<StoreKeyFilter>,
                        ahead: HandedOver<ImportPlan>, following: ReadBatch?, planning: HandedOver<Task<ImportPlan?, Never>>,
                        afterFollowing: ReadBatch?, readAhead: HandedOver<ImportLookups>, carried: HandedOver<CarriedWrites>,
                        context: GoalContext) async throws -> (skipped: Int, firstSkippedLine: Int?, plannedAhead: Bool) {
        let recordIndex = batch.through
        let recorder = context.recorder
        let (baseCounts, baseErrors, baseTouched) = await recorder.progress
        let connection = context.connection.name
        let now = context.now
        let runID = recorder.runID
        let keys = plan.keys
        let body: @Sendable (Database) throws -> (BatchResult, plannedAhead: Bool) = { db in
            let began = try WriterStamp(db)
            let previous = carried.value.take()
            var store = ImportProfiles(db: db, now: now, keys: keys, filter: filter.value.take())
            var held: ImportPlan?
            if let planned = ahead.value, let before = previous, before.committed == began, !planned.conflicts(with: before.wrote),
               before.beganAsTheBatchBeforeEnded || !planned.readAsTheBatchBeforeLastEnded {
                held = ahead.value.take()  // nobody else wrote since the plan's reads, and the batch before wrote nothing it read
            } else if ahead.value != nil {
                ImportProfiles.release(ahead)
            }
            if held == nil {
                // Each row's identifiers, read once; their owners and profiles come in a few queries for the whole batch.
                try store.prefetch(rows: batch.keys, createProfiles: self.goal.createProfiles, at: began)
            } else {
                try store.checkFilter(at: began)
            }
            // Reads for a plan ahead are optional: one that fails only leaves that batch to be worked out on the writer,
            // where a real error surfaces; it must not fail this batch.
            if let following, let known = try? store.prefetchAhead(rows: following.keys, createProfiles: self.goal.createProfiles) {
                // Read before this batch writes: the plan sees the store as the batch before left it.
                planning.value = self.startPlan(following, known: known, plan: plan, list: list, context: context)
            }
            // `changed` in row key order, as memberships are written.
            var rows: (result: BatchResult, changed: [ProfileBatchWriter.Touched], exchanged: [Int64])
            if var planned = held.take() {
                let shift = try store.replay(planned)
                // Shifted in place (the plan is taken out of `held` to be the only holder), and still in row key order.
                for index in planned.changed.indices { planned.changed[index].pk = planned.shifted(planned.changed[index].pk, by: shift) }
                rows = (planned.result, planned.changed, planned.exchanged.map { planned.shifted($0, by: shift) })
                held = planned
            } else {
                let applied = try self.applyRows(of: batch, plan: plan, list: list, store: &store)
                rows = (applied.result, applied.changed.values.sorted { $0.pk < $1.pk }, applied.exchanged)
            }
            let plannedAhead = held != nil
            try store.flush()
            guard checkpointed else {
                filter.value = try store.finish()
                return (rows.result, plannedAhead)
            }
            // The profiles hold only the properties segments read (ImportProfiles.keys): a rule reads no others.
            try ProfileStore.refreshMembership(of: rows.changed, segments: context.segments, db: db, now: now,
                                               prepared: nil)
            try DataExchange.record(connection: connection, profiles: rows.exchanged, at: now, db: db)
            try RunLedger.update(runID: runID, counts: baseCounts.adding(rows.result.counts), rowErrors: baseErrors + rows.result.rowErrors,
                                 touched: Array((baseTouched + rows.result.touched).suffix(RunLedger.touchedKept)), db: db)
            try ImportCheckpoint.advance(connection: connection, list: list, recordsApplied: recordIndex, runID: runID, at: now, db: db)
            // Last: the filter's stamp, and the one the next batch checks, cover everything this transaction wrote.
            let committed = try WriterStamp(db)
            let wrote = store.wrote
            filter.value = try store.finish(at: committed)
            carried.value = CarriedWrites(wrote: wrote, committed: committed, beganAsTheBatchBeforeEnded: previous?.committed == began)
            if let afterFollowing {
                // Read after every write, so the plan sees the store as this transaction ends, which is the one the next
                // batch begins on when nobody writes in between.
                readAhead.value = try? ImportLookups.ahead(rows: afterFollowing.keys, createProfiles: self.goal.createProfiles, keys: keys,
                                                           filter: filter.value, db: db)
            }
            let result = rows.result
            let spent = HandedOver((held.take(), rows))
            rows = (BatchResult(), [], [])  // `spent` holds the only copy
            ImportProfiles.release(spent)
            return (result, plannedAhead)
        }
        // Every identifier, membership and data exchange row the batch writes names a profile this transaction created
        // or read (a plan's reads are trusted only when nobody wrote since), so the foreign keys' lookup of each one's
        // profile, on the thread every batch waits for, is left out (``Database/withoutForeignKeyChecks(_:)``).
        let (result, plannedAhead) = try await context.database.writer.writeWithoutTransaction { db in
            try db.withoutForeignKeyChecks {
                var captured = (BatchResult(), plannedAhead: false)
                try db.inTransaction {
                    captured = try body(db)
                    return checkpointed ? .commit : .rollback  // a dry run does the same work and rolls it back
                }
                return captured
            }
        }
        await recorder.add(result.counts, failures: result.rowErrors, touched: result.touched)
        await context.progress.progress(label: "import \(list)", done: recordIndex, total: nil)
        return (result.skippedNoMatch, result.firstSkippedLine, plannedAhead)
    }

    /// Works out every row of `batch` through `store`, which writes them or, planning, notes them down.
    private func applyRows(of batch: ReadBatch, plan: ColumnPlan, list: String, store: inout ImportProfiles) throws
        -> (result: BatchResult, changed: [Int64: ProfileBatchWriter.Touched], exchanged: [Int64]) {
        var result = BatchResult()
        var changed: [Int64: ProfileBatchWriter.Touched] = [:]
        var exchanged: [Int64] = []
        exchanged.reserveCapacity(batch.records.count)
        for index in batch.records.indices {
            try apply(batch.records[index], identifiers: batch.keys[index], cells: batch.cells[index], plan: plan,
                      list: list, store: &store, result: &result, changed: &changed, exchanged: &exchanged)
        }
        result.touched = Array(result.touched.suffix(RunLedger.touchedKept))
        return (result, changed, exchanged)
    }

    // MARK: - One row

    /// A well-formed row's identifiers in match order, normalized, without repeats (empty for a bad row).
    private func identifiers(of record: CSVRecord, plan: ColumnPlan) -> [IdentifierKey] {
        guard case .success(let cells) = record.result, cells.count == plan.width else { return [] }
        var identifiers: [IdentifierKey] = []
        for (link, index) in plan.match {
            let key = IdentifierKey(property: link.property, value: Identifiers.normalized(cells[index], property: link.property))
            if !key.value.isEmpty, !identifiers.contains(key) { identifiers.append(key) }
        }
        return identifiers
    }

    private func apply(_ record: CSVRecord, identifiers: [IdentifierKey], cells incoming: [ImportMerge.Incoming],
                       plan: ColumnPlan, list: String,
                       store: inout ImportProfiles, result: inout BatchResult,
                       changed: inout [Int64: ProfileBatchWriter.Touched], exchanged: inout [Int64]) throws {
        result.counts.read += 1
        func fail(_ reason: String) {
            result.counts.failed += 1
            result.rowErrors.append(RunRowError(location: "list \(list) line \(record.line)", reason: reason))
        }
        let cells: [String]
        switch record.result {
        case .failure(let error): return fail(error.message)
        case .success(let fields): cells = fields
        }
        guard cells.count == plan.width else {
            return fail("the row has \(cells.count) fields, the header has \(plan.width)")
        }

        // Link: identifiers in match order; the first that finds a profile links it.
        guard let first = identifiers.first else {
            return fail("no value in the match column\(plan.match.count == 1 ? "" : "s") \(plan.match.map(\.link.column).joined(separator: ", "))")
        }
        // The first owner found, and the first after it that is another profile (no array of owners for every row).
        var linked: (property: String, value: String, pk: Int64)?
        var other: (property: String, value: String, pk: Int64)?
        for key in identifiers {
            guard let pk = try store.owner(of: key) else { continue }
            if let linked {
                if other == nil, pk != linked.pk { other = (key.property, key.value, pk) }
            } else {
                linked = (key.property, key.value, pk)
            }
        }
        if let linked, let other {
            let a = try store.profile(pk: linked.pk)?.profile.id ?? "?"
            let b = try store.profile(pk: other.pk)?.profile.id ?? "?"
            return fail("\(linked.property) '\(linked.value)' is profile \(a) but \(other.property) '\(other.value)' is profile \(b); not merged")
        }

        let stored = try linked.flatMap { try store.profile(pk: $0.pk) }
        if stored == nil {
            guard goal.createProfiles else {
                result.counts.skipped += 1
                result.skippedNoMatch += 1
                result.firstSkippedLine = result.firstSkippedLine ?? record.line
                return
            }
            if try store.idExists(first.value) {
                return fail("no profile has \(first.property) '\(first.value)', but the id '\(first.value)' made from it is another profile's id")
            }
        }
        // Only the properties in `store.keys`: the merge reads and writes no others.
        // A new profile's properties sized for what the row sets: grown one entry at a time they were rehashed thrice.
        let old = stored?.profile ?? Profile(id: first.value, properties: Dictionary(minimumCapacity: identifiers.count + plan.fields.count + 1))
        var profile = old
        // The properties this row changes, each once with its new values, so that nothing compares whole profiles or
        // looks the values up again to find them; and whether one of them is an input of segment membership.
        var changes: [(key: String, values: [PropertyValue])] = []
        changes.reserveCapacity(identifiers.count + plan.fields.count + 1)  // grown from empty it was three allocations
        var writtenTwice = false
        var changesInputs = false
        func write(_ values: [PropertyValue], to property: String, isInput: Bool) {
            profile[property] = values
            changesInputs = changesInputs || isInput
            if let index = changes.firstIndex(where: { $0.key == property }) {
                writtenTwice = true
                changes[index].values = values
            } else {
                changes.append((property, values))
            }
        }
        for key in identifiers where !key.isHeld(in: profile[key.property]) {
            write(profile[key.property] + [.string(key.value)], to: key.property, isInput: plan.feedsMembership(key.property))
        }
        for (((field, _), cell), isInput) in zip(zip(plan.fields, incoming), plan.fieldsFeedMembership) {
            let current = profile[field.to]
            switch ImportMerge.merge(current, cell) {
            case .success(let values):
                // Only a change is written back: the first write copies the profile's properties, and each hashes the name.
                if values != current { write(values, to: field.to, isInput: isInput) }
            case .failure(let error): return fail("\(field.from) → \(field.to) (\(field.mode.rawValue)): \(error.message)")
            }
        }
        if let property = goal.listNameProperty {
            let current = profile[property]
            let values = ImportMerge.appending([.string(list)], to: current)
            if values != current { write(values, to: property, isInput: plan.feedsMembership(property)) }
        }
        if writtenTwice {
            // Two fields into one property: the second may put back what the first changed.
            changes.removeAll { profile[$0.key] == old[$0.key] }
            changesInputs = changes.contains { plan.feedsMembership($0.key) }
        }

        let linkedBy = linked?.value ?? first.value
        if let stored {
            exchanged.append(stored.pk)
            if !changes.isEmpty {
                try store.update(stored, to: profile, changes: changes)
                // Membership follows its inputs alone (when no segment reads the clock). Unchanged inputs leave it as
                // current as it was: kept up to date by every write with these definitions, or due for the full
                // refresh that changed definitions already call for. Half a million updates of non-inputs then read
                // and compare no memberships.
                if changesInputs || changed[stored.pk] != nil {
                    // Created earlier in this batch: still new, with no stored memberships to read back.
                    changed[stored.pk] = ProfileBatchWriter.Touched(pk: stored.pk, profile: profile,
                                                                    isNew: changed[stored.pk]?.isNew ?? false, row: 0)
                }
                result.counts.updated += 1
                result.touched.append(TouchedProfile(profileID: profile.id, identifier: linkedBy, action: "updated"))
            } else {
                result.counts.unchanged += 1
                result.touched.append(TouchedProfile(profileID: profile.id, identifier: linkedBy, action: "unchanged"))
            }
        } else {
            switch try store.create(profile) {
            case .success(let pk):
                exchanged.append(pk)
                changed[pk] = ProfileBatchWriter.Touched(pk: pk, profile: profile, isNew: true, row: 0,
                                                         membershipIfNew: plan.membership(ofNew: profile))
                result.counts.created += 1
                result.touched.append(TouchedProfile(profileID: profile.id, identifier: linkedBy, action: "created"))
            case .failure(let error):
                return fail(error.message)
            }
        }
        if result.touched.count > 2 * RunLedger.touchedKept { result.touched.removeFirst(result.touched.count - RunLedger.touchedKept) }
    }
}

extension RunCounts {
    /// The sum of two tallies (`failed` only when asked: the recorder counts failures through `fail`).
    func adding(_ other: RunCounts, includingFailed: Bool = true) -> RunCounts {
        var c = self
        c.read += other.read
        c.created += other.created
        c.updated += other.updated
        c.unchanged += other.unchanged
        c.exported += other.exported
        c.removed += other.removed
        c.skipped += other.skipped
        if includingFailed { c.failed += other.failed }
        return c
    }
}
