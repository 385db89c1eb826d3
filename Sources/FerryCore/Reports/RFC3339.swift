import Foundation

/// RFC 3339 timestamps with a zone's offset at that instant (`2026-03-08T03:30:00-04:00`).
public enum RFC3339 {
    /// The instant written with the offset `zone` has at that instant (UTC when the zone is unknown).
    public static func format(_ date: Date, in zone: String) -> String {
        format(date, offsetSeconds: TimeZone(identifier: zone)?.secondsFromGMT(for: date) ?? 0)
    }

    /// The instant written with a fixed offset; offset 0 is written `Z`.
    public static func format(_ date: Date, offsetSeconds: Int) -> String {
        let local = Int64(date.timeIntervalSince1970.rounded(.down)) + Int64(offsetSeconds)
        let days = Int(local >= 0 ? local / 86_400 : -((-local + 86_399) / 86_400))
        let second = Int(local - Int64(days) * 86_400)
        let (y, m, d) = ISO8601.civilFromDays(days)
        let stamp = String(format: "%04d-%02d-%02dT%02d:%02d:%02d", y, m, d, second / 3600, second / 60 % 60, second % 60)
        guard offsetSeconds != 0 else { return stamp + "Z" }
        let magnitude = abs(offsetSeconds)
        return stamp + String(format: "%@%02d:%02d", offsetSeconds < 0 ? "-" : "+", magnitude / 3600, magnitude / 60 % 60)
    }
}
