import Foundation

/// One export CSV being written as UTF-8 bytes, quoted where needed (a comma, quote, CR or LF), quotes doubled.
struct ExportCSVBytes {
    var bytes: [UInt8] = []

    mutating func line(_ cells: [String]) {
        for (i, cell) in cells.enumerated() {
            if i > 0 { comma() }
            self.cell(cell)
        }
        endLine()
    }

    mutating func comma() { bytes.append(44) }
    mutating func endLine() { bytes.append(13); bytes.append(10) }
    mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    /// A cell, quoted (inner quotes doubled) when it holds a comma, quote, CR or LF.
    mutating func cell(_ text: String) {
        var text = text
        // On the contiguous bytes: the generic UTF8View scan was a tenth of a million-row export.
        let plain = text.withUTF8 { utf8 -> Bool in
            guard !utf8.contains(where: { $0 == 44 || $0 == 34 || $0 == 10 || $0 == 13 }) else { return false }
            bytes.append(contentsOf: utf8)
            return true
        }
        if plain { return }
        let utf8 = text.utf8
        bytes.append(34)
        for byte in utf8 {
            if byte == 34 { bytes.append(34) }
            bytes.append(byte)
        }
        bytes.append(34)
    }

    /// `Digest.md5Hex(text)`, appended: through `hasher` when there is one (no String is made).
    mutating func md5Hex(of text: String, with hasher: MD5Hasher?) {
        guard let hasher else {
            bytes.append(contentsOf: Digest.md5Hex(text).utf8)
            return
        }
        var text = text
        text.withUTF8 { hasher.appendHex(of: $0, to: &bytes) }
    }
}

/// `yyyy-MM-dd HH:mm:ss` in UTC (the year unpadded), written as bytes without a DateFormatter or a String per
/// row; the last second's text is kept, so a run of members with the same time costs one copy each.
struct UTCStamps {
    private var lastSecond: Int?
    private var last: [UInt8] = []

    /// Appends `date`'s stamp; a date too far out to count in whole seconds (or NaN) gets an empty cell.
    mutating func append(_ date: Date, to out: inout ExportCSVBytes) {
        // The bound keeps `seconds - 86_399` below from overflowing.
        guard let seconds = Int(exactly: date.timeIntervalSince1970.rounded(.down)), seconds > Int.min + 86_400 else { return }
        if seconds != lastSecond {
            last = Self.stamp(seconds)
            lastSecond = seconds
        }
        out.bytes.append(contentsOf: last)
    }

    /// The stamp of a time in whole seconds since 1970.
    static func stamp(_ seconds: Int) -> [UInt8] {
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let inDay = seconds - days * 86_400
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        var text: [UInt8] = []
        text.reserveCapacity(24)
        text.append(contentsOf: String(year).utf8)
        func two(_ separator: UInt8, _ n: Int) {
            text.append(separator)
            text.append(UInt8(48 + n / 10))
            text.append(UInt8(48 + n % 10))
        }
        two(UInt8(ascii: "-"), month)
        two(UInt8(ascii: "-"), day)
        two(UInt8(ascii: " "), inDay / 3600)
        two(UInt8(ascii: ":"), inDay % 3600 / 60)
        two(UInt8(ascii: ":"), inDay % 60)
        return text
    }
}

extension Dictionary where Key == String {
    /// `self[key]`, found in a dictionary of a few entries by comparing keys instead of hashing `key` (each
    /// dictionary hashes with its own seed: hashing three keys per row was about 6 % of an export's samples).
    func fewEntryValue(_ key: String) -> Value? {
        guard count <= 4 else { return self[key] }
        var index = startIndex
        while index != endIndex {
            if keys[index] == key { return values[index] }
            formIndex(after: &index)
        }
        return nil
    }
}
