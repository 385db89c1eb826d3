import Foundation
import Logging

/// Mails a connection's `notify` recipients about a finished run, and says what happened for the run's notes.
///
/// A mail that cannot be sent never changes the run: it is logged and returned as a note.
public struct RunNotifier: Sendable {
    /// Where mail goes; nil when no server is configured (`FERRY_SMTP_URL` unset).
    public var sender: (any MailSender)?
    /// The `From:` address.
    public var from: String
    /// Why there is no sender, for the log and the run's notes.
    public var unconfiguredReason: String
    private let warning = OnceFlag()

    /// A notifier that sends through `sender` from `from`.
    public init(sender: (any MailSender)?, from: String,
                unconfiguredReason: String = "FERRY_SMTP_URL is not set") {
        self.sender = sender
        self.from = from
        self.unconfiguredReason = unconfiguredReason
    }

    /// No mail server: runs with a `notify` block get a note saying their mail was not sent.
    public static let unconfigured = RunNotifier(sender: nil, from: "ferry@localhost")

    /// How many row errors a mail lists.
    public static let errorsListed = 5

    /// The event a finished run counts as: `success` only when it fully succeeded.
    public static func event(for status: RunStatus) -> NotifyEvent? {
        switch status {
        case .succeeded: .success
        case .failed, .partial, .interrupted: .failure
        case .running, .skipped: nil
        }
    }

    /// Sends the mail `settings` ask for about `record`, if any; returns the note to add to the run.
    public func notify(_ record: RunRecord, settings: NotifySettings, logger: Logger, now: Date = Date()) async -> String? {
        guard let event = Self.event(for: record.status), settings.on.contains(event), !settings.email.isEmpty else { return nil }
        let recipients = settings.email.joined(separator: ", ")
        guard let sender else {
            if await warning.first() {
                logger.warning("notifications are not sent: \(unconfiguredReason)", metadata: ["connection": "\(record.connection)"])
            }
            return "notification to \(recipients) not sent: \(unconfiguredReason)"
        }
        let message = Self.message(for: record, from: from, to: settings.email, now: now)
        // Its own task: a shutdown that cancels the run must not cut the mail about it short (curl's timeouts bound it).
        let outcome = await Task { () -> String? in
            do {
                try await sender.send(message)
                return nil
            } catch {
                return String(describing: error)
            }
        }.value
        if let outcome {
            logger.warning("notification not sent", metadata: ["run": "\(record.id)", "error": "\(outcome)"])
            return "notification to \(recipients) not sent: \(outcome)"
        }
        logger.info("notification sent", metadata: ["run": "\(record.id)", "to": "\(recipients)"])
        return "notification mailed to \(recipients)"
    }

    /// The mail about `record`: subject with status, connection and goal; body with counts, the first errors
    /// and the `ferry history show` command for the rest.
    public static func message(for record: RunRecord, from: String, to: [String], now: Date) -> MailMessage {
        let domain = from.split(separator: "@").last.map(String.init).flatMap { $0.isEmpty ? nil : $0 } ?? "localhost"
        let unique = String(UInt64.random(in: .min ... .max), radix: 16)
        let messageID = "ferry.run-\(record.id).\(Int(now.timeIntervalSince1970)).\(unique)@\(domain)"
        return MailMessage(from: from, to: to, subject: subject(for: record), body: body(for: record),
                           date: now, messageID: messageID)
    }

    /// `[ferry] failed: sendgrid-daily / sendgrid export … (run 12)`.
    public static func subject(for record: RunRecord) -> String {
        "[ferry] \(record.status.rawValue): \(record.connection) / \(record.goal) (run \(record.id))"
    }

    /// The plain-text body.
    public static func body(for record: RunRecord) -> String {
        var lines = [
            "Connection: \(record.connection)",
            "Goal:       \(record.goal)",
            "Status:     \(record.status.rawValue)",
            "Run:        \(record.id) (\(record.trigger.rawValue))",
            "Started:    \(ReportFormat.timestamp(record.startedAt))",
        ]
        if let ended = record.endedAt {
            lines.append("Ended:      \(ReportFormat.timestamp(ended)) (\(ReportFormat.duration(ended.timeIntervalSince(record.startedAt))))")
        }
        lines.append("Counts:     " + countsLine(record.counts))
        if let error = record.error { lines += ["", "Error: " + clipped(error)] }
        if !record.rowErrors.isEmpty {
            let shown = record.rowErrors.prefix(errorsListed)
            let total = max(record.counts.failed, record.rowErrors.count)
            lines += ["", "First errors (\(shown.count) of \(total)):"]
            lines += shown.map { "  \($0.location): \(clipped($0.reason))" }
        }
        if !record.notes.isEmpty {
            lines += ["", "Notes:"] + record.notes.map { "  " + clipped($0) }
        }
        lines += ["", "More: ferry history show \(record.id)"]
        return lines.joined(separator: "\n")
    }

    /// Every counter by name (`read 10, exported 8, failed 2`), the non-zero ones, or `none`.
    static func countsLine(_ counts: RunCounts) -> String {
        let parts = [("read", counts.read), ("created", counts.created), ("updated", counts.updated),
                     ("unchanged", counts.unchanged), ("exported", counts.exported), ("removed", counts.removed),
                     ("skipped", counts.skipped), ("failed", counts.failed)]
            .filter { $0.1 != 0 }.map { "\($0.0) \($0.1)" }
        return parts.isEmpty ? "none" : parts.joined(separator: ", ")
    }

    /// A message shortened to 500 characters, on one line.
    static func clipped(_ text: String) -> String {
        let flat = text.split(whereSeparator: \.isNewline).joined(separator: " ")
        return flat.count > 500 ? String(flat.prefix(500)) + "…" : flat
    }
}

/// True the first time it is asked, false after: a warning logged once per process, not once per run.
actor OnceFlag {
    private var done = false

    func first() -> Bool {
        defer { done = true }
        return !done
    }
}
