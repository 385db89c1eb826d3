import Foundation

/// Renders rows as an aligned plain-text table for people (JSON output is for programs).
public struct TextTable: Sendable {
    public var headers: [String]
    public var rows: [[String]]

    public init(headers: [String], rows: [[String]] = []) {
        self.headers = headers
        self.rows = rows
    }

    /// The table, columns padded to their widest cell; `colour` styles the header and a status column.
    public func render(colour: Bool = false, statusColumn: Int? = nil) -> String {
        let widths = headers.indices.map { i in
            ([headers[i]] + rows.map { i < $0.count ? $0[i] : "" }).map(\.count).max() ?? 0
        }
        func line(_ cells: [String], styled: (Int, String) -> String) -> String {
            cells.indices.map { i in
                let cell = cells[i]
                let padded = i == cells.count - 1 ? cell : cell + String(repeating: " ", count: widths[i] - cell.count)
                return styled(i, padded)
            }.joined(separator: "  ").replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
        }
        var out = [line(headers) { _, text in colour ? "\u{1B}[1m\(text)\u{1B}[0m" : text }]
        for row in rows {
            out.append(line(row) { i, text in
                guard colour, i == statusColumn else { return text }
                return Self.colourStatus(text)
            })
        }
        return out.joined(separator: "\n")
    }

    static func colourStatus(_ text: String) -> String {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let code: String
        switch trimmed {
        case "succeeded": code = "32"
        case "partial", "skipped", "interrupted": code = "33"
        case "failed": code = "31"
        case "running", "scheduled": code = "36"
        default: return text
        }
        return "\u{1B}[\(code)m\(text)\u{1B}[0m"
    }
}

/// Date and duration formats shared by the reports.
public enum ReportFormat {
    /// `2026-11-23 09:14:02Z`: UTC, to the second.
    public static func timestamp(_ date: Date?) -> String {
        guard let date else { return "—" }
        let iso = ISO8601.format(date)
        return String(iso.prefix(10)) + " " + String(iso.dropFirst(11).prefix(8)) + "Z"
    }

    /// `4.2s`, `3m05s`, `1h02m`.
    public static func duration(_ seconds: Double?) -> String {
        guard let seconds, seconds >= 0 else { return "—" }
        if seconds < 60 { return String(format: "%.1fs", seconds) }
        let s = Int(seconds.rounded())
        if s < 3600 { return String(format: "%dm%02ds", s / 60, s % 60) }
        return String(format: "%dh%02dm", s / 3600, s / 60 % 60)
    }
}
