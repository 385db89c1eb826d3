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
    private var pendingByte: UInt8?

    public init(stream: ByteStream, maximumFieldBytes: Int = 1 << 16) {
        self.stream = stream
        self.maximumFieldBytes = maximumFieldBytes
    }

    /// Opens `path` for streaming.
    public convenience init(path: String, maximumFieldBytes: Int = 1 << 16) throws(InputError) {
        self.init(stream: try ByteStream(path: path), maximumFieldBytes: maximumFieldBytes)
    }

    private func next() throws(InputError) -> UInt8? {
        if let b = pendingByte { pendingByte = nil; return b }
        return try stream.nextByte()
    }

    /// The next record, or nil at end of input. Blank lines are skipped.
    public func nextRecord() throws(InputError) -> CSVRecord? {
        var fields: [String] = []
        var field: [UInt8] = []
        var problem: String?
        var startLine = line
        var inQuotes = false
        var fieldWasQuoted = false
        var sawAnything = false

        func finishField() {
            if field.count > maximumFieldBytes {
                problem = problem ?? "field \(fields.count + 1) is longer than the \(maximumFieldBytes)-byte limit"
            } else if let text = String(validating: field, as: UTF8.self) {
                fields.append(text)
            } else {
                problem = problem ?? "field \(fields.count + 1) is not valid UTF-8"
            }
            if problem != nil { fields.append("") }
            field.removeAll(keepingCapacity: true)
            fieldWasQuoted = false
        }

        while let byte = try next() {
            sawAnything = true
            if inQuotes {
                if byte == UInt8(ascii: "\"") {
                    if let following = try next() {
                        if following == UInt8(ascii: "\"") {
                            append(byte, to: &field)
                        } else {
                            inQuotes = false
                            pendingByte = following
                        }
                    } else {
                        inQuotes = false
                    }
                } else {
                    if byte == 10 { line += 1 }
                    append(byte, to: &field)
                }
                continue
            }
            switch byte {
            case UInt8(ascii: ","):
                finishField()
            case UInt8(ascii: "\""):
                if field.isEmpty && !fieldWasQuoted {
                    inQuotes = true
                    fieldWasQuoted = true
                } else {
                    problem = problem ?? "a quote inside unquoted field \(fields.count + 1) (quote the whole field and double inner quotes)"
                }
            case 13:
                break
            case 10:
                line += 1
                if fields.isEmpty && field.isEmpty && !fieldWasQuoted && problem == nil {
                    // A blank line is not a record.
                    startLine = line
                    continue
                }
                finishField()
                return CSVRecord(line: startLine, result: problem.map { .failure(CSVRecordError(message: $0)) } ?? .success(fields))
            default:
                append(byte, to: &field)
            }
        }
        guard sawAnything else { return nil }
        if inQuotes {
            return CSVRecord(line: startLine, result: .failure(CSVRecordError(message: "a quoted field that starts here is never closed")))
        }
        if fields.isEmpty && field.isEmpty && !fieldWasQuoted { return nil }
        finishField()
        return CSVRecord(line: startLine, result: problem.map { .failure(CSVRecordError(message: $0)) } ?? .success(fields))
    }

    @inline(__always)
    private func append(_ byte: UInt8, to field: inout [UInt8]) {
        // One byte past the limit is enough for the size check; memory stays bounded.
        if field.count <= maximumFieldBytes { field.append(byte) }
    }
}

extension CSVReader {
    /// Folds a column name for matching: case, spaces and `_` ignored (`Profile Id` = `profile_id`).
    public static func foldedName(_ name: String) -> String {
        String(name.lowercased().unicodeScalars.filter { $0 != " " && $0 != "_" && $0 != "\u{FEFF}" }.map(Character.init))
    }
}
