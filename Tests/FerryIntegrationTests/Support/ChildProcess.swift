import Foundation

/// Errors from starting a helper binary in an integration test.
struct ChildProcessError: Error, CustomStringConvertible {
    let description: String
}

/// Finds the built executables (`ferry`, `ferry-sandbox`) of this package.
enum BuiltProducts {
    /// The directory holding the built products: next to the test bundle, else `.build/debug` above this file.
    static func directory(filePath: String = #filePath) -> URL? {
        var candidates: [URL] = []
        if let executable = Bundle.main.executableURL {
            candidates.append(executable.deletingLastPathComponent())
            // `swift test` runs `…/debug/ferryPackageTests.xctest`; the products sit beside it.
            candidates.append(executable.deletingLastPathComponent().deletingLastPathComponent())
        }
        var dir = URL(fileURLWithPath: filePath).deletingLastPathComponent()
        while dir.path != "/" {
            candidates.append(dir.appendingPathComponent(".build/debug"))
            dir = dir.deletingLastPathComponent()
        }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.appendingPathComponent("ferry-sandbox").path) }
    }

    /// The URL of one built executable, or an error naming where it looked.
    static func executable(_ name: String) throws -> URL {
        guard let dir = directory() else {
            throw ChildProcessError(description: "\(name) not built: run `swift build --build-tests` first")
        }
        return dir.appendingPathComponent(name)
    }
}

/// A started child process whose first stdout lines are read until a readiness line appears.
///
/// `@unchecked Sendable`: `Process` is thread-safe for `terminate`/`waitUntilExit`, and the
/// captured output is guarded by `lock`.
final class ChildProcess: @unchecked Sendable {
    let process = Process()
    private let stdoutPipe = Pipe()
    private let stderrPipe = Pipe()
    private let lock = NSLock()
    private var stdoutText = ""
    private var stderrText = ""

    init(executable: URL, arguments: [String]) {
        process.executableURL = executable
        process.arguments = arguments
        process.standardOutput = stdoutPipe
        process.standardError = stderrPipe
    }

    /// Starts the process and waits (up to `timeout`) for a stdout line with `prefix`; returns that line.
    func start(waitingFor prefix: String, timeout: TimeInterval = 20) throws -> String {
        stdoutPipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self, !data.isEmpty else { return }
            self.lock.withLock { self.stdoutText += String(decoding: data, as: UTF8.self) }
        }
        stderrPipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self, !data.isEmpty else { return }
            self.lock.withLock { self.stderrText += String(decoding: data, as: UTF8.self) }
        }
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let line = lock.withLock {
                stdoutText.split(separator: "\n").first { $0.hasPrefix(prefix) }.map(String.init)
            }
            if let line { return line }
            if !process.isRunning { break }
            Thread.sleep(forTimeInterval: 0.02)
        }
        let err = lock.withLock { stderrText }
        stop()
        throw ChildProcessError(description: "no '\(prefix)' line from \(process.executableURL?.lastPathComponent ?? "?"); stderr: \(err)")
    }

    /// Everything written to stderr so far.
    var standardError: String { lock.withLock { stderrText } }

    /// Terminates the process (SIGTERM) and waits for it.
    func stop() {
        stdoutPipe.fileHandleForReading.readabilityHandler = nil
        stderrPipe.fileHandleForReading.readabilityHandler = nil
        if process.isRunning {
            process.terminate()
            stopWaiting(for: process)
        }
    }

    deinit { stop() }
}

/// A fresh temporary directory for one test, removed by `remove()`.
struct TemporaryDirectory: Sendable {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    /// Deletes the directory and everything in it.
    func remove() { try? FileManager.default.removeItem(at: url) }
}
