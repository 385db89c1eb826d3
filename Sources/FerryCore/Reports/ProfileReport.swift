import Foundation

/// Builds `ferry profiles show` and `ferry segments NAME` output.
public enum ProfileReport {
    /// One profile: id, properties, segments with entry times, objectives.
    public static func render(_ stored: StoredProfile, memberships: [(segment: String, enteredAt: Date)], json: Bool) -> String {
        let profile = stored.profile
        if json {
            var properties: [String: Any] = [:]
            for (key, values) in profile.properties {
                properties[key] = values.map { value -> Any in
                    switch value {
                    case .string(let s): return s
                    case .number(let n): return n
                    case .date(let d): return ISO8601.format(d)
                    }
                }
            }
            return HistoryReport.jsonText([
                "id": profile.id, "properties": properties, "objectives": profile.objectives,
                "segments": memberships.map { ["name": $0.segment, "entered_at": ISO8601.format($0.enteredAt)] },
                "created_at": ISO8601.format(stored.createdAt), "updated_at": ISO8601.format(stored.updatedAt),
            ] as [String: Any])
        }
        var lines = ["profile \(profile.id)"]
        var table = TextTable(headers: ["PROPERTY", "VALUES"])
        table.rows = profile.properties.keys.sorted().map { key in
            [key, profile[key].map(\.description).joined(separator: ", ")]
        }
        lines += table.render().split(separator: "\n").map { "  " + $0 }
        lines.append("segments:   " + (memberships.isEmpty ? "none" : memberships.map { "\($0.segment) (since \(ReportFormat.timestamp($0.enteredAt)))" }.joined(separator: ", ")))
        lines.append("objectives: " + (profile.objectives.isEmpty ? "none" : profile.objectives.joined(separator: ", ")))
        return lines.joined(separator: "\n")
    }

    /// A segment's members: id, email, entry time.
    public static func members(_ members: [(profile: StoredProfile, enteredAt: Date)], segment: String, size: Int) -> String {
        var table = TextTable(headers: ["PROFILE", "EMAIL", "ENTERED"])
        table.rows = members.map { [$0.profile.profile.id, $0.profile.profile["email"].first?.description ?? "", ReportFormat.timestamp($0.enteredAt)] }
        let header = "segment \(segment): \(size) member\(size == 1 ? "" : "s")"
        return members.isEmpty ? header : header + "\n" + table.render()
    }
}
