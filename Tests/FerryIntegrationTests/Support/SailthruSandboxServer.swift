import Foundation

/// A `ferry-sandbox sailthru` process on its own port and state directory, for one test.
struct SailthruSandboxServer: Sendable {
    static let apiKey = "0123456789abcdef0123456789abcdef"
    static let secret = "s3cr3t-for-tests-only"

    let process: ChildProcess
    let port: Int
    let directory: TemporaryDirectory

    var baseURL: String { "http://127.0.0.1:\(port)" }

    /// The repository root, found from this file's path.
    static var repositoryRoot: URL {
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while dir.path != "/", !FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) {
            dir = dir.deletingLastPathComponent()
        }
        return dir
    }

    /// Starts the sandbox (seeded from `Fixtures/sailthru-seed.json` unless `seeded` is false) and waits until it listens.
    static func start(_ extra: [String] = [], seeded: Bool = true, jobDelay: Double = 0.2,
                      directory existing: TemporaryDirectory? = nil) throws -> SailthruSandboxServer {
        let directory = try existing ?? TemporaryDirectory()
        var arguments = ["sailthru", "--port", "0", "--api-key", apiKey, "--secret", secret,
                         "--state", directory.url.appendingPathComponent("state").path,
                         "--job-delay", String(jobDelay), "--seed", "42"]
        if seeded { arguments += ["--seed-file", repositoryRoot.appendingPathComponent("Fixtures/sailthru-seed.json").path] }
        let process = ChildProcess(executable: try BuiltProducts.executable("ferry-sandbox"), arguments: arguments + extra)
        let line = try process.start(waitingFor: "listening on ")
        guard let port = line.split(separator: ":").last.flatMap({ Int($0) }) else {
            process.stop()
            throw ChildProcessError(description: "bad readiness line: \(line)")
        }
        return SailthruSandboxServer(process: process, port: port, directory: directory)
    }

    /// Stops the process and removes its directory.
    func stop() {
        process.stop()
        directory.remove()
    }

    /// Runs `body` against a fresh sandbox, stopping it on every path.
    static func with<T>(_ extra: [String] = [], seeded: Bool = true, jobDelay: Double = 0.2,
                        _ body: (SailthruSandboxServer) async throws -> T) async throws -> T {
        let server = try start(extra, seeded: seeded, jobDelay: jobDelay)
        defer { server.stop() }
        return try await body(server)
    }

    /// `ferry-sandbox sailthru dump` of this server's state, parsed.
    func dump() throws -> [String: Any] {
        let result = try BuiltProducts.run("ferry-sandbox", ["sailthru", "dump", "--state", directory.url.appendingPathComponent("state").path])
        let data = Data(result.stdout.utf8)
        return (try JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:]
    }
}

/// A port on 127.0.0.1 where nothing listens (bound, then closed).
func closedLocalPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return Int(UInt16(bigEndian: address.sin_port))
}
