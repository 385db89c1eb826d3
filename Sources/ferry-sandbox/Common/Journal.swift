import Foundation

/// An append-only file of JSON lines, one per change to a sandbox's state: each change costs one line
/// instead of a rewrite of the whole state. Lines reach the file (write(2), no fsync) before the request
/// that made them is answered, so they survive a killed sandbox; the owner folds them into its snapshot
/// files when it starts.
struct Journal {
    /// The journal file inside a state directory.
    static func url(in directory: URL) -> URL { directory.appendingPathComponent("journal.jsonl") }

    private let fd: Int32
    private let path: String
    private var buffer: [UInt8] = []
    private let encoder: JSONEncoder

    /// Opens (creating, and emptying when `truncate` is set) the journal for appending.
    init(directory: URL, truncate: Bool) throws {
        path = Self.url(in: directory).path
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0o644)
        guard fd >= 0 else { throw JournalError(path: path, line: nil, message: String(cString: strerror(errno))) }
        encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .secondsSince1970
        encoder.outputFormatting = [.withoutEscapingSlashes]
    }

    /// Queues one entry; `flush()` writes the queued lines.
    mutating func append(_ entry: some Encodable) throws {
        try appendLine(Array(try encoder.encode(entry)))
    }

    /// Queues one line already written as JSON (without its newline) by a caller that knows its shape.
    mutating func appendLine(_ line: [UInt8]) throws {
        buffer += line
        buffer.append(UInt8(ascii: "\n"))
        if buffer.count >= 1 << 20 { try flush() }
    }

    /// Writes every queued line to the file.
    mutating func flush() throws {
        var offset = 0
        while offset < buffer.count {
            let written = buffer.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                throw JournalError(path: path, line: nil, message: String(cString: strerror(errno)))
            }
            offset += written
        }
        buffer.removeAll(keepingCapacity: buffer.count <= 1 << 22)
    }

    /// Decodes every line of the journal in `directory`, in order. A last line without its newline is the
    /// torn write of a killed sandbox: it was never acknowledged, so it is skipped.
    static func replay<Entry: Decodable>(_ type: Entry.Type, in directory: URL, _ apply: (Entry) throws -> Void) throws {
        let url = url(in: directory)
        guard FileManager.default.fileExists(atPath: url.path) else { return }
        let data = try Data(contentsOf: url)
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        var start = data.startIndex
        var line = 1
        while start < data.endIndex {
            guard let end = data[start...].firstIndex(of: UInt8(ascii: "\n")) else { break }
            if end > start {
                do {
                    try apply(decoder.decode(Entry.self, from: data[start..<end]))
                } catch {
                    throw JournalError(path: url.path, line: line, message: "\(error)")
                }
            }
            start = end + 1
            line += 1
        }
    }
}

/// A journal that cannot be read or written: the file, the line when known, and why.
struct JournalError: Error, CustomStringConvertible {
    var path: String
    var line: Int?
    var message: String

    var description: String { "\(path)\(line.map { ":\($0)" } ?? ""): \(message)" }
}
