import Foundation

/// When and how long to wait before trying a failed request again.
///
/// Exponential backoff with jitter for network errors and 5xx; on 429 (and 503) the server's
/// own word wins: Sailthru's `X-Rate-Limit-Reset` (a UNIX time: wait until it), else `Retry-After`,
/// else SendGrid's `X-RateLimit-Reset`.
///
/// Every method is retried, POST included: Sailthru's /user and /list POSTs are upserts, and a
/// repeated update or import job applies the same rows again, so a duplicate is harmless while a
/// lost batch is not (DESIGN.md: "Nothing is lost").
public struct RetryPolicy: Sendable {
    /// Attempts per call, the first included.
    public var maxAttempts: Int
    public var baseDelay: Duration
    public var maxDelay: Duration
    /// The retry budget of one call: total waiting across its retries.
    public var maxTotalWait: Duration
    /// ±fraction applied to each backoff delay (0.2 = ±20 %), so many clients do not retry in step.
    public var jitter: Double

    public init(maxAttempts: Int = 5, baseDelay: Duration = .milliseconds(500), maxDelay: Duration = .seconds(30),
                maxTotalWait: Duration = .seconds(180), jitter: Double = 0.2) {
        self.maxAttempts = maxAttempts
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.maxTotalWait = maxTotalWait
        self.jitter = jitter
    }

    /// No retries at all.
    public static let none = RetryPolicy(maxAttempts: 1)

    /// The wait before attempt `attempt + 1`; `random` is in 0..<1.
    public func delay(attempt: Int, status: Int?, headers: [String: String], now: Date, random: Double) -> Duration {
        if status == 429 || status == 503 {
            if let reset = headers["x-rate-limit-reset"].flatMap({ Double($0.trimmingCharacters(in: .whitespaces)) }) {
                // Capped like SendGrid's below: a garbled header must neither trap the conversion nor stall a run.
                let seconds = min(max(0, reset - now.timeIntervalSince1970), 3600)
                // A few milliseconds past the reset second, so the new window has surely begun.
                return .milliseconds(Int64((seconds * 1000).rounded(.up)) + 20)
            }
            if let retryAfter = headers["retry-after"].flatMap({ Self.parseRetryAfter($0, now: now) }) {
                return retryAfter
            }
            // SendGrid's `X-RateLimit-Reset`: a UNIX time in its docs, seconds-until-reset in one spec; tell them apart.
            if let reset = headers["x-ratelimit-reset"].flatMap({ Double($0.trimmingCharacters(in: .whitespaces)) }) {
                let seconds = reset > 1e9 ? max(0, reset - now.timeIntervalSince1970) : max(0, reset)
                return .milliseconds(Int64((min(seconds, 3600) * 1000).rounded(.up)) + 20)
            }
        } else if let retryAfter = headers["retry-after"].flatMap({ Self.parseRetryAfter($0, now: now) }) {
            return min(retryAfter, maxDelay)
        }
        let exponent = min(max(attempt - 1, 0), 30)
        let base = min(baseDelay * (1 << exponent), maxDelay)
        let factor = 1 + jitter * (2 * random - 1)
        return base * factor
    }

    /// `Retry-After` as delta-seconds or an HTTP date.
    static func parseRetryAfter(_ value: String, now: Date) -> Duration? {
        let text = value.trimmingCharacters(in: .whitespaces)
        if let seconds = Double(text) { return .milliseconds(Int64(max(0, seconds) * 1000)) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: text) else { return nil }
        return .milliseconds(Int64(max(0, date.timeIntervalSince(now)) * 1000))
    }
}
