import Foundation

/// A `ferry daemon` child process whose log (stderr) goes to a file the test can poll.
final class DaemonProcess: @unchecked Sendable {
    let process = Process()
    let logPath: String

    init(arguments: [String], environment: [String: String] = [:], logPath: String) throws {
        self.logPath = logPath
        process.executableURL = try BuiltProducts.executable("ferry")
        process.arguments = ["daemon"] + arguments
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Waits until the log holds `text` (or the process exits); true when found.
    @discardableResult
    func waitForLog(_ text: String, timeout: TimeInterval = 20) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if log.contains(text) { return true }
            if !process.isRunning { return log.contains(text) }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return false
    }

    /// Sends a signal and, for SIGTERM/SIGINT, waits for the exit status.
    func signal(_ signal: Int32) {
        kill(process.processIdentifier, signal)
    }

    func waitForExit(timeout: TimeInterval = 20) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        return process.isRunning ? nil : process.terminationStatus
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            stopWaiting(for: process)
        }
    }
}
