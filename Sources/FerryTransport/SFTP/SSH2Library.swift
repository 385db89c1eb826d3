import CSSH2
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Process-wide libssh2 setup, done once: Swift runs a `static let` initialiser exactly once, thread-safely.
enum SSH2Library {
    /// `libssh2_init`'s result (0 on success). Ignoring SIGPIPE here too: a write to a socket the
    /// server closed must come back as an error, not kill the process.
    static let initResult: Int32 = {
        signal(SIGPIPE, SIG_IGN)
        return libssh2_init(0)
    }()

    /// `libssh2_sftp_posix_rename_ex` when the loaded libssh2 has it (1.11 and later; Debian 12 ships 1.10).
    static let posixRename: cssh2_posix_rename_fn? = {
        guard let process = dlopen(nil, RTLD_NOW),
              let symbol = dlsym(process, "libssh2_sftp_posix_rename_ex") else { return nil }
        return unsafeBitCast(symbol, to: cssh2_posix_rename_fn.self)
    }()
}

/// Milliseconds in a `Duration`, clamped to what libssh2 and poll() accept.
func milliseconds(_ duration: Duration) -> Int {
    let (seconds, attoseconds) = duration.components
    let ms = seconds * 1000 + attoseconds / 1_000_000_000_000_000
    return Int(max(1, min(ms, Int64(Int32.max))))
}
