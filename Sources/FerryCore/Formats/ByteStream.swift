import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Why an input file could not be read.
public struct InputError: Error, Hashable, Sendable, CustomStringConvertible {
    public let file: String
    public let message: String
    public var description: String { "\(file): \(message)" }
}

/// Reads a file in fixed-size chunks, so inputs of any size stream through a bounded buffer.
public final class ByteStream {
    /// The file's path, for messages.
    public let path: String
    private let fd: Int32
    private var buffer: [UInt8]
    private var start = 0
    private var end = 0
    private var isAtEOF = false

    /// Opens `path` for reading; throws a readable error when it is missing or unreadable.
    public init(path: String, chunkSize: Int = 1 << 20) throws(InputError) {
        self.path = path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw InputError(file: path, message: "no such file")
        }
        guard !isDirectory.boolValue else { throw InputError(file: path, message: "is a folder, not a file") }
        fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw InputError(file: path, message: "cannot open: \(String(cString: strerror(errno)))") }
        buffer = [UInt8](repeating: 0, count: chunkSize)
    }

    deinit { close(fd) }

    /// Refills the buffer when it is empty; false at end of file.
    private func fill() throws(InputError) -> Bool {
        if start < end { return true }
        if isAtEOF { return false }
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n >= 0 else { throw InputError(file: path, message: "read failed: \(String(cString: strerror(errno)))") }
        start = 0
        end = n
        if n == 0 { isAtEOF = true }
        return n > 0
    }

    /// The next line without its `\n` (and without a trailing `\r`), or nil at end of file.
    /// A line longer than `maximumLength` is skipped to its end and returned as `.tooLong`.
    public func nextLine(maximumLength: Int) throws(InputError) -> Line? {
        var line: [UInt8] = []
        var length = 0
        var sawAny = false
        while try fill() {
            sawAny = true
            let newline = buffer[start..<end].firstIndex(of: 10)
            let stop = newline ?? end
            length += stop - start
            if length <= maximumLength { line.append(contentsOf: buffer[start..<stop]) }
            start = newline.map { $0 + 1 } ?? end
            if newline != nil { break }
        }
        guard sawAny else { return nil }
        if length > maximumLength { return .tooLong(length) }
        if line.last == 13 { line.removeLast() }
        return .bytes(line)
    }

    /// Hands the unread bytes of the current chunk (refilled when empty) to `body`, which returns how
    /// many it used; false at end of file. Lets a parser scan runs of bytes instead of calling per byte.
    @inline(__always)
    public func withChunk(_ body: (UnsafeBufferPointer<UInt8>) -> Int) throws(InputError) -> Bool {
        guard try fill() else { return false }
        let used = buffer.withUnsafeBufferPointer { body(UnsafeBufferPointer(rebasing: $0[start..<end])) }
        start += used
        return true
    }

    /// The next byte, or nil at end of file.
    @inline(__always)
    public func nextByte() throws(InputError) -> UInt8? {
        guard try fill() else { return nil }
        defer { start += 1 }
        return buffer[start]
    }

    /// One line from `nextLine`.
    public enum Line {
        case bytes([UInt8])
        case tooLong(Int)
    }
}
