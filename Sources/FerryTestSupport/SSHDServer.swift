import FerryCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A test failure in setting up the sshd double, with what the tool printed.
public struct SSHDSetupError: Error, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}

/// An OpenSSH key pair made with `ssh-keygen` for one test.
public struct SSHKeyPair: Sendable {
    /// Path of the OpenSSH-format private key.
    public var privateKeyPath: String
    /// `type base64` from the `.pub` file, without the comment.
    public var publicKey: String
    /// `SHA256:…` as `ssh-keygen -l -E sha256` prints it.
    public var fingerprint: String

    public static func generate(at path: String, passphrase: String = "") throws -> SSHKeyPair {
        try runTool("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", passphrase, "-C", "ferry-test", "-f", path])
        let publicLine = try String(contentsOfFile: path + ".pub", encoding: .utf8)
        let fields = publicLine.split(separator: " ")
        let listing = try runTool("/usr/bin/ssh-keygen", ["-l", "-E", "sha256", "-f", path + ".pub"])
        let listed = listing.split(separator: " ")
        guard fields.count >= 2, listed.count >= 2 else {
            throw SSHDSetupError(description: "unexpected ssh-keygen output: \(publicLine) / \(listing)")
        }
        return SSHKeyPair(privateKeyPath: path, publicKey: "\(fields[0]) \(fields[1])", fingerprint: String(listed[1]))
    }
}

/// The three ways a `known_hosts` line can name our server.
public enum KnownHostsForm: String, Sendable, CaseIterable {
    /// `127.0.0.1 ssh-ed25519 …` (libssh2 also matches it for a non-22 port).
    case plain
    /// `[127.0.0.1]:PORT ssh-ed25519 …`, as OpenSSH writes it for a non-22 port.
    case bracketed
    /// `|1|salt|hash ssh-ed25519 …`, hashed by `ssh-keygen -H`.
    case hashed

}

/// A real OpenSSH `sshd` on 127.0.0.1 and a free port, serving only SFTP, with keys generated for the test.
///
/// The server is not chrooted: `ChrootDirectory` demands that every component of the path be root-owned
/// and not group- or world-writable, which `/tmp` (mode 1777) never is. Instead `ForceCommand
/// internal-sftp -d ROOT` starts every session in `root` inside the temporary directory, the tests only
/// use paths relative to it, and no shell, forwarding or other subsystem is offered.
///
/// `@unchecked Sendable`: the stored properties are constants except `hasExited`, which `exit` guards.
public final class SSHDServer: @unchecked Sendable {
    public let directory: URL
    /// Where SFTP sessions start; relative remote paths land here.
    public let root: URL
    public let port: Int
    public let hostKey: SSHKeyPair
    /// Authorised key without a passphrase.
    public let clientKey: SSHKeyPair
    public let passphrase = "correct horse battery staple"
    /// Where sshd's `-e` log goes.
    public let logPath: String
    /// sshd's listener process, which this test started.
    private let pid: pid_t
    private let exit = NSLock()
    private var hasExited = false

    /// Generates keys and config, starts sshd, and waits until the port accepts connections.
    ///
    /// The work (ssh-keygen, waitpid, polling the port) blocks, so it runs on a thread of its own:
    /// on Swift's two-thread cooperative pool it would stall the other tests and skew their timings.
    public static func start() async throws -> SSHDServer {
        try await onOwnThread { try startBlocking() }
    }

    /// Stops sshd from a thread of its own (see `start()`).
    public func stopped() async {
        _ = try? await onOwnThread { self.stop() }
    }

    private static func startBlocking() throws -> SSHDServer {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("ferry-sshd-\(UUID().uuidString.prefix(8))", isDirectory: true)
        let root = directory.appendingPathComponent("root", isDirectory: true)
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o755])
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory.path)
        // sshd refuses to start as root without its privilege-separation directory; Debian's service
        // creates it at boot, a container has none.
        if getuid() == 0 && !FileManager.default.fileExists(atPath: "/run/sshd") {
            try? FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true,
                                                     attributes: [.posixPermissions: 0o755])
        }
        let d = directory.path
        let hostKey = try SSHKeyPair.generate(at: "\(d)/host_ed25519")
        let clientKey = try SSHKeyPair.generate(at: "\(d)/client_ed25519")
        try "\(clientKey.publicKey)\n"
            .write(toFile: "\(d)/authorized_keys", atomically: true, encoding: .utf8)

        var lastError = ""
        for _ in 0..<3 {
            let port = try freePort()
            let config = """
                ListenAddress 127.0.0.1
                Port \(port)
                HostKey \(hostKey.privateKeyPath)
                PidFile \(d)/sshd.pid
                AuthorizedKeysFile \(d)/authorized_keys
                StrictModes no
                UsePAM no
                PermitRootLogin prohibit-password
                PubkeyAuthentication yes
                PasswordAuthentication yes
                KbdInteractiveAuthentication no
                AllowTcpForwarding no
                AllowAgentForwarding no
                X11Forwarding no
                PermitTTY no
                LogLevel VERBOSE
                Subsystem sftp internal-sftp
                ForceCommand internal-sftp -d \(root.path)

                """
            let configPath = "\(d)/sshd_config"
            try config.write(toFile: configPath, atomically: true, encoding: .utf8)
            let logPath = "\(d)/sshd.log"
            try? FileManager.default.removeItem(atPath: logPath)  // a retry must not read the last attempt's log
            let pid = try Spawn.start("/usr/sbin/sshd", ["-D", "-e", "-f", configPath], outputPath: logPath)
            let server = SSHDServer(directory: directory, root: root, port: port, hostKey: hostKey,
                                    clientKey: clientKey, logPath: logPath, pid: pid)
            if server.waitUntilAccepting() { return server }
            lastError = server.logText
            server.stop(removingFiles: false)
        }
        try? FileManager.default.removeItem(at: directory)
        throw SSHDSetupError(description: "sshd did not start: \(lastError)")
    }

    private init(directory: URL, root: URL, port: Int, hostKey: SSHKeyPair, clientKey: SSHKeyPair,
                 logPath: String, pid: pid_t) {
        self.directory = directory
        self.root = root
        self.port = port
        self.hostKey = hostKey
        self.clientKey = clientKey
        self.logPath = logPath
        self.pid = pid
    }

    private func waitUntilAccepting() -> Bool {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if reapIfExited() { return false }
            // Parallel tests can be handed the same free port; only our own sshd's log line proves
            // that the listener on it is this server and not another test's.
            if logText.contains("Server listening on 127.0.0.1 port \(port).") && Self.accepts(port: port) { return true }
            if logText.contains("Address already in use") { return false }
            usleep(50_000)
        }
        return false
    }

    private func reapIfExited() -> Bool {
        exit.withLock {
            if !hasExited, Spawn.exitStatusIfExited(pid) != nil { hasExited = true }
            return hasExited
        }
    }

    /// What sshd logged so far.
    public var logText: String {
        (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    }

    /// Stops sshd and every per-connection child, then removes the temporary directory.
    public func stop(removingFiles: Bool = true) {
        let family = Self.descendants(of: pid)
        signalTree(SIGTERM)
        exit.withLock {
            if !hasExited { _ = Spawn.wait(pid) }
            hasExited = true
        }
        for child in family { kill(child, SIGKILL) }
        if removingFiles { try? FileManager.default.removeItem(at: directory) }
    }

    /// Kills sshd and its per-connection children at once, as a crashed server would vanish.
    public func killAbruptly() {
        signalTree(SIGKILL)
    }

    /// Stops (SIGSTOP) every per-connection process: the server is there but never answers again,
    /// like a hung host. `stop()` still ends them, as SIGKILL works on stopped processes.
    public func freezeSessions() {
        for child in Self.descendants(of: pid) { kill(child, SIGSTOP) }
    }

    /// Kills (SIGKILL) every per-connection process but keeps the listener: a client's connection drops
    /// mid-transfer as if the network failed, and the next connection is served as usual.
    public func killSessions() {
        for child in Self.descendants(of: pid) { kill(child, SIGKILL) }
    }

    /// Signals sshd and its descendants by pid: connection handlers are separate processes (sshd forks
    /// and calls setsid for each), so killing the listener alone would leave a session running.
    private func signalTree(_ signal: Int32) {
        guard !exit.withLock({ hasExited }) else { return }
        let family = Self.descendants(of: pid)
        kill(pid, signal)
        for child in family { kill(child, signal) }
    }

    private static func descendants(of pid: Int32) -> [Int32] {
        var parents: [Int32: Int32] = [:]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let child = Int32(entry),
                  let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, let parent = Int32(fields[1]) { parents[child] = parent }
        }
        var result: [Int32] = []
        var frontier = [pid]
        while let next = frontier.popLast() {
            let children = parents.filter { $0.value == next }.map(\.key)
            result += children
            frontier += children
        }
        return result
    }

    // MARK: Client-side files and configuration

    /// Generates a client key encrypted with `passphrase` and authorises it; only the tests that need
    /// one pay for its bcrypt key derivation (a quarter second of CPU).
    public func makeEncryptedClientKey() async throws -> SSHKeyPair {
        let directory = directory, passphrase = passphrase
        return try await onOwnThread {
            let key = try SSHKeyPair.generate(at: directory.appendingPathComponent("client_encrypted_ed25519").path,
                                              passphrase: passphrase)
            let authorized = try FileHandle(forWritingTo: directory.appendingPathComponent("authorized_keys"))
            defer { try? authorized.close() }
            try authorized.seekToEnd()
            try authorized.write(contentsOf: Data("\(key.publicKey)\n".utf8))
            return key
        }
    }

    /// Writes a `known_hosts` file naming this server in `form`, holding `key` (default: the real host key).
    public func knownHostsFile(_ form: KnownHostsForm, key: String? = nil, name: String? = nil) throws -> String {
        let path = directory.appendingPathComponent("known_hosts-\(name ?? form.rawValue)").path
        let hostKeyLine = key ?? hostKey.publicKey
        let host = form == .plain ? "127.0.0.1" : "[127.0.0.1]:\(port)"
        // A comment, a key type libssh2 does not know and an unrelated host first, as in a real
        // known_hosts, so the check has to skip them and pick the right line.
        let text = """
            # ferry test known_hosts
            other.invalid sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29tAAAAIA==
            [example.invalid]:2222 \(hostKeyLine)
            \(host) \(hostKeyLine)

            """
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        if form == .hashed {
            try runTool("/usr/bin/ssh-keygen", ["-H", "-f", path])
            let hashed = try String(contentsOfFile: path, encoding: .utf8)
            guard hashed.split(separator: "\n").allSatisfy({ $0.hasPrefix("|1|") || $0.hasPrefix("#") }) else {
                throw SSHDSetupError(description: "ssh-keygen -H did not hash: \(hashed)")
            }
        }
        return path
    }

    /// A configuration for this server; by default key auth and the plain known_hosts form.
    public func configuration(
        username: String = "root",
        authentication: FileDropConfiguration.Authentication? = nil,
        hostKey policy: FileDropConfiguration.HostKeyPolicy? = nil,
        operationTimeout: Duration = .seconds(10)
    ) throws -> FileDropConfiguration {
        FileDropConfiguration(
            host: "127.0.0.1", port: port, username: username,
            authentication: authentication ?? .privateKey(path: clientKey.privateKeyPath, passphrase: nil),
            hostKey: try policy ?? .knownHosts(path: knownHostsFile(.bracketed)),
            folder: "", connectTimeout: .seconds(5), operationTimeout: operationTimeout)
    }

    // MARK: Ports

    /// A port nothing listens on right now (the kernel's pick for an ephemeral bind).
    public static func freePort() throws -> Int {
        let (fd, port) = try reservedPort()
        close(fd)
        return port
    }

    /// A socket bound to 127.0.0.1 on a fresh port but not listening: connects to it are refused, and no
    /// other test can take the port while the socket stays open. The caller closes `fd`.
    public static func reservedPort() throws -> (fd: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SSHDSetupError(description: "socket: \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            close(fd)
            throw SSHDSetupError(description: "bind: \(errno)")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }

    /// Whether a TCP connect to 127.0.0.1:`port` succeeds.
    public static func accepts(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}

/// Runs blocking test set-up on a new thread, off the cooperative pool, and returns its result.
public func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}
