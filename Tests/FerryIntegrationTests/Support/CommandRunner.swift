import FerryTestSupport
import Foundation

/// What a finished command printed and how it exited.
struct CommandResult: Sendable {
    var stdout: String
    var stderr: String
    var status: Int32
}

/// Runs the built `ferry` and `ferry-sandbox` binaries the way a user would.
extension BuiltProducts {
    /// The package's root folder (for Fixtures/ and Schedules/).
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// Runs `product` with `arguments` and waits for it; output goes through files so large output cannot block.
    /// posix_spawn + waitpid, not Foundation's `Process`: on Linux its `waitUntilExit` can miss a child's exit
    /// when many tests spawn at once, and a whole test run once hung on such a zombie.
    static func run(_ product: String, _ arguments: [String], environment: [String: String] = [:]) throws -> CommandResult {
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        env["FERRY_DB"] = nil
        let outPath = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString).path
        let errPath = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString).path
        defer {
            try? FileManager.default.removeItem(atPath: outPath)
            try? FileManager.default.removeItem(atPath: errPath)
        }
        let status = try Spawn.run(try executable(product).path, arguments, environment: env, stdoutPath: outPath, stderrPath: errPath)
        return CommandResult(stdout: try String(contentsOfFile: outPath, encoding: .utf8),
                             stderr: try String(contentsOfFile: errPath, encoding: .utf8),
                             status: status)
    }

    static func ferry(_ arguments: [String], environment: [String: String] = [:]) throws -> CommandResult {
        try run("ferry", arguments, environment: environment)
    }
}
/// A fresh temporary folder per test, with what the integration tests put in it.
typealias Workspace = TemporaryFolder

extension TemporaryFolder {
    /// Copies the repository's `Schedules/` here, so tests use the real example files.
    func copyExampleSchedules() -> String {
        let target = (path as NSString).appendingPathComponent("Schedules")
        try! FileManager.default.copyItem(atPath: BuiltProducts.packageRoot.appendingPathComponent("Schedules").path, toPath: target)
        return target
    }

    var db: String { (path as NSString).appendingPathComponent("ferry.sqlite") }
}

/// The environment the example connections need (secrets are fakes).
let exampleEnvironment = [
    "SAILTHRU_API_KEY": "it-key-0001", "SAILTHRU_API_SECRET": "it-secret-0001", "SAILTHRU_BASE_URL": "http://127.0.0.1:9",
    "SENDGRID_API_KEY": "SG.it-secret", "SENDGRID_BASE_URL": "http://127.0.0.1:9",
    "MAPP_SFTP_HOST": "127.0.0.1", "MAPP_SFTP_PORT": "22", "MAPP_SFTP_USER": "ferry",
    "MAPP_SFTP_KEY": "/nonexistent/key", "MAPP_KNOWN_HOSTS": "/nonexistent/known_hosts",
]
