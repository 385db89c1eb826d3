import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Child processes for the sshd double, started with posix_spawn and reaped with waitpid.
///
/// Why not Foundation's `Process`: on Linux it learns that a child exited through a run-loop source
/// on the thread that launched it, and Swift Testing's parallel tests hop between cooperative
/// threads that never run a run loop, so `waitUntilExit()` can wait forever.
public enum Spawn {
    /// Starts `path` with `arguments`, stdin from `inputPath` (or /dev/null), stdout and stderr appended to `outputPath`.
    public static func start(_ path: String, _ arguments: [String], outputPath: String, inputPath: String? = nil) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, inputPath ?? "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, nil, argv, environ)
        guard rc == 0 else { throw SSHDSetupError(description: "cannot start \(path): \(String(cString: strerror(rc)))") }
        return pid
    }

    /// Runs `path` to completion with the environment `environment`, stdin from /dev/null, stdout and stderr
    /// into separate files; returns the exit status (or 128 + signal).
    public static func run(_ path: String, _ arguments: [String], environment: [String: String],
                           stdoutPath: String, stderrPath: String) throws -> Int32 {
        wait(try launch(path, arguments, environment: environment, stdoutPath: stdoutPath, stderrPath: stderrPath))
    }

    /// Starts `path` like `run` but returns at once with its pid; the caller reaps it with `wait`
    /// (tests that kill a run part-way through watch it from outside meanwhile).
    public static func launch(_ path: String, _ arguments: [String], environment: [String: String],
                              stdoutPath: String, stderrPath: String) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { argv.forEach { free($0) }; envp.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, nil, argv, envp)
        guard rc == 0 else { throw SSHDSetupError(description: "cannot start \(path): \(String(cString: strerror(rc)))") }
        return pid
    }

    /// Waits for `pid` and returns its exit status (or 128 + signal).
    public static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        return exitCode(status)
    }

    /// The exit status of `pid` if it has exited (reaping it), nil while it runs.
    public static func exitStatusIfExited(_ pid: pid_t) -> Int32? {
        var status: Int32 = 0
        let rc = waitpid(pid, &status, WNOHANG)
        return rc == pid ? exitCode(status) : nil
    }

    private static func exitCode(_ status: Int32) -> Int32 {
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }
}

/// Runs a tool to completion and returns what it printed; throws with that output on a non-zero exit.
@discardableResult
public func runTool(_ path: String, _ arguments: [String], input: String? = nil) throws -> String {
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-tool-\(UUID().uuidString)")
    let outputPath = scratch.path + ".out", inputPath = scratch.path + ".in"
    defer {
        try? FileManager.default.removeItem(atPath: outputPath)
        try? FileManager.default.removeItem(atPath: inputPath)
    }
    if let input { try input.write(toFile: inputPath, atomically: false, encoding: .utf8) }
    let pid = try Spawn.start(path, arguments, outputPath: outputPath, inputPath: input == nil ? nil : inputPath)
    let status = Spawn.wait(pid)
    let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
    guard status == 0 else {
        throw SSHDSetupError(description: "\(path) \(arguments.joined(separator: " ")) exited \(status): \(text)")
    }
    return text
}
