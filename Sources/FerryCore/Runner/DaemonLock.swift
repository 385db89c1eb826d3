import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One daemon per store: an exclusive `flock` on a file beside the database, released when the process ends.
///
/// A kernel lock, not a row, so a daemon killed with SIGKILL never leaves a stale lease behind.
public final class DaemonLock: @unchecked Sendable {
    // The descriptor is written once in init and closed once in deinit; nothing else touches it.
    private let fd: Int32
    /// The lock file's path.
    public let path: String

    /// Why the lock could not be taken.
    public enum Failure: Error, CustomStringConvertible {
        case held(path: String, owner: String)
        case unusable(path: String, reason: String)

        public var description: String {
            switch self {
            case .held(let path, let owner):
                return "another ferry daemon is already running on this store (\(owner); lock \(path)); stop it first"
            case .unusable(let path, let reason):
                return "cannot use the daemon lock \(path): \(reason)"
            }
        }
    }

    /// Takes the lock for the store at `databasePath`, or throws `.held` naming the running daemon.
    public init(databasePath: String) throws(Failure) {
        path = databasePath + ".daemon.lock"
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .unusable(path: path, reason: String(cString: strerror(errno))) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let owner = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            close(fd)
            throw .held(path: path, owner: owner.map { "pid \($0)" } ?? "unknown pid")
        }
        let pid = "\(getpid())\n"
        _ = ftruncate(fd, 0)
        _ = pid.withCString { write(fd, $0, strlen($0)) }
    }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }
}
