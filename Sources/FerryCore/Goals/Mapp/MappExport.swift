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
        let store = ProfileStore(database: context.database)
        try store.refreshSegments(context.segments, now: context.now)
        let headers = goal.columns.map(\.header)
        var csv: MappCSVWriter<[UInt8]>
        do {
            csv = try MappCSVWriter(columnHeaders: headers)
        } catch {
            throw GoalFailure("mapp export of segment \(goal.segment): \(error)")
        }
        let objectives = Set(context.connection.objectives)

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
        var lastPK: Int64 = 0
        var part = 1
        var partBytes = 0
        var totalBytes = 0
        do {
            // A run killed mid-upload (kill -9, power loss) could not remove its `.part` files; this run does.
            await upload.removeLeftovers(prefix: "\(goal.filePrefix)-\(goal.segment)-")
            try await upload.start(Self.fileName(prefix: goal.filePrefix, segment: goal.segment, at: context.now, part: part))
            while true {
                try Task.checkCancellation()
                let page = try Self.members(of: goal.segment, after: lastPK, limit: pageSize, db: context.database)
                guard let last = page.last else { break }
                lastPK = last.pk
                for member in page {
                    await context.recorder.count { $0.read += 1 }
                    if !objectives.isEmpty && Set(member.profile.objectives).isDisjoint(with: objectives) {
                        await context.recorder.count { $0.skipped += 1 }
                        continue
                    }
                    let values = goal.columns.map { column in member.profile[column.property].map(\.description) }
                    guard values[0].contains(where: { !$0.isEmpty }) else {
                        await context.recorder.count { $0.skipped += 1 }
                        continue
                    }
                    try csv.append(values: values, segments: member.segments)
                    var bytes = csv.takeBytes()
                    if partBytes > 0 && partBytes + bytes.count > maximumFileBytes {
                        try await upload.finishPart()
                        part += 1
                        partBytes = 0
                        try await upload.start(Self.fileName(prefix: goal.filePrefix, segment: goal.segment, at: context.now, part: part))
                    }
                    if partBytes == 0 && !bytes.starts(with: Self.headerRow(headers)) {
                        bytes = Self.headerRow(headers) + bytes
                    }
                    try await upload.write(bytes)
                    partBytes += bytes.count
                    totalBytes += bytes.count
                    exported.append(member.pk)
                    await context.recorder.count { $0.exported += 1 }
                    await context.recorder.touch(TouchedProfile(profileID: member.profile.id,
                                                                identifier: values[0].first ?? "", action: "exported"))
                }
                await context.progress.progress(label: "export \(goal.segment)", done: exported.count, total: nil)
                try await context.recorder.flush()
            }
            if partBytes == 0 {
                // An empty segment still publishes a file with the header row, so Mapp sees the run.
                let header = Self.headerRow(headers)
                try await upload.write(header)
                totalBytes += header.count
            }
            try await upload.finishPart()
            let published = try await upload.publishAll()
            for (name, size) in published {
                await context.recorder.note("\(context.isDryRun ? "would write" : "wrote") \(destination.folder)/\(name) (\(size) bytes)")
            }
        } catch {
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

    static func headerRow(_ headers: [String]) -> [UInt8] {
        var writer = try! MappCSVWriter(columnHeaders: headers)  // headers were checked when the goal started
        writer.writeHeader()
        return writer.takeBytes()
    }

    /// One segment member with the names of every segment it is in.
    struct Member {
        var pk: Int64
        var profile: Profile
        var segments: [String]
    }

    /// Members with row keys above `after`, in key order (keyset paging: each page is a short read).
    static func members(of segment: String, after: Int64, limit: Int, db database: AppDatabase) throws -> [Member] {
        try database.writer.read { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT p.pk, p.id, p.properties, p.created_at, p.updated_at
                FROM segment_member m JOIN profile p ON p.pk = m.profile_pk
                WHERE m.segment = ? AND m.profile_pk > ? ORDER BY m.profile_pk LIMIT ?
                """, arguments: [segment, after, limit])
            guard let first = rows.first, let last = rows.last else { return [] }
            var segments: [Int64: [String]] = [:]
            for row in try Row.fetchAll(db, sql: """
                SELECT profile_pk, segment FROM segment_member WHERE profile_pk BETWEEN ? AND ? ORDER BY segment
                """, arguments: [first["pk"] as Int64, last["pk"] as Int64]) {
                segments[row["profile_pk"], default: []].append(row["segment"])
            }
            return try rows.map { row in
                let stored = try ProfileStore.decode(row)
                return Member(pk: stored.pk, profile: stored.profile, segments: segments[stored.pk] ?? [])
            }
        }
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

    mutating func write(_ bytes: [UInt8]) async throws {
        guard var part = current else { return }
        part.buffer += bytes
        part.written += UInt64(bytes.count)
        if part.buffer.count >= Self.chunkBytes {
            try await part.writer?.write(part.buffer)
            part.buffer.removeAll(keepingCapacity: true)
        }
        current = part
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
