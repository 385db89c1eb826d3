import Foundation

/// An upcoming fire of a connection, shown on top of the history table.
public struct UpcomingRun: Hashable, Sendable {
    public var connection: String
    public var at: Date

    public init(connection: String, at: Date) {
        self.connection = connection
        self.at = at
    }
}

/// Builds `ferry history` output: the table for people, the documented JSON for programs.
public enum HistoryReport {
    /// The table: upcoming runs (status `scheduled`) on top, then runs newest first.
    public static func table(runs: [RunRecord], upcoming: [UpcomingRun], colour: Bool) -> String {
        var table = TextTable(headers: ["RUN", "CONNECTION", "GOAL", "TRIGGER", "SCHEDULED", "STARTED", "DURATION", "STATUS", "COUNTS"])
        for next in upcoming {
            table.rows.append(["—", next.connection, "", "schedule", ReportFormat.timestamp(next.at), "", "", "scheduled", ""])
        }
        for run in runs {
            table.rows.append([
                String(run.id), run.connection, run.goal, run.trigger.rawValue,
                ReportFormat.timestamp(run.scheduledAt), ReportFormat.timestamp(run.startedAt),
                ReportFormat.duration(run.endedAt.map { $0.timeIntervalSince(run.startedAt) }),
                run.status.rawValue, run.counts.summary,
            ])
        }
        if table.rows.isEmpty { return "no runs yet" }
        return table.render(colour: colour, statusColumn: 7)
    }

    /// One run in full: counts, error, row errors and the last five profiles touched.
    public static func detail(_ run: RunRecord) -> String {
        var lines = [
            "run \(run.id): \(run.connection) / \(run.goal)",
            "status:    \(run.status.rawValue)",
            "trigger:   \(run.trigger.rawValue)",
            "scheduled: \(ReportFormat.timestamp(run.scheduledAt))",
            "started:   \(ReportFormat.timestamp(run.startedAt))",
            "ended:     \(ReportFormat.timestamp(run.endedAt))",
            "duration:  \(ReportFormat.duration(run.endedAt.map { $0.timeIntervalSince(run.startedAt) }))",
            "counts:    \(run.counts.summary)",
        ]
        if let error = run.error { lines.append("error:     \(error)") }
        if !run.notes.isEmpty {
            lines.append("notes:")
            lines += run.notes.map { "  " + $0 }
        }
        if !run.rowErrors.isEmpty {
            lines.append("row errors (\(run.counts.failed) in all, first \(run.rowErrors.count)):")
            lines += run.rowErrors.map { "  \($0.location): \($0.reason)" }
        }
        lines.append("last profiles touched:")
        if run.touched.isEmpty {
            lines.append("  none")
        } else {
            var table = TextTable(headers: ["PROFILE", "IDENTIFIER", "ACTION"])
            table.rows = run.touched.reversed().map { [$0.profileID, $0.identifier, $0.action] }
            lines += table.render().split(separator: "\n").map { "  " + $0 }
        }
        return lines.joined(separator: "\n")
    }

    /// The stable JSON form of runs (documented in the README).
    public static func json(runs: [RunRecord], upcoming: [UpcomingRun]) -> String {
        let object: [String: Any] = [
            "upcoming": upcoming.map { ["connection": $0.connection, "at": ISO8601.format($0.at)] },
            "runs": runs.map(jsonObject),
        ]
        return jsonText(object)
    }

    /// The JSON object of one run.
    public static func jsonObject(_ run: RunRecord) -> [String: Any] {
        let c = run.counts
        return [
            "id": run.id, "connection": run.connection, "goal": run.goal, "trigger": run.trigger.rawValue,
            "scheduled_at": run.scheduledAt.map(ISO8601.format) ?? NSNull(),
            "started_at": ISO8601.format(run.startedAt),
            "ended_at": run.endedAt.map(ISO8601.format) ?? NSNull(),
            "duration_seconds": run.endedAt.map { $0.timeIntervalSince(run.startedAt) } ?? NSNull(),
            "status": run.status.rawValue,
            "counts": ["read": c.read, "created": c.created, "updated": c.updated, "unchanged": c.unchanged,
                       "exported": c.exported, "removed": c.removed, "skipped": c.skipped, "failed": c.failed],
            "error": run.error ?? NSNull(),
            "row_errors": run.rowErrors.map { ["location": $0.location, "reason": $0.reason] },
            "touched": run.touched.map { ["profile_id": $0.profileID, "identifier": $0.identifier, "action": $0.action] },
            "notes": run.notes,
        ]
    }

    /// Pretty, key-sorted JSON text.
    public static func jsonText(_ object: Any) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}
