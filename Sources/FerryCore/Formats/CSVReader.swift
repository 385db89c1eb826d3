import Foundation

/// One CSV record, or the reason it could not be read, with the line it started on.
public struct CSVRecord: Sendable {
    public let line: Int
    public let result: Result<[String], CSVRecordError>
}

/// Why one CSV record was refused; the reader goes on with the next one.
public struct CSVRecordError: Error, Hashable, Sendable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// A streaming RFC 4180 reader: quoted fields with commas, quotes and newlines, CRLF or LF, UTF-8.
///
/// Reads through a bounded buffer, so a file of any size streams; a record with a field larger than
/// `maximumFieldBytes` or invalid UTF-8 is reported and skipped, and reading continues after it.
public final class CSVReader {
    private let stream: ByteStream
    private let maximumFieldBytes: Int
    private var line = 1
    /// The field being read, kept between records so its storage is reused.
    private var field: [UInt8] = []
    /// The widest record so far, to size the next one's field list.
    private var lastWidth = 0
    /// When set, only the fields whose index is true here are returned as text; the others are checked
    /// (size limit, UTF-8) like every field but returned as "", which saves a String per unused cell.
    public var usedColumns: [Bool]?

    public init(stream: ByteStream, maximumFieldBytes: Int = 1 << 16) {
        self.stream = stream
        self.maximumFieldBytes = maximumFieldBytes
    }

    /// Opens `path` for streaming.
    public convenience init(path: String, maximumFieldBytes: Int = 1 << 16) throws(InputError) {
        self.init(stream: try ByteStream(path: path), maximumFieldBytes: maximumFieldBytes)
    }

    private enum QuoteState { case unquoted, quoted, quoteInQuoted }

    /// The record `nextRecord` is reading: its fields so far, the field being read and the first problem.
    /// Its methods are called from inside the scanning closure; as local functions capturing the reader's locals
    /// they had those locals checked for exclusive access at run time on every call (0.8 s a million rows).
    private struct RecordFields {
        var fields: [String] = []
        var field: [UInt8] = []
        var problem: String?
        var fieldWasQuoted = false
        let limit: Int
        let used: [Bool]?

        init(limit: Int, used: [Bool]?) {
            self.limit = limit
            self.used = used
        }

        mutating func finishField() {
            let column = fields.count
            if field.count > limit {
                problem = problem ?? "field \(fields.count + 1) is longer than the \(limit)-byte limit"
            } else if let used, column >= used.count || !used[column] {
                if field.contains(where: { $0 >= 0x80 }) && String(validating: field, as: UTF8.self) == nil {
                    problem = problem ?? "field \(fields.count + 1) is not valid UTF-8"
                } else {
                    fields.append("")
                }
            } else if !field.contains(where: { $0 >= 0x80 }) {
                // ASCII is UTF-8 as it stands. `String(validating:as:)` looks up generic type metadata on each call:
                // 0.3 s of a million-row import's reading thread, for cells that are nearly all ASCII.
                fields.append(String(decoding: field, as: UTF8.self))
            } else if let text = String(validating: field, as: UTF8.self) {
                fields.append(text)
            } else {
                problem = problem ?? "field \(fields.count + 1) is not valid UTF-8"
            }
            if problem != nil { fields.append("") }
            field.removeAll(keepingCapacity: true)
            fieldWasQuoted = false
        }

        mutating func appendRun(_ chunk: UnsafeBufferPointer<UInt8>, _ from: Int, _ to: Int) {
            // One byte past the limit is enough for the size check; memory stays bounded.
            let room = limit + 1 - field.count
            guard room > 0, to > from else { return }
            field.append(contentsOf: UnsafeBufferPointer(rebasing: chunk[from..<min(to, from + room)]))
        }
    }

    /// The next record, or nil at end of input. Blank lines are skipped.
    ///
    /// Works on the stream's buffer a run of bytes at a time (a field's plain bytes are copied in
    /// one go), not byte by byte: an import reads a million rows through here.
    public func nextRecord() throws(InputError) -> CSVRecord? {
        // The reader's state in locals for the call: the closure below touches them per byte run, and a class's
        // stored properties there would be checked for exclusive access at run time on every touch.
        var record = RecordFields(limit: maximumFieldBytes, used: usedColumns)
        swap(&record.field, &self.field)
        var line = self.line
        defer {
            swap(&record.field, &self.field)
            self.line = line
        }
        record.fields.reserveCapacity(lastWidth)
        record.field.removeAll(keepingCapacity: true)
        var startLine = line
        var state = QuoteState.unquoted
        var sawAnything = false
        var complete = false

        while !complete {
            let more = try stream.withChunk { chunk -> Int in
                let n = chunk.count
                if n > 0 { sawAnything = true }
                var i = 0
                while i < n {
                    switch state {
                    case .quoted:
                        var j = i
                        while j < n {
                            let b = chunk[j]
                            if b == 34 { break }
                            if b == 10 { line += 1 }
                            j += 1
                        }
                        record.appendRun(chunk, i, j)
                        if j < n {
                            state = .quoteInQuoted
                            j += 1
                        }
                        i = j
                    case .quoteInQuoted:
                        if chunk[i] == 34 {
                            record.appendRun(chunk, i, i + 1)
                            state = .quoted
                            i += 1
                        } else {
                            state = .unquoted  // the byte after the closing quote is read as unquoted
                        }
                    case .unquoted:
                        switch chunk[i] {
                        case 44:
                            record.finishField()
                            i += 1
                        case 34:
                            if record.field.isEmpty && !record.fieldWasQuoted {
                                state = .quoted
                                record.fieldWasQuoted = true
                            } else {
                                record.problem = record.problem ?? "a quote inside unquoted field \(record.fields.count + 1) (quote the whole field and double inner quotes)"
                            }
                            i += 1
                        case 13:
                            i += 1
                        case 10:
                            line += 1
                            i += 1
                            if record.fields.isEmpty && record.field.isEmpty && !record.fieldWasQuoted && record.problem == nil {
                                // A blank line is not a record.
                                startLine = line
                                continue
                            }
                            record.finishField()
                            complete = true
                            return i
                        default:
                            var j = i + 1
                            while j < n {
                                let b = chunk[j]
                                if b == 44 || b == 34 || b == 13 || b == 10 { break }
                                j += 1
                            }
                            record.appendRun(chunk, i, j)
                            i = j
                        }
                    }
                }
                return i
            }
            if !more { break }
        }
        if complete {
            lastWidth = max(lastWidth, record.fields.count)
            return CSVRecord(line: startLine, result: record.problem.map { .failure(CSVRecordError(message: $0)) } ?? .success(record.fields))
        }
        guard sawAnything else { return nil }
        if state == .quoted {
            return CSVRecord(line: startLine, result: .failure(CSVRecordError(message: "a quoted field that starts here is never closed")))
        }
        if record.fields.isEmpty && record.field.isEmpty && !record.fieldWasQuoted { return nil }
        record.finishField()
        return CSVRecord(line: startLine, result: record.problem.map { .failure(CSVRecordError(message: $0)) } ?? .success(record.fields))
    }
}

extension CSVReader {
    /// Folds a column name for matching: case, spaces and `_` ignored (`Profile Id` = `profile_id`).
    public static func foldedName(_ name: String) -> String {
        String(name.lowercased().unicodeScalars.filter { $0 != " " && $0 != "_" && $0 != "\u{FEFF}" }.map(Character.init))
    }
}
