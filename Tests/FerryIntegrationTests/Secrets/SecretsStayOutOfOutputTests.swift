import FerryCore
import FerryTestSupport
import Foundation
import Testing

/// Every ferry command, succeeding and failing (Sailthru 401 and signature mismatch, SendGrid 401, SSH
/// password refused), runs with distinctive secret values in its environment; none of them may show up in
/// stdout, stderr, the daemon's log, `--json` output, the SQLite files (raw bytes of the store, its WAL and a
/// backup) or the Mapp drop folder.
@Suite(.timeLimit(.minutes(5))) struct SecretsStayOutOfOutputTests {
    /// Wrong credentials with values that cannot appear by accident.
    static let wrongSailthruKey = "stkey-LEAKCHECK-4417aa"
    static let wrongSailthruSecret = "stsecret-LEAKCHECK-9921bb"
    static let wrongSendGridKey = "SG.LEAKCHECK-sendgrid-5530cc"
    static let sftpPassword = "sftp-LEAKCHECK-pass-7781dd"
    static let smtpPassword = "smtp-LEAKCHECK-pass-8890ee"

    /// Every secret in the environment, the working ones (the sandboxes') included.
    static let secrets = [wrongSailthruKey, wrongSailthruSecret, wrongSendGridKey, sftpPassword, smtpPassword,
                          SailthruSandboxServer.apiKey, SailthruSandboxServer.secret, SendGridSandboxServer.apiKey]

    static func sailthru(_ name: String, key: String, secret: String, goals: String) -> String {
        """
        name: \(name)
        timezone: UTC
        schedule:
          cron: "0 * * * *"
        destination:
          type: sailthru
          api_key: ${\(key)}
          api_secret: ${\(secret)}
          base_url: ${SAILTHRU_BASE_URL}
        goals:
        \(goals)
        """
    }

    static let sailthruExport = "  - export: { segment: vip, match: { email: email }, lists: [Ferry VIP] }"

    static func sendgrid(_ name: String, key: String) -> String {
        """
        name: \(name)
        timezone: UTC
        schedule:
          cron: "0 * * * *"
        destination:
          type: sendgrid
          api_key: ${\(key)}
          base_url: ${SENDGRID_BASE_URL}
        goals:
          - export: { segments: [vip], email: email }
        """
    }

    static func mapp(server: SSHDServer, knownHosts: String) -> String {
        """
        name: mapp-wrong-password
        timezone: UTC
        schedule:
          at: ["02:30"]
        destination:
          type: mapp
          host: 127.0.0.1
          port: \(server.port)
          username: \(NSUserName())
          password: ${MAPP_SFTP_PASSWORD}
          folder: drop
          known_hosts: \(knownHosts)
        goals:
          - export:
              segment: vip
              file_prefix: vip
              columns:
                - { property: email, header: user.Email }
        """
    }

    /// Everything a command printed, for the leak check, with what ran it.
    struct Output {
        var label: String
        var text: String
    }

    @Test func noSecretAppearsInAnyOutputLogOrStoreFile() async throws {
        let sailthru = try SailthruSandboxServer.start()
        defer { sailthru.stop() }
        let sendgrid = try SendGridSandboxServer.start()
        defer { sendgrid.stop() }
        let sshd = try await SSHDServer.start()
        defer { sshd.stop() }

        let ws = Workspace()
        let s = ws.path + "/s"
        ws.write("s/segments.yaml", "segments:\n  - name: vip\n    any:\n      - { property: lifetime_spend, gte: 400 }\n")
        ws.write("s/st-ok.yaml", Self.sailthru("st-ok", key: "ST_KEY", secret: "ST_SECRET", goals: """
          - import: { lists: [Newsletter], match: { email: email }, create_profiles: true }
        \(Self.sailthruExport)
        """))
        ws.write("s/st-wrong-key.yaml", Self.sailthru("st-wrong-key", key: "ST_WRONG_KEY", secret: "ST_SECRET", goals: Self.sailthruExport))
        ws.write("s/st-wrong-secret.yaml", Self.sailthru("st-wrong-secret", key: "ST_KEY", secret: "ST_WRONG_SECRET", goals: Self.sailthruExport))
        ws.write("s/sg-ok.yaml", Self.sendgrid("sg-ok", key: "SG_KEY"))
        ws.write("s/sg-wrong-key.yaml", Self.sendgrid("sg-wrong-key", key: "SG_WRONG_KEY"))
        ws.write("s/mapp.yaml", Self.mapp(server: sshd, knownHosts: try sshd.knownHostsFile(.bracketed)))
        let environment = [
            "ST_KEY": SailthruSandboxServer.apiKey, "ST_SECRET": SailthruSandboxServer.secret,
            "ST_WRONG_KEY": Self.wrongSailthruKey, "ST_WRONG_SECRET": Self.wrongSailthruSecret,
            "SAILTHRU_BASE_URL": sailthru.baseURL,
            "SG_KEY": SendGridSandboxServer.apiKey, "SG_WRONG_KEY": Self.wrongSendGridKey, "SENDGRID_BASE_URL": sendgrid.baseURL,
            "MAPP_SFTP_PASSWORD": Self.sftpPassword,
            "FERRY_SMTP_URL": "smtp://127.0.0.1:\(closedLocalPort())", "FERRY_SMTP_USER": "ferry", "FERRY_SMTP_PASSWORD": Self.smtpPassword,
        ]
        var outputs: [Output] = []
        func ferry(_ arguments: [String], expect status: Int32? = nil) async throws -> CommandResult {
            let result = try await offPool { try BuiltProducts.ferry(arguments + ["--schedules", s, "--db", ws.db], environment: environment) }
            outputs.append(Output(label: "ferry \(arguments.joined(separator: " ")) (exit \(result.status))", text: result.stdout + result.stderr))
            if let status { #expect(result.status == status, "ferry \(arguments): \(result.stdout)\(result.stderr)") }
            return result
        }

        let fixture = BuiltProducts.packageRoot.appendingPathComponent("Fixtures/profiles.jsonl").path
        _ = try await ferry(["profiles", "load", fixture], expect: 0)
        _ = try await ferry(["validate"], expect: 0)
        _ = try await ferry(["next", "st-ok"], expect: 0)
        _ = try await ferry(["run", "st-ok", "--now", "--dry-run"], expect: 0)
        _ = try await ferry(["run", "st-ok", "--now"], expect: 0)
        _ = try await ferry(["run", "sg-ok", "--now", "--dry-run"], expect: 0)
        _ = try await ferry(["run", "sg-ok", "--now"], expect: 0)
        let wrongKey = try await ferry(["run", "st-wrong-key", "--now"])
        let wrongSecret = try await ferry(["run", "st-wrong-secret", "--now"])
        let sendgridWrongKey = try await ferry(["run", "sg-wrong-key", "--now"])
        let sshRefused = try await ferry(["run", "mapp-wrong-password", "--now"])
        for failed in [wrongKey, wrongSecret, sendgridWrongKey, sshRefused] {
            #expect(failed.status == 1, "\(failed.stdout)\(failed.stderr)")
            #expect(failed.stdout.contains(": failed"), "\(failed.stdout)\(failed.stderr)")
        }
        _ = try await ferry(["history"], expect: 0)
        let history = try await ferry(["history", "--json"], expect: 0)
        let runs = (try JSONSerialization.jsonObject(with: Data(history.stdout.utf8)) as? [String: Any])?["runs"] as? [[String: Any]] ?? []
        #expect(runs.count >= 8, "\(history.stdout)")
        for run in runs {
            let id = try #require(run["id"] as? Int)
            _ = try await ferry(["history", "show", String(id)], expect: 0)
            _ = try await ferry(["history", "show", String(id), "--json"], expect: 0)
        }
        _ = try await ferry(["status"])
        _ = try await ferry(["profiles", "show", "p0000003", "--json"], expect: 0)
        _ = try await ferry(["profiles", "show", "p0000003"], expect: 0)
        _ = try await ferry(["segments"], expect: 0)
        _ = try await ferry(["segments", "vip"], expect: 0)
        let backup = ws.path + "/backup.sqlite"
        _ = try await ferry(["backup", backup], expect: 0)

        // The daemon fires the failing connections on its own clock and logs each run.
        let daemon = try DaemonProcess(arguments: ["--schedules", s, "--db", ws.db, "--grace", "1s",
                                                   "--clock-start", "2026-06-01T05:59:58Z", "--clock-scale", "1"],
                                       environment: environment, logPath: ws.path + "/daemon.log")
        // "counts=" is on each run's finished line: wait until the failing runs have ended and been logged.
        #expect(try await offPool {
            daemon.waitForLog("connection=st-wrong-secret counts=") && daemon.waitForLog("connection=st-wrong-key counts=")
                && daemon.waitForLog("connection=sg-wrong-key counts=")
        }, "\(daemon.log)")
        daemon.signal(SIGTERM)
        _ = try await offPool { daemon.waitForExit() }
        outputs.append(Output(label: "ferry daemon log", text: daemon.log))
        _ = try await ferry(["status"])

        var files: [(String, Data)] = []
        for path in [ws.db, ws.db + "-wal", ws.db + "-shm", backup] where FileManager.default.fileExists(atPath: path) {
            files.append((path, try Data(contentsOf: URL(fileURLWithPath: path))))
        }
        let drop = sshd.root.appendingPathComponent("drop")
        for name in (try? FileManager.default.contentsOfDirectory(atPath: drop.path)) ?? [] {
            files.append((name, try Data(contentsOf: drop.appendingPathComponent(name))))
        }
        #expect(files.contains { $0.0 == ws.db + "-wal" || $0.0 == backup })

        // FERRY_SECRETS_DUMP=FILE writes every captured output there, to see what the scan looked at.
        if let dump = ProcessInfo.processInfo.environment["FERRY_SECRETS_DUMP"] {
            try outputs.map { "### \($0.label)\n\($0.text)" }.joined(separator: "\n").write(toFile: dump, atomically: true, encoding: .utf8)
        }
        // The scan sees what is there: the failing connection's name is in its output, the log and the store.
        #expect(outputs.contains { $0.label.hasPrefix("ferry run st-wrong-key") && $0.text.contains("invalid api_key") })
        #expect(outputs.contains { $0.label == "ferry daemon log" && $0.text.contains("connection=st-wrong-key") })
        #expect(files.contains { $0.1.range(of: Data("st-wrong-key".utf8)) != nil })
        for secret in Self.secrets {
            for output in outputs where output.text.contains(secret) {
                Issue.record("secret \(secret) appears in \(output.label):\n\(output.text)")
            }
            let needle = Data(secret.utf8)
            for (path, bytes) in files where bytes.range(of: needle) != nil {
                Issue.record("secret \(secret) appears in the bytes of \(path)")
            }
        }
        // The failures are still explained: which connection, which kind of refusal.
        #expect(outputs.count > 20)
        #expect(wrongKey.stdout.contains("error:"), "\(wrongKey.stdout)")
        #expect(sshRefused.stdout.contains("error:"), "\(sshRefused.stdout)")
    }
}
