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
    static func run(_ product: String, _ arguments: [String], environment: [String: String] = [:],
                    currentDirectory: String? = nil) throws -> CommandResult {
        let process = Process()
        process.executableURL = try executable(product)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        env["FERRY_DB"] = nil
        process.environment = env
        if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
        let outURL = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        let errURL = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: outURL)
            try? FileManager.default.removeItem(at: errURL)
        }
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return CommandResult(stdout: try String(contentsOf: outURL, encoding: .utf8),
                             stderr: try String(contentsOf: errURL, encoding: .utf8),
                             status: process.terminationStatus)
    }

    static func ferry(_ arguments: [String], environment: [String: String] = [:], currentDirectory: String? = nil) throws -> CommandResult {
        try run("ferry", arguments, environment: environment, currentDirectory: currentDirectory)
    }
}

/// A fresh temporary folder per test, removed when released.
final class Workspace: @unchecked Sendable {
    let path: String

    init() {
        path = NSTemporaryDirectory() + "ferry-it-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    @discardableResult
    func write(_ name: String, _ text: String) -> String {
        let full = (path as NSString).appendingPathComponent(name)
        try! FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try! Data(text.utf8).write(to: URL(fileURLWithPath: full))
        return full
    }

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
