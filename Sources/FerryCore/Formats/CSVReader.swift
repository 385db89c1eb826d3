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

    /// The next record, or nil at end of input. Blank lines are skipped.
    ///
    /// Works on the stream's buffer a run of bytes at a time (a field's plain bytes are copied in
    /// one go), not byte by byte: an import reads a million rows through here.
    public func nextRecord() throws(InputError) -> CSVRecord? {
        // The reader's state in locals for the call: the closures below touch them per byte run, and a class's
        // stored properties there would be checked for exclusive access at run time on every touch.
        var field: [UInt8] = []
        swap(&field, &self.field)
        var line = self.line
        defer {
            swap(&field, &self.field)
            self.line = line
        }
        var fields: [String] = []
        fields.reserveCapacity(lastWidth)
        field.removeAll(keepingCapacity: true)
        var problem: String?
        var startLine = line
        var state = QuoteState.unquoted
        var fieldWasQuoted = false
        var sawAnything = false
        var complete = false
        let limit = maximumFieldBytes

        let used = usedColumns
        func finishField() {
            let column = fields.count
            if field.count > limit {
                problem = problem ?? "field \(fields.count + 1) is longer than the \(limit)-byte limit"
            } else if let used, column >= used.count || !used[column] {
                if field.contains(where: { $0 >= 0x80 }) && String(validating: field, as: UTF8.self) == nil {
                    problem = problem ?? "field \(fields.count + 1) is not valid UTF-8"
                } else {
                    fields.append("")
                }
            } else if let text = String(validating: field, as: UTF8.self) {
                fields.append(text)
            } else {
                problem = problem ?? "field \(fields.count + 1) is not valid UTF-8"
            }
            if problem != nil { fields.append("") }
            field.removeAll(keepingCapacity: true)
            fieldWasQuoted = false
        }
        func appendRun(_ chunk: UnsafeBufferPointer<UInt8>, _ from: Int, _ to: Int) {
            // One byte past the limit is enough for the size check; memory stays bounded.
            let room = limit + 1 - field.count
            guard room > 0, to > from else { return }
            field.append(contentsOf: UnsafeBufferPointer(rebasing: chunk[from..<min(to, from + room)]))
        }

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
                        appendRun(chunk, i, j)
                        if j < n {
                            state = .quoteInQuoted
                            j += 1
                        }
                        i = j
                    case .quoteInQuoted:
                        if chunk[i] == 34 {
                            appendRun(chunk, i, i + 1)
                            state = .quoted
                            i += 1
                        } else {
                            state = .unquoted  // the byte after the closing quote is read as unquoted
                        }
                    case .unquoted:
                        switch chunk[i] {
                        case 44:
                            finishField()
                            i += 1
                        case 34:
                            if field.isEmpty && !fieldWasQuoted {
                                state = .quoted
                                fieldWasQuoted = true
                            } else {
                                problem = problem ?? "a quote inside unquoted field \(fields.count + 1) (quote the whole field and double inner quotes)"
                            }
                            i += 1
                        case 13:
                            i += 1
                        case 10:
                            line += 1
                            i += 1
                            if fields.isEmpty && field.isEmpty && !fieldWasQuoted && problem == nil {
                                // A blank line is not a record.
                                startLine = line
                                continue
                            }
                            finishField()
                            complete = true
                            return i
                        default:
                            var j = i + 1
                            while j < n {
                                let b = chunk[j]
                                if b == 44 || b == 34 || b == 13 || b == 10 { break }
                                j += 1
                            }
                            appendRun(chunk, i, j)
                            i = j
                        }
                    }
                }
                return i
            }
            if !more { break }
        }
        if complete {
            lastWidth = max(lastWidth, fields.count)
            return CSVRecord(line: startLine, result: problem.map { .failure(CSVRecordError(message: $0)) } ?? .success(fields))
        }
        guard sawAnything else { return nil }
        if state == .quoted {
            return CSVRecord(line: startLine, result: .failure(CSVRecordError(message: "a quoted field that starts here is never closed")))
        }
        if fields.isEmpty && field.isEmpty && !fieldWasQuoted { return nil }
        finishField()
        return CSVRecord(line: startLine, result: problem.map { .failure(CSVRecordError(message: $0)) } ?? .success(fields))
    }
}

extension CSVReader {
    /// Folds a column name for matching: case, spaces and `_` ignored (`Profile Id` = `profile_id`).
    public static func foldedName(_ name: String) -> String {
        String(name.lowercased().unicodeScalars.filter { $0 != " " && $0 != "_" && $0 != "\u{FEFF}" }.map(Character.init))
    }
}
