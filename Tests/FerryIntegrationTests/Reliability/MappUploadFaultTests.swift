import FerryCore
import FerryTestSupport
import Foundation
import Testing

/// A tiny tmpfs mounted over the sshd's upload folder, so the server's writes fail with ENOSPC.
/// Mounting needs root (CI runs the tests as root); elsewhere the test is skipped with that reason.
enum TinyFilesystem {
    /// Whether this process can mount a tmpfs (tried once on a scratch folder).
    static let canMount: Bool = {
        guard getuid() == 0 else { return false }
        let probe = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-tmpfs-probe-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: probe, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: probe) }
        guard (try? runTool("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", probe])) != nil else { return false }
        _ = try? runTool("/usr/bin/umount", [probe])
        return true
    }()

    static func mount(at path: String, bytes: Int) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try runTool("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=\(bytes),mode=0755", "tmpfs", path])
    }

    static func unmount(_ path: String) {
        _ = try? runTool("/usr/bin/umount", ["-l", path])
    }
}

/// Issue #8's upload faults through the built binary against a real sshd: the server's disk fills up, or the
/// connection is killed mid-upload. Each gives a clear error, publishes nothing, records the run `failed`,
/// and the next run publishes the whole file.
@Suite(.serialized, .timeLimit(.minutes(4))) struct MappUploadFaultTests {
    static func workspace(_ server: SSHDServer) async throws -> Workspace {
        try await onOwnThread {
            let ws = try MappExportTests.prepare(server: server)
            try CrashSafetyTests.loadMappProfiles(ws, count: 3000)
            return ws
        }
    }

    static func run(_ ws: Workspace) async throws -> CommandResult {
        try await onOwnThread { try BuiltProducts.ferry(["run", "mapp-test", "--now", "--schedules", ws.path + "/s", "--db", ws.db]) }
    }

    /// After a failed run, the next one publishes exactly one whole file and leaves nothing else.
    static func expectRecovery(_ ws: Workspace, _ server: SSHDServer) async throws {
        let retried = try await Self.run(ws)
        #expect(retried.status == 0, "\(retried.stdout) \(retried.stderr)")
        let names = CrashSafetyTests.folderContents(server)
        #expect(names.count == 1 && names.allSatisfy { $0.hasSuffix(".csv") }, "\(names)")
        if let name = names.first {
            let rows = try MappExportTests.records(server.root.appendingPathComponent("drop/ferry/\(name)").path)
            #expect(rows.count == 1 + 70 + 3000)
        }
        #expect(try runStatuses(connection: "mapp-test", db: ws.db) == [.failed, .succeeded])
    }

    @Test(.enabled(if: TinyFilesystem.canMount, "needs root to mount a 64 KiB tmpfs as the server's full disk"))
    func aFullDiskOnTheServerFailsTheRunClearlyAndPublishesNothing() async throws {
        let server = try await SSHDServer.start()
        defer { server.stop() }
        let ws = try await Self.workspace(server)
        let folder = server.root.appendingPathComponent("drop/ferry").path
        try TinyFilesystem.mount(at: folder, bytes: 64 * 1024)
        var mounted = true
        defer { if mounted { TinyFilesystem.unmount(folder) } }

        let failed = try await Self.run(ws)
        #expect(failed.status == 1)
        #expect(failed.stdout.contains("failed") && failed.stdout.contains("no file was published"), "\(failed.stdout)")
        #expect(failed.stdout.contains(".csv.part"), "the error names the file being written: \(failed.stdout)")
        let left = CrashSafetyTests.folderContents(server)
        #expect(!left.contains { $0.hasSuffix(".csv") }, "\(left)")
        reliabilityLog("disk full: \(failed.stdout.split(separator: "\n").filter { $0.contains("error") })")

        TinyFilesystem.unmount(folder)
        mounted = false
        try await Self.expectRecovery(ws, server)
    }

    @Test func aConnectionKilledMidUploadFailsTheRunClearlyAndPublishesNothing() async throws {
        let server = try await SSHDServer.start()
        defer { server.stop() }
        let ws = try await Self.workspace(server)
        let folder = server.root.appendingPathComponent("drop/ferry")
        let executable = try BuiltProducts.executable("ferry").path
        let arguments = ["run", "mapp-test", "--now", "--schedules", ws.path + "/s", "--db", ws.db]
        let outcome: (status: Int32, stdout: String, cut: Bool) = try await onOwnThread {
            let out = ws.path + "/ferry.out", err = ws.path + "/ferry.err"
            let pid = try Spawn.launch(executable, arguments, environment: ProcessInfo.processInfo.environment.filter { $0.key != "FERRY_DB" },
                                       stdoutPath: out, stderrPath: err)
            var cut = false
            var status: Int32?
            let deadline = ContinuousClock.now + .seconds(60)
            while status == nil {
                // The `.part` file exists: the upload has begun. Stop the session at once (it can no longer
                // rename anything), then kill it, as a dropped connection would end it.
                if !cut, MappExportTests.files(in: folder).contains(where: { $0.hasSuffix(".csv.part") }) {
                    server.freezeSessions()
                    server.killSessions()
                    cut = true
                }
                if ContinuousClock.now > deadline { kill(pid, SIGKILL) }
                status = Spawn.exitStatusIfExited(pid)
                if status == nil { usleep(500) }
            }
            return (status ?? -1, (try? String(contentsOfFile: out, encoding: .utf8)) ?? "", cut)
        }
        #expect(outcome.cut, "the upload was never seen in progress")
        #expect(outcome.status == 1, "\(outcome.stdout)")
        #expect(outcome.stdout.contains("failed") && outcome.stdout.contains("no file was published"), "\(outcome.stdout)")
        let left = CrashSafetyTests.folderContents(server)
        #expect(!left.contains { $0.hasSuffix(".csv") }, "\(left)")
        reliabilityLog("connection killed: \(outcome.stdout.split(separator: "\n").filter { $0.contains("error") })")
        try await Self.expectRecovery(ws, server)
    }
}
