import Foundation

/// A `ferry-sandbox smtp` process on its own port, storing messages in its own folder, for one test.
struct SMTPSandboxServer: Sendable {
    static let user = "ferry-mailer"
    static let password = "smtp-pass-for-tests-only-5150"

    let process: ChildProcess
    let port: Int
    let directory: TemporaryDirectory

    var url: String { "smtp://127.0.0.1:\(port)" }
    var mailDirectory: URL { directory.url.appendingPathComponent("mail") }

    /// Starts the server (requiring AUTH with `user`/`password` when `authenticated`) and waits until it listens.
    static func start(_ extra: [String] = [], authenticated: Bool = true) throws -> SMTPSandboxServer {
        let directory = try TemporaryDirectory()
        var arguments = ["smtp", "--port", "0", "--dir", directory.url.appendingPathComponent("mail").path, "--seed", "7"]
        if authenticated { arguments += ["--user", user, "--password", password] }
        let process = ChildProcess(executable: try BuiltProducts.executable("ferry-sandbox"), arguments: arguments + extra)
        let line = try process.start(waitingFor: "listening on ")
        guard let port = line.split(separator: ":").last.flatMap({ Int($0) }) else {
            process.stop()
            throw ChildProcessError(description: "bad readiness line: \(line)")
        }
        return SMTPSandboxServer(process: process, port: port, directory: directory)
    }

    /// Stops the process and removes its folder.
    func stop() {
        process.stop()
        directory.remove()
    }

    /// Runs `body` against a fresh server, stopping it on every path.
    static func with<T>(_ extra: [String] = [], authenticated: Bool = true, _ body: (SMTPSandboxServer) async throws -> T) async throws -> T {
        let server = try start(extra, authenticated: authenticated)
        defer { server.stop() }
        return try await body(server)
    }

    /// The stored messages, oldest first (names sort by arrival).
    func messages() throws -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: mailDirectory.path)) ?? []
        return try names.filter { $0.hasSuffix(".eml") }.sorted().map {
            try String(contentsOf: mailDirectory.appendingPathComponent($0), encoding: .utf8)
        }
    }

    /// Every file in the mail folder, temporary ones included.
    func allFiles() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: mailDirectory.path)) ?? []).sorted()
    }
}
