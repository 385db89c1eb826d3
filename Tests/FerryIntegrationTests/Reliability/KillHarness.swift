import FerryCore
import FerryTestSupport
import Foundation
import Testing

/// The seed of the reliability suites' dice: `FERRY_RELIABILITY_SEED` to replay a failure, else a fixed one,
/// so `make test` is deterministic in the choices it makes (the machine's timing still varies).
enum ReliabilitySeed {
    static func value(default fallback: UInt64) -> UInt64 {
        ProcessInfo.processInfo.environment["FERRY_RELIABILITY_SEED"].flatMap { UInt64($0) } ?? fallback
    }
}

/// The dice kill points are chosen with.
typealias KillDice = SplitMix64

/// What a `ferry run` that was to be killed did.
struct KilledRun: Sendable, CustomStringConvertible {
    /// Whether SIGKILL landed while the run was recorded as running (else it finished first).
    var killed: Bool
    var status: Int32
    /// The progress measure when the kill was sent.
    var observedAt: Int
    var stdout: String
    var stderr: String

    var description: String {
        killed ? "killed at \(observedAt)" : "finished first (exit \(status)): \(stdout.suffix(400)) \(stderr.suffix(400))"
    }
}

/// Starts `ferry run CONNECTION --now` and kills it with SIGKILL the moment `trigger` (polled every
/// millisecond on a thread of its own) returns true while the run is recorded as `running` in the store:
/// the kill points are observed from outside (the sandbox's request counter, the store, the sshd folder),
/// never guessed with sleeps.
func runAndKill(connection: String, schedules: String, db: String, environment: [String: String],
                measure: @escaping @Sendable () -> Int, killAt threshold: Int) async throws -> KilledRun {
    let executable = try BuiltProducts.executable("ferry").path
    var env = ProcessInfo.processInfo.environment
    for (k, v) in environment { env[k] = v }
    env["FERRY_DB"] = nil
    let childEnvironment = env
    return try await onOwnThread {
        // The store exists (profiles were loaded), so this process can watch the run table while ferry writes.
        let database = try AppDatabase.open(path: db)
        let ledger = RunLedger(database: database)
        let before = try ledger.runs(connection: connection, limit: 1).first?.id ?? 0
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-kill-\(UUID().uuidString)").path
        defer {
            try? FileManager.default.removeItem(atPath: scratch + ".out")
            try? FileManager.default.removeItem(atPath: scratch + ".err")
        }
        let pid = try Spawn.launch(executable, ["run", connection, "--now", "--schedules", schedules, "--db", db],
                                   environment: childEnvironment, stdoutPath: scratch + ".out", stderrPath: scratch + ".err")
        var status: Int32?
        var observed = 0
        var killed = false
        let deadline = ContinuousClock.now + .seconds(120)
        var running = false
        while status == nil {
            if !running {
                // A read can meet a locked file while ferry writes; that just means "not yet".
                if let newest = try? ledger.runs(connection: connection, limit: 1).first, newest.id > before {
                    running = newest.status == .running
                }
            }
            if running {
                observed = measure()
                if observed >= threshold {
                    killed = kill(pid, SIGKILL) == 0
                    status = Spawn.wait(pid)
                    break
                }
            }
            if ContinuousClock.now > deadline {
                kill(pid, SIGKILL)
                status = Spawn.wait(pid)
                break
            }
            status = Spawn.exitStatusIfExited(pid)
            if status == nil { usleep(1000) }
        }
        let finalStatus = status ?? -1
        return KilledRun(killed: killed && finalStatus == 128 + SIGKILL, status: finalStatus, observedAt: observed,
                         stdout: (try? String(contentsOfFile: scratch + ".out", encoding: .utf8)) ?? "",
                         stderr: (try? String(contentsOfFile: scratch + ".err", encoding: .utf8)) ?? "")
    }
}

/// The statuses of a connection's runs, oldest first, read from the store.
func runStatuses(connection: String, db: String) throws -> [RunStatus] {
    try RunLedger(database: try AppDatabase.open(path: db)).runs(connection: connection, limit: 100).reversed().map(\.status)
}

/// The runs of a connection, oldest first, as `ferry history --json` shows them.
func historyRuns(connection: String, schedules: String, db: String) async throws -> [[String: Any]] {
    let arguments = ["history", connection, "--json", "--limit", "100", "--schedules", schedules, "--db", db]
    let result = try await onOwnThread { try BuiltProducts.ferry(arguments) }
    let object = (try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8))) as? [String: Any] ?? [:]
    let runs = (object["runs"] as? [[String: Any]]) ?? []
    return runs.reversed()
}

/// What a sandbox's front counted: `GET /_sandbox/requests`.
struct SandboxCounters: Sendable {
    var requests = 0
    var throttled = 0
    var bursts = 0
    var serverErrors = 0

    /// Asks the sandbox on 127.0.0.1:`port` with a plain blocking socket (cheap enough to poll every millisecond).
    static func read(port: Int) -> SandboxCounters? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return nil }
        let request = Array("GET /_sandbox/requests HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count else { return nil }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            received += buffer[0..<n]
            // The body is one small JSON object: stop at its closing brace rather than wait for a close.
            if let text = String(bytes: received, encoding: .utf8), let split = text.range(of: "\r\n\r\n"),
               text[split.upperBound...].hasSuffix("}") { break }
        }
        guard let text = String(bytes: received, encoding: .utf8), let split = text.range(of: "\r\n\r\n"),
              let object = try? JSONSerialization.jsonObject(with: Data(text[split.upperBound...].utf8)) as? [String: Int] else { return nil }
        return SandboxCounters(requests: object["requests"] ?? 0, throttled: object["throttled"] ?? 0, bursts: object["bursts"] ?? 0,
                               serverErrors: object["server_errors"] ?? 0)
    }
}

/// A JSON value with the keys in `dropping` removed at every level, arrays sorted, as sorted-key JSON text:
/// two dumps of the same state compare equal however the sandbox ordered or numbered them.
func canonicalJSON(_ value: Any, dropping: Set<String> = []) -> String {
    func clean(_ value: Any) -> Any {
        if let object = value as? [String: Any] {
            var result: [String: Any] = [:]
            for (k, v) in object where !dropping.contains(k) { result[k] = clean(v) }
            return result
        }
        if let array = value as? [Any] {
            return array.map(clean).sorted { text($0) < text($1) }
        }
        return value
    }
    func text(_ value: Any) -> String {
        guard JSONSerialization.isValidJSONObject([value]),
              let data = try? JSONSerialization.data(withJSONObject: [value], options: [.sortedKeys]) else { return "\(value)" }
        return String(decoding: data, as: UTF8.self)
    }
    return text(clean(value))
}

/// Prints a line into the test log (the seed and the kill points, so a failure can be replayed).
func reliabilityLog(_ line: String) {
    FileHandle.standardError.write(Data("[reliability] \(line)\n".utf8))
}
