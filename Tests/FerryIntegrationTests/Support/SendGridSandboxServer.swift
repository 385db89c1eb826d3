import Foundation

/// A `ferry-sandbox sendgrid` process on its own port and state directory, for one test.
struct SendGridSandboxServer: Sendable {
    static let apiKey = "SG.sandbox-key-for-tests-only.0123456789"

    let process: ChildProcess
    let port: Int
    let directory: TemporaryDirectory

    var baseURL: String { "http://127.0.0.1:\(port)" }
    var stateDirectory: String { directory.url.appendingPathComponent("state").path }

    /// Starts the sandbox and waits until it listens.
    static func start(_ extra: [String] = [], jobDelay: Double = 0.2) throws -> SendGridSandboxServer {
        let directory = try TemporaryDirectory()
        let arguments = ["sendgrid", "--port", "0", "--api-key", apiKey,
                         "--state", directory.url.appendingPathComponent("state").path,
                         "--job-delay", String(jobDelay), "--seed", "42"]
        let process = ChildProcess(executable: try BuiltProducts.executable("ferry-sandbox"), arguments: arguments + extra)
        let line = try process.start(waitingFor: "listening on ")
        guard let port = line.split(separator: ":").last.flatMap({ Int($0) }) else {
            process.stop()
            throw ChildProcessError(description: "bad readiness line: \(line)")
        }
        return SendGridSandboxServer(process: process, port: port, directory: directory)
    }

    /// Stops the process and removes its directory.
    func stop() {
        process.stop()
        directory.remove()
    }

    /// Runs `body` against a fresh sandbox, stopping it on every path.
    static func with<T>(_ extra: [String] = [], jobDelay: Double = 0.2,
                        _ body: (SendGridSandboxServer) async throws -> T) async throws -> T {
        let server = try start(extra, jobDelay: jobDelay)
        defer { server.stop() }
        return try await body(server)
    }

    /// `ferry-sandbox sendgrid dump` of this server's state, parsed.
    func dump() throws -> [String: Any] {
        let result = try BuiltProducts.run("ferry-sandbox", ["sendgrid", "dump", "--state", stateDirectory])
        return (try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]) ?? [:]
    }

    /// The dumped contacts by email.
    func contacts() throws -> [String: [String: Any]] {
        var result: [String: [String: Any]] = [:]
        for contact in try dump()["contacts"] as? [[String: Any]] ?? [] {
            if let email = contact["email"] as? String { result[email] = contact }
        }
        return result
    }

    /// A contact's custom field value by field name.
    func field(_ name: String, of email: String) throws -> Any? {
        (try contacts()[email]?["custom_fields"] as? [String: Any])?[name]
    }

    /// The dumped segments by name.
    func segments() throws -> [String: [String: Any]] {
        var result: [String: [String: Any]] = [:]
        for segment in try dump()["segments"] as? [[String: Any]] ?? [] {
            if let name = segment["name"] as? String { result[name] = segment }
        }
        return result
    }
}
