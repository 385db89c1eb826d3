import Foundation

/// Why one imported cell could not be merged (the row is reported; the other rows still apply).
public struct ImportValueError: Error, Hashable, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The merge modes of DESIGN.md as a pure function: current values + one incoming cell → new values.
///
/// An empty incoming cell changes nothing in any mode: an export leaves a cell empty when the
/// platform has no value, and "no value" must never erase or zero what the profile holds.
public enum ImportMerge {
    /// The property's values after merging `cell` into `current` with `mode`.
    public static func merge(_ current: [PropertyValue], cell: String, mode: MergeMode) -> Result<[PropertyValue], ImportValueError> {
        merge(current, incoming(cell, mode: mode))
    }

    /// A cell read for its merge mode, before any profile is seen: the import reads cells on its
    /// reading thread, ahead of the transaction that merges them.
    public enum Incoming: Sendable, Hashable {
        /// Nothing (an empty or blank cell): changes nothing in any mode.
        case empty
        case set([PropertyValue])
        case setIfEmpty([PropertyValue])
        case add([PropertyValue])
        /// `sum`'s number, with the cell's text for messages.
        case sum(Double, text: String)
        /// A `sum` cell that is not a number.
        case notANumber(text: String)
    }

    /// What `cell` brings to a merge with `mode`.
    public static func incoming(_ cell: String, mode: MergeMode) -> Incoming {
        var read = ReadCells()
        return read.incoming(cell, column: 0, mode: mode)
    }

    /// What each of a row's `cells` brings to its merge, for merges given as (mode, column index) in order.
    ///
    /// A column merged into several properties (`first_name` into a name, a nickname and aliases) is read into values
    /// once: typing a cell, and deciding it is no date, is most of the reading.
    public static func incoming(_ cells: [String], merges: [(mode: MergeMode, column: Int)]) -> [Incoming] {
        var read = ReadCells()
        return merges.map { read.incoming(cells[$0.column], column: $0.column, mode: $0.mode) }
    }

    /// The values read from one row's cells so far, by column and whether commas split them.
    private struct ReadCells {
        private var read: [(column: Int, splitting: Bool, values: [PropertyValue])] = []

        mutating func incoming(_ cell: String, column: Int, mode: MergeMode) -> Incoming {
            let text = cell.trimmedCell(newlines: true)
            guard !text.isEmpty else { return .empty }
            switch mode {
            case .set: return .set(values(text, column: column, splittingCommas: false))
            case .setIfEmpty: return .setIfEmpty(values(text, column: column, splittingCommas: false))
            case .add: return .add(values(text, column: column, splittingCommas: true))
            case .sum: return ImportCell.number(text).map { .sum($0, text: text) } ?? .notANumber(text: text)
            }
        }

        /// ``ImportCell/values(_:splittingCommas:)``, which splits nothing in a cell without a comma.
        private mutating func values(_ text: String, column: Int, splittingCommas: Bool) -> [PropertyValue] {
            let splitting = splittingCommas && text.utf8.contains(UInt8(ascii: ","))
            if let earlier = read.first(where: { $0.column == column && $0.splitting == splitting }) { return earlier.values }
            let values = ImportCell.values(text, splittingCommas: splitting)
            read.append((column, splitting, values))
            return values
        }
    }

    /// The property's values after merging a cell read by ``incoming(_:mode:)`` into `current`.
    public static func merge(_ current: [PropertyValue], _ incoming: Incoming) -> Result<[PropertyValue], ImportValueError> {
        switch incoming {
        case .empty:
            return .success(current)
        case .set(let values):
            return .success(values)
        case .setIfEmpty(let values):
            return .success(current.isEmpty ? values : current)
        case .add(let values):
            return .success(appending(values, to: current))
        case .notANumber(let text):
            return .failure(ImportValueError("'\(text)' is not a number (sum needs one)"))
        case .sum(let number, let text):
            // Empty counts as 0; a current value that is not a number is not silently replaced.
            guard let first = current.first else { return .success([.number(number)]) }
            guard let base = first.numberValue else {
                return .failure(ImportValueError("the profile holds '\(first)', not a number, so '\(text)' cannot be added to it"))
            }
            let sum = base + number
            guard sum.isFinite else {
                return .failure(ImportValueError("\(base) + '\(text)' is out of range for a number"))
            }
            return .success([.number(sum)] + current.dropFirst())
        }
    }

    /// `current` followed by the values of `incoming` it does not hold yet, in order.
    public static func appending(_ incoming: [PropertyValue], to current: [PropertyValue]) -> [PropertyValue] {
        var result = current
        for value in incoming where !result.contains(value) { result.append(value) }
        return result
    }
}

/// Reads export cells into typed property values.
public enum ImportCell {
    /// The values a cell holds: a JSON array (`["a","b"]`) gives one per element, and with
    /// `splittingCommas` a plain `a, b` gives one per part; each part is typed by ``typed(_:)``.
    public static func values(_ text: String, splittingCommas: Bool) -> [PropertyValue] {
        let trimmed = text.trimmedCell(newlines: true)
        if trimmed.hasPrefix("["), trimmed.hasSuffix("]"),
           let array = try? JSONDecoder().decode([ArrayElement].self, from: Data(trimmed.utf8)) {
            var result: [PropertyValue] = []
            for element in array {
                let value: PropertyValue?
                switch element {
                case .text(let s): value = s.isEmpty ? nil : typed(s)
                case .number(let n): value = .number(n)
                case .none: value = nil
                }
                if let value, !result.contains(value) { result.append(value) }
            }
            return result
        }
        guard splittingCommas, trimmed.utf8.contains(UInt8(ascii: ",")) else { return [typed(trimmed)] }
        var result: [PropertyValue] = []
        for part in trimmed.split(separator: ",") {
            let p = String(part).trimmedCell(newlines: false)
            guard !p.isEmpty else { continue }
            let value = typed(p)
            if !result.contains(value) { result.append(value) }
        }
        return result
    }

    /// One element of a JSON array cell; booleans are kept as the words people wrote.
    private enum ArrayElement: Decodable {
        case text(String), number(Double), none

        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if c.decodeNil() { self = .none }
            else if let s = try? c.decode(String.self) { self = .text(s) }
            else if let n = try? c.decode(Double.self) { self = .number(n) }
            else if let b = try? c.decode(Bool.self) { self = .text(b ? "true" : "false") }
            else { self = .none }
        }
    }

    /// A number when the text is written as one (no leading zeros, so `02134` stays text),
    /// a date-time when it is ISO 8601 or RFC 2822, else text.
    public static func typed(_ text: String) -> PropertyValue {
        if let n = number(text) { return .number(n) }
        if let first = text.utf8.first, first >= UInt8(ascii: "0"), first <= UInt8(ascii: "9"), let d = ISO8601.parse(text) {
            return .date(d)
        }
        if let d = RFC2822.parse(text) { return .date(d) }
        return .string(text)
    }

    /// The number `text` spells: `-12`, `3.5`, `1e3`; not `012`, `inf`, `nan` or `0x1F`.
    public static func number(_ text: String) -> Double? {
        var t = text.trimmedCell(newlines: false)
        // Checked on the bytes in place: a sum cell is read once per row of an import.
        let wellFormed = t.withUTF8 { bytes -> Bool in
            let n = bytes.count
            var i = 0
            func isDigit(_ b: UInt8) -> Bool { b >= 48 && b <= 57 }
            guard n > 0 else { return false }
            if bytes[0] == UInt8(ascii: "-") || bytes[0] == UInt8(ascii: "+") { i = 1 }
            let intStart = i
            while i < n, isDigit(bytes[i]) { i += 1 }
            guard i > intStart, i - intStart == 1 || bytes[intStart] != UInt8(ascii: "0") else { return false }
            if i < n, bytes[i] == UInt8(ascii: ".") {
                i += 1
                let fracStart = i
                while i < n, isDigit(bytes[i]) { i += 1 }
                guard i > fracStart else { return false }
            }
            if i < n, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
                i += 1
                if i < n, bytes[i] == UInt8(ascii: "-") || bytes[i] == UInt8(ascii: "+") { i += 1 }
                let expStart = i
                while i < n, isDigit(bytes[i]) { i += 1 }
                guard i > expStart else { return false }
            }
            return i == n
        }
        guard wellFormed, let value = Double(t), value.isFinite else { return nil }  // 1e400 parses as infinity
        return value
    }
}

/// RFC 2822 date-times as Sailthru writes them: `Mon, 15 Jan 2024 10:30:00 -0500`.
///
/// Accepts an optional weekday, 2- or 4-digit years, optional seconds, and a numeric offset,
/// `UT`/`GMT`/`Z` or the US zone names of RFC 822 (`EST`, `PDT`, …).
public enum RFC2822 {
    private static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    private static let zones: [String: Int] = ["ut": 0, "gmt": 0, "utc": 0, "z": 0, "est": -5, "edt": -4, "cst": -6, "cdt": -5,
                                               "mst": -7, "mdt": -6, "pst": -8, "pdt": -7]

    /// The instant `text` names, or nil when it is not an RFC 2822 date-time.
    public static func parse(_ text: String) -> Date? {
        // At least four space-separated parts: most cells (names, words) have no separator at all.
        guard text.utf8.contains(where: { $0 == 32 || $0 == 9 }) else { return nil }
        var parts = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard parts.count >= 4 else { return nil }
        if let first = parts.first, first.hasSuffix(",") || first.count == 3 && Int(first) == nil && months.firstIndex(of: first.lowercased()) == nil {
            parts.removeFirst()
        }
        guard parts.count == 4 || parts.count == 5,
              let day = Int(parts[0]), (1...31).contains(day),
              let month = months.firstIndex(of: parts[1].lowercased().prefix(3).description).map({ $0 + 1 }),
              parts[1].count == 3,
              var year = Int(parts[2]), parts[2].count == 2 || parts[2].count == 4
        else { return nil }
        if parts[2].count == 2 { year += year < 50 ? 2000 : 1900 }
        guard day <= LocalDateTime.daysIn(year: year, month: month) else { return nil }
        let time = parts[3].split(separator: ":", omittingEmptySubsequences: false).map { Int($0) }
        guard time.count == 2 || time.count == 3, time.allSatisfy({ $0 != nil }),
              parts[3].split(separator: ":").allSatisfy({ $0.count == 2 }) else { return nil }
        let hour = time[0]!, minute = time[1]!, second = time.count == 3 ? time[2]! : 0
        guard hour < 24, minute < 60, second < 61 else { return nil }
        var offset = 0
        if parts.count == 5 {
            let zone = parts[4]
            if let hours = zones[zone.lowercased()] {
                offset = hours * 3600
            } else {
                let sign = zone.first
                let digits = zone.dropFirst()
                guard sign == "+" || sign == "-", digits.count == 4, let value = Int(digits) else { return nil }
                let minutes = value / 100 * 60 + value % 100
                guard value % 100 < 60 else { return nil }
                offset = (sign == "+" ? 1 : -1) * minutes * 60
            }
        }
        let seconds = ISO8601.daysFromCivil(year: year, month: month, day: day) * 86_400 + hour * 3600 + minute * 60 + second - offset
        return Date(timeIntervalSince1970: TimeInterval(seconds))
    }
}

extension String {
    /// The cell without surrounding whitespace (`.whitespacesAndNewlines` or `.whitespaces`), as
    /// Foundation trims it. Nearly every cell starts and ends with a visible ASCII character: that case
    /// returns the text as it is, without Foundation's bridging (a profile found it at 13 % of an import).
    func trimmedCell(newlines: Bool) -> String {
        let scalars = self.unicodeScalars
        guard let first = scalars.first, let last = scalars.last else { return self }
        // Names end in letters like `é` as often as in ASCII: only scalars that might be Unicode
        // white space (or a control character) need Foundation's answer.
        func surelyVisible(_ scalar: Unicode.Scalar) -> Bool {
            switch scalar.value {
            case 33..<127: return true
            case 0...32, 127...0xA0, 0x1680, 0x180E, 0x2000...0x206F, 0x3000, 0xFEFF: return false
            default: return true
            }
        }
        if surelyVisible(first) && surelyVisible(last) { return self }
        return trimmingCharacters(in: newlines ? .whitespacesAndNewlines : .whitespaces)
    }
}
