import Foundation

/// Appends the SendGrid sandbox's journal lines to the same `journal.jsonl` the shared `Journal` replays,
/// writing contact and job entries by hand: a `JSONEncoder` per contact was a third of an import's CPU.
/// Lines reach the file (write(2), no fsync) before the request that made them is answered.
struct SendGridJournalWriter {
    private var journal: Journal
    /// The line being written, kept between calls so each contact does not allocate its own.
    private var line: [UInt8] = []

    /// Opens (creating, and emptying when `truncate` is set) the journal for appending.
    init(directory: URL, truncate: Bool) throws {
        journal = try Journal(directory: directory, truncate: truncate)
    }

    /// Queues one entry as a line; `flush()` writes the queued lines.
    mutating func append(_ entry: SendGridJournalEntry) throws {
        guard entry.fields == nil, entry.lists == nil, entry.segments == nil else {
            // Fields, lists and segments change a handful of times per run: the encoder is fine for them.
            return try journal.append(entry)
        }
        line.removeAll(keepingCapacity: true)
        line.append(contentsOf: #"{"next_id":"#.utf8)
        line.append(contentsOf: String(entry.next_id).utf8)
        if let contact = entry.contact {
            line.append(contentsOf: #","contact":"#.utf8)
            Self.append(contact, to: &line)
        }
        if let job = entry.job {
            line.append(contentsOf: #","job":"#.utf8)
            Self.append(job, to: &line)
        }
        line.append(UInt8(ascii: "}"))
        try journal.appendLine(line)
    }

    /// Writes every queued line to the file.
    mutating func flush() throws { try journal.flush() }

    // MARK: - Hand-written entries (the shapes `SendGridJournalEntry`'s Codable reads back)

    static func append(_ contact: SendGridState.Contact, to out: inout [UInt8]) {
        out.append(contentsOf: #"{"id":"#.utf8)
        appendString(contact.id, to: &out)
        out.append(contentsOf: #","email":"#.utf8)
        appendString(contact.email, to: &out)
        out.append(contentsOf: #","reserved":{"#.utf8)
        var first = true
        for (key, value) in contact.reserved {
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            appendString(key, to: &out)
            out.append(UInt8(ascii: ":"))
            appendString(value, to: &out)
        }
        out.append(contentsOf: #"},"custom_fields":"#.utf8)
        appendJSON(.object(contact.custom_fields), to: &out)
        out.append(contentsOf: #","list_ids":"#.utf8)
        appendStrings(contact.list_ids, to: &out)
        out.append(contentsOf: #","created_at":"#.utf8)
        appendString(contact.created_at, to: &out)
        out.append(contentsOf: #","updated_at":"#.utf8)
        appendString(contact.updated_at, to: &out)
        out.append(UInt8(ascii: "}"))
    }

    static func append(_ job: SendGridState.Job, to out: inout [UInt8]) {
        out.append(contentsOf: #"{"id":"#.utf8)
        appendString(job.id, to: &out)
        out.append(contentsOf: #","status":"#.utf8)
        appendString(job.status, to: &out)
        out.append(contentsOf: #","ready_at":"#.utf8)
        appendJSON(.double(job.ready_at), to: &out)
        out.append(contentsOf: #","list_ids":"#.utf8)
        appendStrings(job.list_ids, to: &out)
        out.append(contentsOf: #","contacts":"#.utf8)
        appendJSON(.array(job.contacts), to: &out)
        out.append(contentsOf: #","requested_count":"#.utf8)
        out.append(contentsOf: String(job.requested_count).utf8)
        out.append(contentsOf: #","created_count":"#.utf8)
        out.append(contentsOf: String(job.created_count).utf8)
        out.append(contentsOf: #","updated_count":"#.utf8)
        out.append(contentsOf: String(job.updated_count).utf8)
        out.append(contentsOf: #","errors":["#.utf8)
        for (index, error) in job.errors.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            out.append(UInt8(ascii: "{"))
            if let email = error.email {
                out.append(contentsOf: #""email":"#.utf8)
                appendString(email, to: &out)
                out.append(UInt8(ascii: ","))
            }
            out.append(contentsOf: #""message":"#.utf8)
            appendString(error.message, to: &out)
            out.append(UInt8(ascii: "}"))
        }
        out.append(contentsOf: #"],"started_at":"#.utf8)
        appendString(job.started_at, to: &out)
        if let finished = job.finished_at {
            out.append(contentsOf: #","finished_at":"#.utf8)
            appendString(finished, to: &out)
        }
        out.append(UInt8(ascii: "}"))
    }

    // MARK: - JSON text

    /// Compact JSON of a value through the shared writer; `null` for one holding a non-finite number (parsed
    /// JSON and clocks give none).
    static func appendJSON(_ value: JSON, to out: inout [UInt8]) {
        let mark = out.count
        if !JSONBytes.write(value, to: &out) {
            out.removeSubrange(mark...)
            out.append(contentsOf: "null".utf8)
        }
    }

    static func appendStrings(_ values: [String], to out: inout [UInt8]) {
        out.append(UInt8(ascii: "["))
        for (index, value) in values.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            JSONBytes.appendString(value, to: &out)
        }
        out.append(UInt8(ascii: "]"))
    }

    static func appendString(_ value: String, to out: inout [UInt8]) {
        JSONBytes.appendString(value, to: &out)
    }
}
