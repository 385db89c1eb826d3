/// Where CSV bytes go: an in-memory buffer that an uploader drains chunk by chunk, or a test's array.
public protocol ByteSink {
    /// Appends `bytes` at the end.
    mutating func write(_ bytes: some Sequence<UInt8>)
}

extension Array: ByteSink where Element == UInt8 {
    public mutating func write(_ bytes: some Sequence<UInt8>) {
        append(contentsOf: bytes)
    }
}

/// Fixed names of Mapp's contact-import format.
public enum MappCSV {
    /// The column Mapp reads segment membership from, always last (the convention Lytics set for Mapp).
    public static let segmentMembershipHeader = "user.CustomAttribute.SegmentMembership"
    /// Headers Mapp accepts as the identifying first column.
    public static let identifierHeaders = ["user.Email", "user.MobileNumber", "user.FaxNumber", "user.Identifier"]
}

/// Why a Mapp CSV could not be written; each case names the header or row concerned.
public enum MappCSVError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No column was configured.
    case noColumns
    /// The first column must identify the contact (Mapp rejects the file otherwise).
    case firstColumnNotIdentifier(String)
    /// The same header appears twice.
    case duplicateHeader(String)
    /// `user.CustomAttribute.SegmentMembership` is added by the writer and may not be configured.
    case membershipColumnConfigured
    /// A row had a different number of values than there are columns.
    case wrongValueCount(row: Int, expected: Int, got: Int)
    /// A row had no identifier value; Mapp would skip it, so it must not be written.
    case emptyIdentifier(row: Int)

    public var description: String {
        switch self {
        case .noColumns:
            return "a Mapp export needs at least one column"
        case .firstColumnNotIdentifier(let header):
            return "the first Mapp column must be an identifier (\(MappCSV.identifierHeaders.joined(separator: ", "))), not '\(header)'"
        case .duplicateHeader(let header):
            return "the Mapp header '\(header)' appears twice"
        case .membershipColumnConfigured:
            return "'\(MappCSV.segmentMembershipHeader)' is always written as the last column; remove it from columns"
        case .wrongValueCount(let row, let expected, let got):
            return "row \(row) has \(got) values for \(expected) columns"
        case .emptyIdentifier(let row):
            return "row \(row) has no identifier value"
        }
    }
}

/// Writes Mapp's contact-import CSV: RFC 4180, every field double-quoted, UTF-8 without BOM, CRLF,
/// identifier column first and `user.CustomAttribute.SegmentMembership` last. Pure: no I/O.
public struct MappCSVWriter<Sink: ByteSink> {
    /// Every header in file order, the membership column included.
    public let headers: [String]
    /// Where the bytes went so far.
    public private(set) var sink: Sink
    /// Data rows written (the header row not counted).
    public private(set) var rowCount = 0
    private var hasWrittenHeader = false

    /// Checks `columnHeaders` (the configured columns, identifier first) and prepares to write into `sink`.
    public init(columnHeaders: [String], sink: Sink) throws(MappCSVError) {
        guard let first = columnHeaders.first else { throw .noColumns }
        guard MappCSV.identifierHeaders.contains(first) else { throw .firstColumnNotIdentifier(first) }
        var seen: Set<String> = []
        for header in columnHeaders {
            if header == MappCSV.segmentMembershipHeader { throw .membershipColumnConfigured }
            guard seen.insert(header.lowercased()).inserted else { throw .duplicateHeader(header) }
        }
        self.headers = columnHeaders + [MappCSV.segmentMembershipHeader]
        self.sink = sink
    }

    /// Writes the header row; `append` does it on the first row, so this is only needed for an empty file.
    public mutating func writeHeader() {
        guard !hasWrittenHeader else { return }
        hasWrittenHeader = true
        writeRecord(headers)
    }

    /// Writes one contact: `values[i]` holds the values of column `i` (several are joined with `,`),
    /// and `segments` the names for the membership column.
    public mutating func append(values: [[String]], segments: [String]) throws(MappCSVError) {
        let row = rowCount + 1
        guard values.count == headers.count - 1 else {
            throw .wrongValueCount(row: row, expected: headers.count - 1, got: values.count)
        }
        guard values[0].contains(where: { !$0.isEmpty }) else { throw .emptyIdentifier(row: row) }
        writeHeader()
        writeRecord(values.map { $0.joined(separator: ",") } + [segments.joined(separator: ",")])
        rowCount += 1
    }

    private mutating func writeRecord(_ fields: [String]) {
        var line: [UInt8] = []
        line.reserveCapacity(fields.reduce(2) { $0 + $1.utf8.count + 3 })
        for (index, field) in fields.enumerated() {
            if index > 0 { line.append(UInt8(ascii: ",")) }
            Self.appendQuoted(field, to: &line)
        }
        line.append(contentsOf: [0x0D, 0x0A])
        sink.write(line)
    }

    /// `"field"` with each `"` doubled; commas and line breaks need nothing more inside quotes.
    static func appendQuoted(_ field: String, to line: inout [UInt8]) {
        let quote = UInt8(ascii: "\"")
        line.append(quote)
        for byte in field.utf8 {
            if byte == quote { line.append(quote) }
            line.append(byte)
        }
        line.append(quote)
    }
}

extension MappCSVWriter where Sink == [UInt8] {
    /// A writer into an in-memory buffer, drained with `takeBytes()` as an upload goes.
    public init(columnHeaders: [String]) throws(MappCSVError) {
        try self.init(columnHeaders: columnHeaders, sink: [])
    }

    /// The bytes written since the last call, leaving the buffer empty: the next chunk for an uploader.
    public mutating func takeBytes() -> [UInt8] {
        defer { sink.removeAll(keepingCapacity: true) }
        return sink
    }
}
