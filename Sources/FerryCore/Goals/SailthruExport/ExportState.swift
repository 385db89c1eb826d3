import Foundation
import GRDB

/// One connection's export sync state: the membership ledger, the outbox, known users and the baseline.
///
/// The ledger holds who ferry put on which list (and with which identifier); it changes only after
/// Sailthru accepted the call or job. The outbox holds users whose call failed or was never confirmed: a
/// batch's intent (one row naming its users) is written before sending and deleted with its outcomes, failed
/// users get outbox rows, so a crash or a failed batch leaves them for the next run, which sends them first
/// (with fresh data) or takes them off the lists if they left since.
struct ExportState: Sendable {
    let database: AppDatabase
    let connection: String

    /// A ledger entry: the lists a profile is on through ferry, and the identifier it was sent with.
    struct LedgerEntry: Sendable {
        var profileID: String
        var identifier: String
        var lists: Set<String>
    }

    /// A user whose last call was not confirmed.
    struct OutboxEntry: Sendable {
        var pk: Int64
        var profileID: String
        var identifier: String
        var operation: String
        var reason: String?
    }

    func ledger(lists: [String]) throws -> [Int64: LedgerEntry] {
        try database.writer.read { db in
            var entries: [Int64: LedgerEntry] = [:]
            let cursor = try Row.fetchCursor(db, sql: """
                SELECT list, profile_pk, profile_id, identifier FROM export_membership WHERE connection = ?
                """, arguments: [connection])
            let wanted = Set(lists)
            while let row = try cursor.next() {
                let list: String = row["list"]
                guard wanted.contains(list) else { continue }
                let pk: Int64 = row["profile_pk"]
                entries[pk, default: LedgerEntry(profileID: row["profile_id"], identifier: row["identifier"], lists: [])]
                    .lists.insert(list)
            }
            return entries
        }
    }

    /// Unconfirmed users: the outbox's rows and the users of batches whose sending was never settled (a run
    /// killed mid-batch), each user once, oldest first. `settleIntents` turns the latter into rows.
    func outbox() throws -> [OutboxEntry] {
        try database.writer.read { db in
            var seen = Set<String>()
            return try Row.fetchAll(db, sql: """
                SELECT profile_pk, profile_id, identifier, operation, reason, queued_at FROM export_outbox WHERE connection = ?1
                UNION ALL
                SELECT json_extract(j.value, '$[0]'), json_extract(j.value, '$[1]'), json_extract(j.value, '$[2]'),
                       json_extract(j.value, '$[3]'), NULL, i.queued_at
                FROM export_intent i, json_each(i.users) j WHERE i.connection = ?1
                ORDER BY 6, 1
                """, arguments: [connection]).compactMap { row in
                let entry = OutboxEntry(pk: row[0], profileID: row[1], identifier: row[2], operation: row[3], reason: row[4])
                return seen.insert("\(entry.pk)\u{1F}\(entry.identifier)").inserted ? entry : nil
            }
        }
    }

    /// Moves the users of unsettled batches (sent by a run that died before it heard back) into the outbox, as
    /// `queue` used to write them one row each; run before planning, so the run sees and clears them as rows.
    func settleIntents() throws {
        try database.writer.write { db in
            guard try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM export_intent WHERE connection = ?)",
                                    arguments: [connection]) == true else { return }
            try db.execute(sql: """
                INSERT INTO export_outbox (connection, profile_pk, profile_id, identifier, operation, reason, queued_at)
                SELECT ?1, json_extract(j.value, '$[0]'), json_extract(j.value, '$[1]'), json_extract(j.value, '$[2]'),
                       json_extract(j.value, '$[3]'), NULL, i.queued_at
                FROM export_intent i, json_each(i.users) j WHERE i.connection = ?1 ORDER BY i.id, j.key
                ON CONFLICT (connection, profile_pk, identifier) DO UPDATE SET operation = excluded.operation
                """, arguments: [connection])
            try db.execute(sql: "DELETE FROM export_intent WHERE connection = ?", arguments: [connection])
        }
    }

    /// Known users of one key kind: identifier → whether it exists in Sailthru. Negative answers expire
    /// after `negativeTTL`, so a user created in Sailthru later is picked up.
    func knownUsers(key: String, now: Date, negativeTTL: TimeInterval) throws -> [String: Bool] {
        try database.writer.read { db in
            var known: [String: Bool] = [:]
            for row in try Row.fetchAll(db, sql: """
                SELECT identifier, found FROM export_known_user
                WHERE connection = ? AND key = ? AND (found = 1 OR checked_at > ?)
                """, arguments: [connection, key, now.timeIntervalSince1970 - negativeTTL]) {
                known[row["identifier"]] = (row["found"] as Int) != 0
            }
            return known
        }
    }

    /// Records lookup answers (identifier → whether Sailthru has the user), all in one transaction.
    func remember(key: String, answers: [(identifier: String, found: Bool)], now: Date) throws {
        guard !answers.isEmpty else { return }
        try database.writer.write { db in
            let statement = try db.cachedStatement(sql: """
                INSERT OR REPLACE INTO export_known_user (connection, key, identifier, found, checked_at) VALUES (?, ?, ?, ?, ?)
                """)
            for answer in answers {
                try statement.execute(arguments: [connection, key, answer.identifier, answer.found ? 1 : 0, now.timeIntervalSince1970])
            }
        }
    }

    /// Records users Sailthru accepted as known to exist, in one statement in identifier order.
    ///
    /// Called once per run, not per batch: identifiers land all over this table's B-tree, so a batch's thousand
    /// inserts dirtied hundreds of pages that every batch's transaction wrote to the WAL again (85% of the export's
    /// WAL volume). The ledger does not depend on it; a user missing here after a crash is looked up again at most.
    func rememberFound(_ identifiers: [String], key: String, now: Date) throws {
        guard !identifiers.isEmpty else { return }
        // Sorted, so consecutive inserts land on neighbouring pages; a few hundred per statement.
        let sorted = identifiers.sorted()
        let chunk = 500
        try database.writer.write { db in
            var values: [any DatabaseValueConvertible] = []
            values.reserveCapacity(chunk + 3)
            for start in stride(from: 0, to: sorted.count, by: chunk) {
                let part = sorted[start..<min(start + chunk, sorted.count)]
                let sql = "INSERT OR REPLACE INTO export_known_user (connection, key, identifier, found, checked_at) VALUES "
                    + (0..<part.count).map { "(?1, ?2, ?\($0 + 4), 1, ?3)" }.joined(separator: ", ")
                let statement = part.count == chunk ? try db.cachedStatement(sql: sql) : try db.makeStatement(sql: sql)
                values.removeAll(keepingCapacity: true)
                values += [connection, key, now.timeIntervalSince1970] as [any DatabaseValueConvertible]
                for identifier in part { values.append(identifier) }
                try statement.execute(arguments: StatementArguments(values))
            }
        }
    }

    /// Accepted upserts, set by set: they join each list's ledger (keeping the first `since`) and enter the
    /// connection's data exchange (they become known users once per run, in `rememberFound`; their outbox
    /// rows, when they had any, go in `commit`). The users travel as one JSON array bound to one parameter, so
    /// each step is one statement for the batch, not one per user (per-user statements were a fifth of the
    /// export's time).
    static func recordAccepted(_ users: [(pk: Int64, profileID: String, identifier: String)], connection: String,
                               lists: [String], now: Date, db: Database) throws {
        guard !users.isEmpty else { return }
        let batch = jsonRows(users.map { ($0.pk, [$0.profileID, $0.identifier]) })
        let at = now.timeIntervalSince1970
        for list in lists {
            try db.execute(sql: """
                INSERT INTO export_membership (connection, list, profile_pk, profile_id, identifier, since)
                SELECT ?, ?, json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'), ?
                FROM json_each(?) WHERE true
                ON CONFLICT (connection, list, profile_pk) DO UPDATE SET identifier = excluded.identifier, profile_id = excluded.profile_id
                """, arguments: [connection, list, at, batch])
        }
        try DataExchange.record(connection: connection, profiles: users.lazy.map(\.pk), at: now, db: db)
    }

    /// Records a batch about to be sent (its intent): one row holding its users, so a run that dies before it
    /// hears back leaves them for the next run as unconfirmed. Returns the row's id for `settle`; nil when empty.
    ///
    /// One row a batch, not one outbox row a user: the outbox insert and its delete after acceptance were
    /// half of the export's SQLite writing, for rows that nearly always lived less than a second.
    static func intend(_ users: [(pk: Int64, profileID: String, identifier: String, operation: String)], connection: String,
                       now: Date, db: Database) throws -> Int64? {
        guard !users.isEmpty else { return nil }
        try db.execute(sql: "INSERT INTO export_intent (connection, queued_at, users) VALUES (?, ?, ?)",
                       arguments: [connection, now.timeIntervalSince1970,
                                   jsonRows(users.map { ($0.pk, [$0.profileID, $0.identifier, $0.operation]) })])
        return db.lastInsertedRowID
    }

    /// The batch's outcomes are recorded (in the same transaction): its intent goes.
    static func settle(intent: Int64, db: Database) throws {
        try db.execute(sql: "DELETE FROM export_intent WHERE id = ?", arguments: [intent])
    }

    /// Keeps a user whose send failed in the outbox with the reason, for the next run to send first.
    static func keep(_ user: (pk: Int64, profileID: String, identifier: String, operation: String), reason: String,
                     connection: String, now: Date, db: Database) throws {
        try db.cachedStatement(sql: """
            INSERT INTO export_outbox (connection, profile_pk, profile_id, identifier, operation, reason, queued_at)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (connection, profile_pk, identifier) DO UPDATE SET operation = excluded.operation, reason = excluded.reason
            """).execute(arguments: [connection, user.pk, user.profileID, user.identifier, user.operation, reason,
                                     now.timeIntervalSince1970])
    }

    /// `[[pk,"text",…],…]`: rows for `json_each`, so a batch binds one parameter.
    static func jsonRows(_ rows: [(Int64, [String])]) -> String {
        var json: [UInt8] = [UInt8(ascii: "[")]
        json.reserveCapacity(rows.count * 72)
        for (i, row) in rows.enumerated() {
            if i > 0 { json.append(UInt8(ascii: ",")) }
            json.append(UInt8(ascii: "["))
            DecimalDigits.append(row.0, to: &json)
            for text in row.1 {
                json.append(UInt8(ascii: ","))
                JSONValueText.appendString(text, to: &json)
            }
            json.append(UInt8(ascii: "]"))
        }
        json.append(UInt8(ascii: "]"))
        return String(decoding: json, as: UTF8.self)
    }

    // MARK: - Baseline

    func baselineTaken(segment: String) throws -> Date? {
        try database.writer.read { db in
            try Double.fetchOne(db, sql: "SELECT taken_at FROM export_baseline_taken WHERE connection = ? AND segment = ?",
                                arguments: [connection, segment]).map(Date.init(timeIntervalSince1970:))
        }
    }

    func memberCount(segment: String) throws -> Int {
        try database.writer.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM segment_member WHERE segment = ?", arguments: [segment]) ?? 0
        }
    }

    /// Records the segment's current members as the baseline; returns how many.
    func takeBaseline(segment: String, now: Date) throws -> Int {
        try database.writer.write { db in
            try db.execute(sql: """
                INSERT OR IGNORE INTO export_baseline (connection, segment, profile_pk)
                SELECT ?, segment, profile_pk FROM segment_member WHERE segment = ?
                """, arguments: [connection, segment])
            try db.execute(sql: "INSERT OR REPLACE INTO export_baseline_taken (connection, segment, taken_at) VALUES (?, ?, ?)",
                           arguments: [connection, segment, now.timeIntervalSince1970])
            return try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM export_baseline WHERE connection = ? AND segment = ?",
                                    arguments: [connection, segment]) ?? 0
        }
    }

    /// Baseline members that left the segment lose their baseline status: if they come back, they entered after it.
    func pruneBaseline(segment: String) throws {
        try database.writer.write { db in
            try db.execute(sql: """
                DELETE FROM export_baseline WHERE connection = ? AND segment = ?
                  AND profile_pk NOT IN (SELECT profile_pk FROM segment_member WHERE segment = ?)
                """, arguments: [connection, segment, segment])
        }
    }
}
