import CSSH2
import FerryCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A libssh2 session, its socket and its SFTP channel.
///
/// `@unchecked Sendable` is safe because the only code that touches this object after `init` runs as
/// jobs of its session's `SessionThread`, one at a time on one OS thread; the raw pointers never
/// leave that thread. `deinit` may run elsewhere, but only once no other reference exists, and by
/// then `shutdown()` has normally run on the session thread already.
final class SSH2Connection: @unchecked Sendable {
    let host: String
    let port: Int
    private let operationTimeout: Duration
    private var socket: Int32 = -1
    private var session: OpaquePointer?
    private var sftp: OpaquePointer?
    /// Set after a timeout or a lost connection: the goodbye is skipped, it could only wait again.
    private var isBroken = false

    init(host: String, port: Int, operationTimeout: Duration) {
        self.host = host
        self.port = port
        self.operationTimeout = operationTimeout
    }

    deinit { shutdown() }

    /// True between a successful `open` and `shutdown`.
    var isOpen: Bool { sftp != nil }

    // MARK: Connecting

    /// Connects, verifies the host key (before any credential is sent), authenticates and starts SFTP.
    func open(_ configuration: FileDropConfiguration) throws(SSH2Error) {
        do {
            try openSteps(configuration)
        } catch {
            shutdown()
            throw error
        }
    }

    private func openSteps(_ configuration: FileDropConfiguration) throws(SSH2Error) {
        let initResult = SSH2Library.initResult
        guard initResult == 0 else {
            throw failure(.other, "initialise", message: "libssh2_init failed with code \(initResult)", code: initResult)
        }
        switch TCPSocket.connect(host: host, port: port, timeout: configuration.connectTimeout) {
        case .success(let fd): socket = fd
        case .failure(let failure): throw self.failure(.connect, "connect", message: failure.message)
        }
        guard let session = cssh2_session_init() else {
            throw failure(.other, "connect", message: "libssh2 could not allocate a session")
        }
        self.session = session
        libssh2_session_set_blocking(session, 1)
        libssh2_session_set_timeout(session, milliseconds(operationTimeout))
        if libssh2_session_handshake(session, socket) != 0 {
            throw lastError("handshake", defaultKind: .handshake)
        }
        try verifyHostKey(configuration.hostKey)
        try authenticate(username: configuration.username, configuration.authentication)
        guard let sftp = libssh2_sftp_init(session) else {
            throw lastError("start SFTP subsystem")
        }
        self.sftp = sftp
    }

    /// The server's host key fingerprint as OpenSSH prints it (`SHA256:` + unpadded base64).
    func offeredFingerprint() -> String? {
        guard let session, let hash = libssh2_hostkey_hash(session, LIBSSH2_HOSTKEY_HASH_SHA256) else { return nil }
        let digest = Data(bytes: hash, count: 32)
        return "SHA256:" + digest.base64EncodedString().replacingOccurrences(of: "=", with: "")
    }

    private func verifyHostKey(_ policy: FileDropConfiguration.HostKeyPolicy) throws(SSH2Error) {
        guard let session else { return }
        var keyLength = 0
        var keyType: Int32 = 0
        guard let key = libssh2_session_hostkey(session, &keyLength, &keyType),
              let offered = offeredFingerprint() else {
            throw failure(.hostKeyCheck, "verify host key", message: "the server sent no host key")
        }
        switch policy {
        case .sha256(let pinned):
            guard Self.normalizedFingerprint(pinned) == Self.normalizedFingerprint(offered) else {
                throw failure(.hostKeyChanged, "verify host key",
                              message: "host key for \(host):\(port) does not match the pinned fingerprint; the server offered \(offered)")
            }
        case .knownHosts(let path):
            guard FileManager.default.isReadableFile(atPath: path) else {
                throw failure(.hostKeyCheck, "verify host key",
                              message: "known_hosts file \(path) cannot be read; refusing \(host):\(port), which offered \(offered)")
            }
            guard let hosts = libssh2_knownhost_init(session) else {
                throw lastError("verify host key", defaultKind: .hostKeyCheck)
            }
            defer { libssh2_knownhost_free(hosts) }
            if libssh2_knownhost_readfile(hosts, path, LIBSSH2_KNOWNHOST_FILE_OPENSSH) < 0 {
                let cause = lastError("verify host key", defaultKind: .hostKeyCheck).message
                throw failure(.hostKeyCheck, "verify host key", message: "cannot parse known_hosts file \(path): \(cause)")
            }
            let typeMask = LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | Self.knownHostKeyBits(keyType)
            let check = key.withMemoryRebound(to: CChar.self, capacity: keyLength) { keyPointer in
                libssh2_knownhost_checkp(hosts, host, Int32(port), keyPointer, keyLength, typeMask, nil)
            }
            switch check {
            case LIBSSH2_KNOWNHOST_CHECK_MATCH:
                return
            case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
                throw failure(.hostKeyChanged, "verify host key",
                              message: "host key for \(host):\(port) has CHANGED from the one in \(path); the server offered \(offered). Refusing to connect")
            case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
                throw failure(.hostKeyUnknown, "verify host key",
                              message: "host \(host):\(port) is not in \(path); the server offered \(offered). Add its key to known_hosts to trust it")
            default:
                throw failure(.hostKeyCheck, "verify host key",
                              message: "could not check the host key of \(host):\(port) (offered \(offered)) against \(path)")
            }
        }
    }

    /// Drops the `SHA256:` prefix and base64 padding so either spelling of a fingerprint compares equal.
    static func normalizedFingerprint(_ text: String) -> String {
        var value = text.trimmingCharacters(in: .whitespaces)
        if value.uppercased().hasPrefix("SHA256:") { value = String(value.dropFirst(7)) }
        while value.hasSuffix("=") { value.removeLast() }
        return value
    }

    private static func knownHostKeyBits(_ hostKeyType: Int32) -> Int32 {
        switch hostKeyType {
        case LIBSSH2_HOSTKEY_TYPE_RSA: return LIBSSH2_KNOWNHOST_KEY_SSHRSA
        case LIBSSH2_HOSTKEY_TYPE_DSS: return LIBSSH2_KNOWNHOST_KEY_SSHDSS
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_256: return LIBSSH2_KNOWNHOST_KEY_ECDSA_256
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_384: return LIBSSH2_KNOWNHOST_KEY_ECDSA_384
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_521: return LIBSSH2_KNOWNHOST_KEY_ECDSA_521
        case LIBSSH2_HOSTKEY_TYPE_ED25519: return LIBSSH2_KNOWNHOST_KEY_ED25519
        default: return LIBSSH2_KNOWNHOST_KEY_UNKNOWN
        }
    }

    private func authenticate(username: String, _ authentication: FileDropConfiguration.Authentication) throws(SSH2Error) {
        guard let session else { return }
        let userLength = UInt32(username.utf8.count)
        switch authentication {
        case .password(let password):
            let rc = libssh2_userauth_password_ex(session, username, userLength, password, UInt32(password.utf8.count), nil)
            if rc != 0 {
                let cause = lastError("authenticate", defaultKind: .authentication)
                throw failure(cause.kind, "authenticate", message: "password authentication as \(username) failed: \(cause.message)", code: cause.code)
            }
        case .privateKey(let path, let passphrase):
            guard FileManager.default.isReadableFile(atPath: path) else {
                throw failure(.authentication, "authenticate", message: "private key file \(path) cannot be read")
            }
            // A nil public key makes libssh2 derive it from the private key.
            let rc = libssh2_userauth_publickey_fromfile_ex(session, username, userLength, nil, path, passphrase ?? "")
            if rc != 0 {
                let cause = lastError("authenticate", defaultKind: .authentication)
                let hint = cause.code == LIBSSH2_ERROR_FILE
                    ? " (wrong passphrase, or not an OpenSSH/PEM private key)" : ""
                throw failure(cause.kind, "authenticate",
                              message: "key authentication as \(username) with \(path) failed: \(cause.message)\(hint)", code: cause.code)
            }
        }
    }

    // MARK: SFTP operations (each runs on the session thread)

    func makeDirectories(_ path: String) throws(SSH2Error) {
        let sftp = try requireSFTP("mkdir -p", path)
        var current = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/") where component != "." {
            current += (current.isEmpty || current.hasSuffix("/") ? "" : "/") + component
            if libssh2_sftp_mkdir_ex(sftp, current, UInt32(current.utf8.count), 0o755) == 0 { continue }
            // Servers answer "already exists" as a generic failure, so an existing directory is checked by stat.
            let mkdirError = lastError("mkdir -p", path: current)
            if case .success(let attributes) = stat(current), Self.isDirectory(attributes) { continue }
            throw mkdirError
        }
    }

    func openFile(_ path: String) throws(SSH2Error) -> OpaquePointer {
        let sftp = try requireSFTP("open for writing", path)
        let flags = UInt(LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_TRUNC)
        guard let handle = libssh2_sftp_open_ex(sftp, path, UInt32(path.utf8.count), flags, 0o644, LIBSSH2_SFTP_OPENFILE) else {
            throw lastError("open for writing", path: path)
        }
        return handle
    }

    /// Adds `bytes` to the file's stream and hands libssh2 every byte it has not acknowledged yet.
    ///
    /// libssh2 cuts what it is given into 30 kB SFTP write requests, sends as many as the channel window
    /// allows and returns as soon as the oldest is acknowledged; the bytes it has not reported as
    /// acknowledged must be passed again, first, on the next call (it skips the ones already sent). So
    /// the stream's unacknowledged tail is kept in `file`. While no more than `inFlight` bytes are
    /// unacknowledged and `moreQueued()` says another job already waits to add data, this returns (even
    /// before writing anything): up to `inFlight` bytes then wait for this file's next write (or its close)
    /// rather than go out in a small request. With nothing queued it writes until every byte is
    /// acknowledged, so no byte is left unsent.
    /// After a failure every later write fails the same way: the stream would continue at a wrong offset.
    func write(_ file: SFTPFileHandle, _ bytes: [UInt8], inFlight: Int, moreQueued: () -> Bool, path: String) throws(SSH2Error) {
        if let failure = file.failure { throw failure }
        _ = try requireSFTP("write", path)
        file.unacknowledged.append(contentsOf: bytes)
        try pump(file, inFlight: inFlight, moreQueued: moreQueued, path: path)
    }

    private func pump(_ file: SFTPFileHandle, inFlight: Int, moreQueued: () -> Bool, path: String) throws(SSH2Error) {
        var failure: SSH2Error?
        while true {
            let remaining = file.unacknowledged.count - file.acknowledged
            if remaining == 0 || (remaining <= inFlight && moreQueued()) { break }
            let start = file.acknowledged
            let written = file.unacknowledged.withUnsafeBytes { raw in
                libssh2_sftp_write(file.pointer, raw.baseAddress!.assumingMemoryBound(to: CChar.self) + start, remaining)
            }
            if written <= 0 {
                failure = written < 0 ? lastError("write", path: path)
                    : self.failure(.other, "write", path: path, message: "the server accepted no bytes")
                break
            }
            file.acknowledged += written
        }
        if file.acknowledged == file.unacknowledged.count {
            file.unacknowledged.removeAll(keepingCapacity: true)
            file.acknowledged = 0
        } else if file.acknowledged >= 1 << 20 {
            file.unacknowledged.removeFirst(file.acknowledged)
            file.acknowledged = 0
        }
        if let failure {
            file.failure = failure
            throw failure
        }
    }

    /// Waits for every byte written to `file` to be acknowledged (when `drain` and no write failed), then
    /// closes it; a drain failure is thrown after the handle is closed.
    func closeFile(_ file: SFTPFileHandle, drain: Bool, path: String) throws(SSH2Error) {
        guard isOpen else { return }
        var drainError: SSH2Error?
        if drain, file.failure == nil {
            do { try pump(file, inFlight: 0, moreQueued: { false }, path: path) } catch { drainError = error }
        }
        file.unacknowledged = []
        file.acknowledged = 0
        if libssh2_sftp_close_handle(file.pointer) != 0 {
            let closeError = lastError("close", path: path)
            throw drainError ?? closeError
        }
        if let drainError { throw drainError }
    }

    func size(of path: String) throws(SSH2Error) -> UInt64 {
        _ = try requireSFTP("stat", path)
        let attributes = try stat(path).get()
        guard attributes.flags & UInt(LIBSSH2_SFTP_ATTR_SIZE) != 0 else {
            throw failure(.sftp, "stat", path: path, message: "the server did not report a size")
        }
        return attributes.filesize
    }

    /// Renames with overwrite. Prefers `posix-rename@openssh.com` (atomic replace) when the loaded
    /// libssh2 offers it; otherwise sends a rename with OVERWRITE|ATOMIC|NATIVE, which SFTP v3 servers
    /// such as OpenSSH ignore, refusing an existing target. Then, and only if the source exists and the
    /// target is a regular file, the target is removed and the rename retried: a short window without
    /// the target, harmless for file drops whose names are unique.
    func rename(_ source: String, to destination: String) throws(SSH2Error) {
        let sftp = try requireSFTP("rename", source)
        let sourceLength = source.utf8.count, destinationLength = destination.utf8.count
        if let posixRename = SSH2Library.posixRename {
            if posixRename(sftp, source, sourceLength, destination, destinationLength) == 0 { return }
            let error = lastError("rename", path: source)
            guard error.sftpStatus == UInt(LIBSSH2_FX_OP_UNSUPPORTED) else { throw renamed(error, destination) }
        }
        let flags = Int(LIBSSH2_SFTP_RENAME_OVERWRITE | LIBSSH2_SFTP_RENAME_ATOMIC | LIBSSH2_SFTP_RENAME_NATIVE)
        if libssh2_sftp_rename_ex(sftp, source, UInt32(sourceLength), destination, UInt32(destinationLength), flags) == 0 {
            return
        }
        let error = renamed(lastError("rename", path: source), destination)
        guard case .success = stat(source),
              case .success(let target) = stat(destination), !Self.isDirectory(target) else { throw error }
        try remove(destination)
        if libssh2_sftp_rename_ex(sftp, source, UInt32(sourceLength), destination, UInt32(destinationLength), flags) != 0 {
            throw renamed(lastError("rename", path: source), destination)
        }
    }

    private func renamed(_ error: SSH2Error, _ destination: String) -> SSH2Error {
        var error = error
        error.message = "to '\(destination)': " + error.message
        return error
    }

    func remove(_ path: String) throws(SSH2Error) {
        let sftp = try requireSFTP("remove", path)
        if libssh2_sftp_unlink_ex(sftp, path, UInt32(path.utf8.count)) != 0 {
            throw lastError("remove", path: path)
        }
    }

    func list(_ path: String) throws(SSH2Error) -> [RemoteFileInfo] {
        let sftp = try requireSFTP("list", path)
        let directory = path.isEmpty ? "." : path
        guard let handle = libssh2_sftp_open_ex(sftp, directory, UInt32(directory.utf8.count), 0, 0, LIBSSH2_SFTP_OPENDIR) else {
            throw lastError("list", path: path)
        }
        defer { libssh2_sftp_close_handle(handle) }
        var entries: [RemoteFileInfo] = []
        var name = [CChar](repeating: 0, count: 4096)
        while true {
            var attributes = LIBSSH2_SFTP_ATTRIBUTES()
            let length = libssh2_sftp_readdir_ex(handle, &name, name.count, nil, 0, &attributes)
            if length == 0 { break }
            if length < 0 { throw lastError("list", path: path) }
            let entry = name.prefix(Int(length)).withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
            if entry == "." || entry == ".." { continue }
            let hasSize = attributes.flags & UInt(LIBSSH2_SFTP_ATTR_SIZE) != 0
            entries.append(RemoteFileInfo(name: entry, size: hasSize ? attributes.filesize : nil,
                                          isDirectory: Self.isDirectory(attributes)))
        }
        return entries.sorted { $0.name < $1.name }
    }

    private func stat(_ path: String) -> Result<LIBSSH2_SFTP_ATTRIBUTES, SSH2Error> {
        guard let sftp else { return .failure(closedError("stat", path)) }
        var attributes = LIBSSH2_SFTP_ATTRIBUTES()
        if libssh2_sftp_stat_ex(sftp, path, UInt32(path.utf8.count), LIBSSH2_SFTP_STAT, &attributes) != 0 {
            return .failure(lastError("stat", path: path))
        }
        return .success(attributes)
    }

    private static func isDirectory(_ attributes: LIBSSH2_SFTP_ATTRIBUTES) -> Bool {
        attributes.flags & UInt(LIBSSH2_SFTP_ATTR_PERMISSIONS) != 0 && cssh2_is_directory(attributes.permissions) != 0
    }

    // MARK: Teardown and errors

    /// Says goodbye if the server is still there and frees everything; safe to call twice.
    func shutdown() {
        if isBroken && socket >= 0 {
            // Makes every send and receive in the teardown below fail at once instead of waiting.
            Glibc.shutdown(socket, Int32(SHUT_RDWR))
        }
        if let session {
            // The server may be gone; a short timeout keeps the goodbye from costing a full operation timeout.
            libssh2_session_set_timeout(session, 2000)
            if let sftp { libssh2_sftp_shutdown(sftp) }
            libssh2_session_disconnect_ex(session, SSH_DISCONNECT_BY_APPLICATION, "ferry is done", "")
            libssh2_session_free(session)
        }
        sftp = nil
        session = nil
        if socket >= 0 {
            close(socket)
            socket = -1
        }
    }

    private func requireSFTP(_ operation: String, _ path: String?) throws(SSH2Error) -> OpaquePointer {
        guard let sftp else { throw closedError(operation, path) }
        return sftp
    }

    func closedError(_ operation: String, _ path: String?) -> SSH2Error {
        failure(.closed, operation, path: path, message: "the connection is closed")
    }

    private func failure(_ kind: SSH2Error.Kind, _ operation: String, path: String? = nil, message: String, code: Int32 = 0) -> SSH2Error {
        SSH2Error(kind: kind, operation: operation, host: host, port: port, path: path, message: message, code: code)
    }

    /// libssh2's last error on this session, with the SFTP status spelled out when there is one.
    private func lastError(_ operation: String, path: String? = nil, defaultKind: SSH2Error.Kind? = nil) -> SSH2Error {
        guard let session else { return closedError(operation, path) }
        var code: Int32 = 0
        let text = cssh2_last_error_message(session, &code).map { String(cString: $0) } ?? ""
        var message = text.isEmpty ? "libssh2 error \(code)" : text
        var status: UInt?
        if code == LIBSSH2_ERROR_SFTP_PROTOCOL, let sftp {
            let value = libssh2_sftp_last_error(sftp)
            status = value
            message += " (\(SSH2Error.statusName(value)))"
        }
        var kind = SSH2Error.kind(forCode: code)
        if kind == .other, let defaultKind { kind = defaultKind }
        if kind == .timeout { message += " after \(operationTimeout)" }
        if kind == .disconnected { message += " (the connection to the server was lost)" }
        if kind == .timeout || kind == .disconnected { isBroken = true }
        return SSH2Error(kind: kind, operation: operation, host: host, port: port, path: path,
                         message: message, code: code, sftpStatus: status)
    }
}
