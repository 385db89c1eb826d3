import Foundation
import GRDB

/// Segment membership of the profiles one import batch changed, re-evaluated with a few queries.
///
/// The same evaluation as `ProfileStore.refreshMembership(of:segments:db:now:)`, but the stored
/// memberships of the whole batch are read with `IN (…)` lists instead of one query per profile.
/// The profiles may hold only the properties segments read (see ``ImportProfiles/keys(goal:segments:)``):
/// a rule reads no others, so the answer is the same.
enum ImportMembership {
    static func refresh(_ profiles: [(pk: Int64, profile: Profile)], segments: [SegmentDefinition], db: Database, now: Date) throws {
        guard !profiles.isEmpty, !segments.isEmpty else { return }
        try SegmentRefreshState.forget(unlessEvaluatedWith: segments, db: db)
        var current: [Int64: Set<String>] = [:]
        try InListQuery.forEachChunk(of: profiles.map(\.pk)) { chunk in
            let select = try InListQuery.statement("SELECT profile_pk, segment FROM segment_member WHERE profile_pk IN",
                                                   count: chunk.count, db: db)
            let rows = try Row.fetchCursor(select, arguments: StatementArguments(chunk))
            while let row = try rows.next() { current[row[0], default: []].insert(row[1]) }
        }
        let insert = try db.cachedStatement(sql: "INSERT INTO segment_member (segment, profile_pk, entered_at) VALUES (?, ?, ?)")
        let delete = try db.cachedStatement(sql: "DELETE FROM segment_member WHERE segment = ? AND profile_pk = ?")
        let time = now.timeIntervalSince1970
        for (pk, profile) in profiles {
            let memberOf = current[pk] ?? []
            for segment in segments {
                let isMember = segment.contains(profile, now: now)
                if isMember && !memberOf.contains(segment.name) {
                    try insert.execute(arguments: [segment.name, pk, time])
                } else if !isMember && memberOf.contains(segment.name) {
                    try delete.execute(arguments: [segment.name, pk])
                }
            }
        }
    }
}
