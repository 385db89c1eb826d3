import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An update job's upload file: written once, streamed by the transport, deleted after.
enum JobFile {
    /// Why a job file could not be written: the path and the system's message.
    struct WriteError: Error, CustomStringConvertible {
        let path: String
        let message: String
        var description: String { "could not write the update job file \(path): \(message)" }
    }

    /// Writes `bytes` to a new file at `path` (owner-only, refusing an existing file).
    ///
    /// Not `Data.write(to:)`: it fsyncs, a disk flush per job for a file that lives a second and holds nothing
    /// a crash could lose (the batch's intent row names its users).
    static func write(_ bytes: [UInt8], to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw WriteError(path: path, message: String(cString: strerror(errno))) }
        defer { close(fd) }
        var written = 0
        try bytes.withUnsafeBytes { raw in
            while written < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + written, raw.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw WriteError(path: path, message: String(cString: strerror(errno)))
                }
                written += n
            }
        }
    }
}
