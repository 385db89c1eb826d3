import Foundation
import GRDB

/// Segment → Mapp CSV files on an SFTP drop, add-only: every run writes all current members.
///
/// Members are read from the store a page at a time and streamed straight into the upload, so neither
/// the file nor the segment is ever whole in memory or on local disk. Each file goes up as `NAME.csv.part`;
/// only when every part is uploaded and its remote size checked are they renamed to their `.csv` names,
/// so a failed run leaves no file matching `*.csv` (Mapp's pickup pattern) behind.
public struct MappExport: GoalExecutor {
    public var goal: MappExportGoal
    public var destination: MappDestination
    public var connector: any RemoteFileStoreConnector
    /// Files are split before reaching this many bytes (Mapp's documented limit is 50 MB).
    public var maximumFileBytes: Int
    /// How many members are read from the store at a time.
    public var pageSize = 2000

    public init(goal: MappExportGoal, destination: MappDestination, connector: any RemoteFileStoreConnector,
                maximumFileBytes: Int = 50_000_000) {
        self.goal = goal
        self.destination = destination
        self.connector = connector
        self.maximumFileBytes = maximumFileBytes
    }

    /// `{file_prefix}-{segment}-{yyyyMMdd'T'HHmmss'Z'}`, and `-partN` from the second file on.
    public static func fileName(prefix: String, segment: String, at instant: Date, part: Int) -> String {
        let iso = ISO8601.format(instant)  // 2026-11-23T09:14:02.000Z
        let digits = iso.prefix(19).filter { $0 != "-" && $0 != ":" }  // 20261123T091402
        return "\(prefix)-\(segment)-\(digits)Z" + (part > 1 ? "-part\(part)" : "") + ".csv"
    }

    public func run(in context: GoalContext) async throws {
        try context.ensureSegmentsCurrent()
        let headers = goal.columns.map(\.header)
        let header: [UInt8]
        do {
            header = try Self.headerRow(headers)
        } catch {
            throw GoalFailure("mapp export of segment \(goal.segment): \(error)")
        }
        let rows = RowFormat(columns: goal.columns.map(\.property), objectives: Set(context.connection.objectives))

        var remote: (any RemoteFileStore)?
        if !context.isDryRun {
            do {
                remote = try await connector.connect(configuration)
            } catch {
                throw GoalFailure("cannot reach the Mapp SFTP server: \(error)")
            }
        }
        var upload = PartUploads(store: remote, folder: destination.folder)
        var exported: [Int64] = []
        var part = 1
        var partBytes = 0
        /// Pages being read ahead, oldest first.
        var pending: [Task<Page, any Error>] = []
        do {
            // A run killed mid-upload (kill -9, power loss) could not remove its `.part` files; this run does.
            await upload.removeLeftovers(prefix: "\(goal.filePrefix)-\(goal.segment)-")
            try await upload.start(Self.fileName(prefix: goal.filePrefix, segment: goal.segment, at: context.now, part: part))
            try await upload.write(header[...])
            partBytes = header.count
            let segment = goal.segment, pageSize = pageSize, database = context.database
            // Pages are formatted `concurrentPages` at a time on the database's reader threads and consumed
            // in key order, while the SFTP session thread encrypts and sends earlier bytes: on two cores
            // the export is bound by the slowest of the three, not their sum.
            var after: Int64 = 0
            func schedule() async throws {
                guard let bounds = try await Self.pageBounds(of: segment, after: after, limit: pageSize, db: database) else { return }
                after = bounds.last
                pending.append(Task { try await Self.page(of: segment, from: bounds.first, through: bounds.last, limit: pageSize, format: rows, db: database) })
            }
            for _ in 0..<Self.concurrentPages { try await schedule() }
            var lastFlush = ContinuousClock.now
            while !pending.isEmpty {
                try Task.checkCancellation()
                let page = try await pending.removeFirst().value
                try await schedule()
                // Whole runs of rows go up at once; a part ends before the row that would take it past the limit.
                var start = 0, next = 0
                while next < page.rowEnds.count {
                    var end = start
                    while next < page.rowEnds.count {
                        let rowEnd = page.rowEnds[next]
                        let hasRows = partBytes > header.count || end > start
                        if hasRows && partBytes + (rowEnd - start) > maximumFileBytes { break }
                        end = rowEnd
                        next += 1
                    }
                    if end > start {
                        try await upload.write(page.bytes[start..<end])
                        partBytes += end - start
                        start = end
                    }
                    if next < page.rowEnds.count {
                        try await upload.finishPart()
                        part += 1
                        try await upload.start(Self.fileName(prefix: goal.filePrefix, segment: goal.segment, at: context.now, part: part))
                        try await upload.write(header[...])
                        partBytes = header.count
                    }
                }
                exported += page.exported
                let counts = (page.read, page.skipped, page.exported.count)
                await context.recorder.count {
                    $0.read += counts.0
                    $0.skipped += counts.1
                    $0.exported += counts.2
                }
                for touched in page.touched { await context.recorder.touch(touched) }
                await context.progress.progress(label: "export \(goal.segment)", done: exported.count, total: nil)
                // The run record shows progress about once a second, not one write transaction per page.
                if ContinuousClock.now - lastFlush >= .seconds(1) {
                    try await context.recorder.flush()
                    lastFlush = ContinuousClock.now
                }
            }
            try await context.recorder.flush()
            try await upload.finishPart()
            let published = try await upload.publishAll()
            for (name, size) in published {
                await context.recorder.note("\(context.isDryRun ? "would write" : "wrote") \(destination.folder)/\(name) (\(size) bytes)")
            }
        } catch {
            // Pages read ahead stop before the run ends: none reads the store after `run` has returned.
            for task in pending { task.cancel() }
            for task in pending { _ = try? await task.value }
            await upload.abandon()
            await remote?.close()
            if let failure = error as? GoalFailure { throw failure }
            if error is CancellationError { throw error }
            throw GoalFailure("mapp export of segment \(goal.segment) failed; no file was published: \(error)")
        }
        await remote?.close()
        if !context.isDryRun {
            let exportedPKs = exported
            try await context.database.writer.write { db in
                try DataExchange.record(connection: context.connection.name, profiles: exportedPKs, at: context.now, db: db)
            }
        }
    }

    private var configuration: FileDropConfiguration {
        let authentication: FileDropConfiguration.Authentication
        switch destination.authentication {
        case .password(let secret): authentication = .password(secret.value)
        case .privateKey(let path, let passphrase): authentication = .privateKey(path: path, passphrase: passphrase?.value)
        }
        let hostKey: FileDropConfiguration.HostKeyPolicy
        switch destination.hostKey {
        case .knownHosts(let path): hostKey = .knownHosts(path: path)
        case .sha256(let fingerprint): hostKey = .sha256(fingerprint)
        }
        return FileDropConfiguration(host: destination.host, port: destination.port, username: destination.username,
                                     authentication: authentication, hostKey: hostKey, folder: destination.folder)
    }

    /// The header row, checking the headers (first an identifier, no duplicates) on the way.
    static func headerRow(_ headers: [String]) throws(MappCSVError) -> [UInt8] {
        var writer = try MappCSVWriter(columnHeaders: headers)
        writer.writeHeader()
        return writer.takeBytes()
    }

    /// How members become CSV rows: the properties of the columns, and the objectives a member needs one of.
    struct RowFormat: Sendable {
        var columns: [String]
        var objectives: Set<String>
        /// The only properties decoded: the columns', and the objectives when they filter.
        var keys: Set<String> { Set(columns).union(objectives.isEmpty ? [] : [Profile.objectivesProperty]) }
    }

    /// One page of members as CSV rows, ready to upload.
    struct Page: Sendable {
        var bytes: [UInt8] = []
        /// Where each row ends in `bytes`, so files can be split between rows.
        var rowEnds: [Int] = []
        var exported: [Int64] = []
        var read = 0
        var skipped = 0
        /// The newest exported members, for the run record.
        var touched: [TouchedProfile] = []
    }

    /// How many pages are read and formatted at the same time, ahead of the upload.
    static let concurrentPages = 3

    /// The first and last row keys of the next `limit` members above `after` (keyset paging: a short
    /// walk of the segment's primary key), or nil when there are no more.
    static func pageBounds(of segment: String, after: Int64, limit: Int, db database: AppDatabase) async throws -> (first: Int64, last: Int64)? {
        try await database.writer.read { db in
            guard let range = try Row.fetchOne(db, sql: """
                SELECT MIN(profile_pk), MAX(profile_pk) FROM (
                    SELECT profile_pk FROM segment_member WHERE segment = ? AND profile_pk > ? ORDER BY profile_pk LIMIT ?)
                """, arguments: [segment, after, limit]), let first = range[0] as Int64?, let last = range[1] as Int64? else {
                return nil
            }
            return (first, last)
        }
    }

    /// The members with row keys from `first` through `last`, in key order, as CSV rows.
    ///
    /// Only the columns' properties are decoded, and rows are written straight into one byte buffer; the
    /// membership column comes from a second cursor over the same key range, merged in key order.
    static func page(of segment: String, from first: Int64, through last: Int64, limit: Int, format: RowFormat,
                     db database: AppDatabase) async throws -> Page {
        // The asynchronous read waits off the cooperative pool (two threads here) while SQLite works.
        try await database.writer.read { db in
            // A page is read once: the pooled connection's cache (32 MiB in the store) would only hold
            // pages never read again, and with pages read concurrently each reader's cache adds to the RSS.
            try db.withPageCache(kibibytes: 1024) {
                var page = Page()
                let members = try Row.fetchCursor(db, sql: """
                    SELECT p.pk, p.id, p.properties FROM segment_member m JOIN profile p ON p.pk = m.profile_pk
                    WHERE m.segment = ? AND m.profile_pk BETWEEN ? AND ? ORDER BY m.profile_pk
                    """, arguments: [segment, first, last])
                let memberships = try Row.fetchCursor(db, sql: """
                    SELECT profile_pk, segment FROM segment_member WHERE profile_pk BETWEEN ? AND ? ORDER BY profile_pk, segment
                    """, arguments: [first, last])
                var membership = try memberships.next().map { ($0[0] as Int64, $0[1] as String) }
                let keys = PropertyKeys(format.keys)
                page.bytes.reserveCapacity(limit * 96)
                page.rowEnds.reserveCapacity(limit)
                page.exported.reserveCapacity(limit)
                var recent: [(id: String, identifier: String)] = []
                // Without an objectives filter, fields are copied straight from the stored JSON; a row the
                // direct writer is not sure of is decoded the general way.
                let direct = format.objectives.isEmpty ? MappFieldWriter(columns: format.columns) : nil
                while let row = try members.next() {
                    let pk: Int64 = row[0]
                    page.read += 1
                    while let current = membership, current.0 < pk { membership = try memberships.next().map { ($0[0], $0[1]) } }
                    let rowStart = page.bytes.count
                    var firstIdentifier: String?
                    if let direct {
                        let written = try row.withUnsafeData(atIndex: 2) { data in
                            (data ?? Data()).withUnsafeBytes { raw in direct.append(raw.bindMemory(to: UInt8.self), to: &page.bytes) }
                        }
                        if let written {
                            guard written.hasIdentifier else {
                                page.bytes.removeSubrange(rowStart...)
                                page.skipped += 1
                                continue
                            }
                            firstIdentifier = written.firstIdentifier
                        }
                    }
                    if firstIdentifier == nil {
                        let properties = try row.decodedProperties(atIndex: 2, keys: keys)
                        if !format.objectives.isEmpty {
                            let objectives = (properties[Profile.objectivesProperty] ?? []).map(\.description)
                            if format.objectives.isDisjoint(with: objectives) {
                                page.skipped += 1
                                continue
                            }
                        }
                        let identifiers = (properties[format.columns[0]] ?? []).map(\.description)
                        guard identifiers.contains(where: { !$0.isEmpty }) else {
                            page.skipped += 1
                            continue
                        }
                        for (index, column) in format.columns.enumerated() {
                            if index > 0 { page.bytes.append(UInt8(ascii: ",")) }
                            if index == 0 {
                                appendField(identifiers, to: &page.bytes)
                            } else {
                                appendField((properties[column] ?? []).map(\.description), to: &page.bytes)
                            }
                        }
                        firstIdentifier = identifiers.first ?? ""
                    }
                    page.bytes.append(UInt8(ascii: ","))
                    var names: [String] = []
                    while let current = membership, current.0 == pk {
                        names.append(current.1)
                        membership = try memberships.next().map { ($0[0], $0[1]) }
                    }
                    appendField(names, to: &page.bytes)
                    page.bytes.append(0x0D)
                    page.bytes.append(0x0A)
                    page.rowEnds.append(page.bytes.count)
                    page.exported.append(pk)
                    recent.append((row[1], firstIdentifier ?? ""))
                    if recent.count > 2 * RunLedger.touchedKept { recent.removeFirst(recent.count - RunLedger.touchedKept) }
                }
                page.touched = recent.suffix(RunLedger.touchedKept).map {
                    TouchedProfile(profileID: $0.id, identifier: $0.identifier, action: "exported")
                }
                return page
            }
        }
    }

    /// One quoted field holding `values` joined with `,` (each `"` doubled), as `MappCSVWriter` writes it.
    static func appendField(_ values: [String], to bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "\""))
        for (index, value) in values.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            for byte in value.utf8 {
                if byte == UInt8(ascii: "\"") { bytes.append(byte) }
                bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}

/// The `.part` uploads of one run, renamed to their final names only once all are complete.
struct PartUploads {
    let store: (any RemoteFileStore)?
    let folder: String
    private var finished: [(name: String, size: UInt64)] = []
    private var current: (name: String, writer: (any RemoteFileWriter)?, buffer: [UInt8], written: UInt64)?
    private static let chunkBytes = 1 << 20

    init(store: (any RemoteFileStore)?, folder: String) {
        self.store = store
        self.folder = folder
    }

    private func path(_ name: String) -> String {
        folder.isEmpty ? name : (folder.hasSuffix("/") ? folder + name : folder + "/" + name)
    }

    /// Removes `.part` files an earlier, killed run of this goal left behind (names starting with `prefix`).
    /// Best effort: a folder that does not exist yet has none, and a file that cannot be removed is not published anyway.
    func removeLeftovers(prefix: String) async {
        guard let store, let entries = try? await store.list(folder.isEmpty ? "." : folder) else { return }
        for entry in entries where !entry.isDirectory && entry.name.hasPrefix(prefix) && entry.name.hasSuffix(".csv.part") {
            try? await store.remove(path(entry.name))
        }
    }

    mutating func start(_ name: String) async throws {
        if finished.isEmpty, current == nil, let store, !folder.isEmpty { try await store.makeDirectories(folder) }
        let writer = try await store?.openForWriting(path(name) + ".part")
        current = (name, writer, [], 0)
    }

    mutating func write(_ bytes: ArraySlice<UInt8>) async throws {
        guard current != nil else { return }
        current!.buffer.append(contentsOf: bytes)
        current!.written += UInt64(bytes.count)
        if current!.buffer.count >= Self.chunkBytes, let writer = current!.writer {
            try await writer.write(current!.buffer)
            current!.buffer.removeAll(keepingCapacity: true)
        } else if current!.buffer.count >= Self.chunkBytes {
            current!.buffer.removeAll(keepingCapacity: true)
        }
    }

    /// Flushes and closes the current part and checks the server holds every byte.
    mutating func finishPart() async throws {
        guard let part = current else { return }
        if let writer = part.writer {
            if !part.buffer.isEmpty { try await writer.write(part.buffer) }
            try await writer.close()
        }
        if let store {
            let size = try await store.size(of: path(part.name) + ".part")
            guard size == part.written else {
                throw FileDropError(path: path(part.name) + ".part", message: "uploaded \(part.written) bytes but the server holds \(size)")
            }
        }
        finished.append((part.name, part.written))
        current = nil
    }

    /// Renames every finished part to its final name.
    func publishAll() async throws -> [(name: String, size: UInt64)] {
        if let store {
            for part in finished { try await store.rename(path(part.name) + ".part", to: path(part.name)) }
        }
        return finished
    }

    /// Best-effort removal of what this run uploaded, after a failure.
    func abandon() async {
        guard let store else { return }
        if let part = current { try? await part.writer?.close(); try? await store.remove(path(part.name) + ".part") }
        for part in finished { try? await store.remove(path(part.name) + ".part") }
    }
}
