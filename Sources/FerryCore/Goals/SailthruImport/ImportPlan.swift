import Foundation
import GRDB

/// One import batch worked out a batch ahead, while the batch before it is written: what each row does, and the
/// writes that makes, for the transactions' thread only to make.
///
/// The plan is made against the store as the batch before last left it: its owners and ids are read on the writer, at
/// the end of the transaction before last (``readAsTheBatchBeforeLastEnded``) or at the start of the one in between,
/// its profiles on a reading connection. It holds when the batch in between wrote nothing it read (``conflicts(with:)``)
/// and nobody else wrote meanwhile (the caller's ``WriterStamp``s); otherwise the batch is worked out again on the
/// writer. Row keys of profiles the plan creates are the ones the store would have given them when the owners were
/// read, from ``firstNewPK``: the writer shifts them to where its store ends.
struct ImportPlan: Sendable {
    /// Counts, row errors, touched profiles and skips, as the writer would have found them.
    var result: SailthruImportExecutor.BatchResult
    /// The batch's writes in row order.
    var writes: [PlannedWrite]
    /// Profiles whose membership follows, in row key order (sorted here, off the writer's thread; the writer's shift
    /// keeps the order, since it moves only new profiles, all past every stored one), and every linked or created
    /// profile for the data exchange.
    var changed: [ProfileBatchWriter.Touched]
    var exchanged: [Int64]
    /// What the plan read and wrote: owners, profiles and ids.
    var known: ImportLookups
    /// Keys the batch writes (existing row keys only: a created profile is reached through its identifiers and id).
    var wrote: WrittenKeys
    /// The row key the plan gave its first new profile (every later one follows it); nil when it creates none.
    var firstNewPK: Int64?
    /// Whether the owners and ids were read at the end of the transaction before the one before the batch, not at
    /// the start of the one before: they are then the store the batch before began on only when nobody wrote between.
    var readAsTheBatchBeforeLastEnded = false

    /// Whether `wrote`, what the batch before wrote, changes anything this plan read.
    func conflicts(with wrote: WrittenKeys) -> Bool {
        wrote.owners.contains { known.owners.index(forKey: $0) != nil }
            || wrote.ids.contains { known.ids.index(forKey: $0) != nil }
            || wrote.pks.contains { pk in (firstNewPK.map { pk < $0 } ?? true) && known.profiles.index(forKey: pk) != nil }
    }

    /// `pk` as the writer numbers it, when its own new profiles start at `shift` past the plan's.
    func shifted(_ pk: Int64, by shift: Int64) -> Int64 {
        Self.shifted(pk, firstNewPK: firstNewPK, by: shift)
    }

    /// `pk` as the writer numbers it, for a plan whose new profiles start at `firstNewPK` and the writer's `shift` past them.
    static func shifted(_ pk: Int64, firstNewPK: Int64?, by shift: Int64) -> Int64 {
        if let first = firstNewPK, pk >= first { return pk + shift }
        return pk
    }
}

/// A write an import batch makes, worked out ahead.
enum PlannedWrite: Sendable {
    case update(pk: Int64, stored: String)
    case create(pk: Int64, id: String, stored: String, identifiers: [(String, String)])
}

/// The keys an import batch wrote, which a batch planned ahead of it must not have read.
struct WrittenKeys: Sendable {
    var owners: Set<IdentifierKey> = []
    var ids: Set<String> = []
    /// Row keys of profiles the batch changed that were stored before it.
    var pks: Set<Int64> = []
}

/// Thrown while planning a row that changes a profile's identifiers: re-indexing them reads and writes the
/// identifier table row by row, which only the writer can do, so the batch is worked out on the writer.
struct ImportPlanAbandoned: Error {}

/// Thrown while planning without a connection when a row needs an owner, profile or id that was not read for the
/// batch: the batch is worked out on the writer.
struct ImportPlanNeedsStore: Error {}
