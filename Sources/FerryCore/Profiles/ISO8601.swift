import Foundation

/// Fast, allocation-light ISO 8601 parsing and formatting for property values.
///
/// Foundation's formatters are correct but slow on a million-row load; this reads the forms
/// input files use: `YYYY-MM-DD`, and `YYYY-MM-DDTHH:MM[:SS[.fff…]]` with `Z`, `±HH:MM` or `±HHMM`
/// (a date-time without an offset is read as UTC).
public enum ISO8601 {
    /// The instant `text` names, or nil when it is not one of the accepted forms.
    public static func parse(_ text: String) -> Date? {
        var text = text
        return text.withUTF8 { parse(bytes: $0) }
    }

    static func parse(bytes b: UnsafeBufferPointer<UInt8>) -> Date? {
        let n = b.count
        guard n >= 10 else { return nil }
        func digits(_ at: Int, _ count: Int) -> Int? {
            guard at + count <= n else { return nil }
            var v = 0
            for i in at..<(at + count) {
                let c = b[i]
                guard c >= 48, c <= 57 else { return nil }
                v = v * 10 + Int(c - 48)
            }
            return v
        }
        guard let year = digits(0, 4), b[4] == UInt8(ascii: "-"), let month = digits(5, 2),
              b[7] == UInt8(ascii: "-"), let day = digits(8, 2),
              (1...12).contains(month), day >= 1, day <= LocalDateTime.daysIn(year: year, month: month)
        else { return nil }
        var seconds = Double(daysFromCivil(year: year, month: month, day: day)) * 86_400
        if n == 10 { return Date(timeIntervalSince1970: seconds) }
        guard b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: " "),
              let hour = digits(11, 2), n > 13, b[13] == UInt8(ascii: ":"), let minute = digits(14, 2),
              hour < 24, minute < 60 else { return nil }
        seconds += Double(hour * 3600 + minute * 60)
        var i = 16
        if i < n, b[i] == UInt8(ascii: ":") {
            guard let s = digits(i + 1, 2), s < 61 else { return nil }
            seconds += Double(s)
            i += 3
            if i < n, b[i] == UInt8(ascii: ".") || b[i] == UInt8(ascii: ",") {
                i += 1
                var scale = 0.1
                let start = i
                while i < n, b[i] >= 48, b[i] <= 57 {
                    seconds += Double(b[i] - 48) * scale
                    scale /= 10
                    i += 1
                }
                guard i > start else { return nil }
            }
        }
        if i == n { return Date(timeIntervalSince1970: seconds) }
        if b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z") {
            return i + 1 == n ? Date(timeIntervalSince1970: seconds) : nil
        }
        guard b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-"), let oh = digits(i + 1, 2) else { return nil }
        var om = 0
        if i + 3 == n {
            om = 0
        } else if i + 6 == n, b[i + 3] == UInt8(ascii: ":"), let m = digits(i + 4, 2) {
            om = m
        } else if i + 5 == n, let m = digits(i + 3, 2) {
            om = m
        } else {
            return nil
        }
        let offset = Double(oh * 3600 + om * 60) * (b[i] == UInt8(ascii: "+") ? 1 : -1)
        return Date(timeIntervalSince1970: seconds - offset)
    }

    /// `2024-01-15T10:30:00.000Z`: UTC with milliseconds, the form ferry writes.
    public static func format(_ date: Date) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(24)
        append(date, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends `format(date)`'s 24 bytes to `out` (no String in between: the store encodes many dates).
    static func append(_ date: Date, to out: inout [UInt8]) {
        let totalMillis = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        let millis = Int(((totalMillis % 1000) + 1000) % 1000)
        let totalSeconds = (totalMillis - Int64(millis)) / 1000
        let days = Int(floorDiv(totalSeconds, 86_400))
        let secondOfDay = Int(totalSeconds - Int64(days) * 86_400)
        let (y, m, d) = civilFromDays(days)
        // Digits written by hand: String(format:) costs more than the rest of a profile's encoding.
        let base = out.count
        out.append(contentsOf: repeatElement(0, count: 24))
        func put(_ value: Int, _ width: Int, at index: Int) {
            var v = value
            for i in stride(from: base + index + width - 1, through: base + index, by: -1) {
                out[i] = UInt8(48 + v % 10)
                v /= 10
            }
        }
        put(y, 4, at: 0); out[base + 4] = 45; put(m, 2, at: 5); out[base + 7] = 45; put(d, 2, at: 8); out[base + 10] = 84
        put(secondOfDay / 3600, 2, at: 11); out[base + 13] = 58; put(secondOfDay / 60 % 60, 2, at: 14); out[base + 16] = 58
        put(secondOfDay % 60, 2, at: 17); out[base + 19] = 46; put(millis, 3, at: 20); out[base + 23] = 90
    }

    /// `YYYY-MM-DD` of the instant in UTC.
    public static func formatDate(_ date: Date) -> String {
        String(format(date).prefix(10))
    }

    private static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        a >= 0 ? a / b : -((-a + b - 1) / b)
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date.
    public static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        CivilDate(year: year, month: month, day: day).dayNumber
    }

    /// The proleptic Gregorian date `days` after 1970-01-01.
    public static func civilFromDays(_ days: Int) -> (year: Int, month: Int, day: Int) {
        let date = CivilDate(dayNumber: days)
        return (date.year, date.month, date.day)
    }
}
