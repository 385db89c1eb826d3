import FerryCore
import FerryTestSupport
import Foundation
import GRDB
import Testing

/// The Mapp export end to end: the built `ferry` binary, the store, and OpenSSH's sshd on 127.0.0.1.
@Suite struct MappExportTests {
    /// A connection file for the test server.
    static func connection(server: SSHDServer, knownHosts: String, folder: String = "drop/ferry") -> String {
        """
        name: mapp-test
        timezone: Australia/Lord_Howe
        schedule: { cron: "30 2 * * mon" }
        destination:
          type: mapp
          host: 127.0.0.1
          port: \(server.port)
          username: \(NSUserName())
          private_key: \(server.clientKey.privateKeyPath)
          folder: \(folder)
          known_hosts: \(knownHosts)
        goals:
          - export:
              segment: vip
              file_prefix: export-ferry
              columns:
                - { property: email,      header: user.Email }
                - { property: first_name, header: user.FirstName }
                - { property: city,       header: user.CustomAttribute.City }
        """
    }

    /// A workspace with segments, the fixture profiles plus awkward ones, and the connection.
    static func prepare(server: SSHDServer, knownHosts: String? = nil) throws -> Workspace {
        let ws = Workspace()
        ws.write("s/segments.yaml", "segments:\n  - name: vip\n    any:\n      - { property: lifetime_spend, gte: 400 }\n  - name: big\n    all:\n      - { property: lifetime_spend, gte: 450 }\n")
        ws.write("s/mapp.yaml", connection(server: server, knownHosts: try knownHosts ?? server.knownHostsFile(.bracketed)))
        let fixture = BuiltProducts.packageRoot.appendingPathComponent("Fixtures/profiles.jsonl").path
        #expect(try BuiltProducts.ferry(["profiles", "load", fixture, "--schedules", ws.path + "/s", "--db", ws.db]).status == 0)
        let awkward = ws.write("awkward.jsonl", """
        {"id": "q1", "email": "quote@example.com", "first_name": "Anne \\"Nan\\", Jr.", "city": "Zürich\\nOld Town", "segments": ["vip"]}
        {"id": "q2", "email": "no-city@example.com", "first_name": "Ólafur", "segments": ["vip"]}
        {"id": "q3", "first_name": "No Email", "customer_id": "c-3", "segments": ["vip"]}
        """)
        #expect(try BuiltProducts.ferry(["profiles", "load", awkward, "--schedules", ws.path + "/s", "--db", ws.db]).status == 0)
        return ws
    }

    /// Parses a CSV file with ferry's RFC 4180 reader.
    static func records(_ path: String) throws -> [[String]] {
        let reader = try CSVReader(path: path)
        var rows: [[String]] = []
        while let record = try reader.nextRecord() { rows.append(try record.result.get()) }
        return rows
    }

    static func files(in folder: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).sorted()
    }

    @Test func exportsTheSegmentAsOnePublishedCSVThatParsesBack() async throws {
        let server = try await SSHDServer.start()
        defer { server.stop() }
        let ws = try Self.prepare(server: server)
        let run = try BuiltProducts.ferry(["run", "mapp-test", "--now", "--schedules", ws.path + "/s", "--db", ws.db])
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")

        let folder = server.root.appendingPathComponent("drop/ferry")
        let names = Self.files(in: folder)
        #expect(names.count == 1 && names[0].range(of: #"^export-ferry-vip-\d{8}T\d{6}Z\.csv$"#, options: .regularExpression) != nil, "\(names)")
        let path = folder.appendingPathComponent(names[0]).path
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(!bytes.starts(with: [0xEF, 0xBB, 0xBF]), "no BOM")
        let rows = try Self.records(path)
        #expect(rows.first == ["user.Email", "user.FirstName", "user.CustomAttribute.City", "user.CustomAttribute.SegmentMembership"])
        // 68 fixture members + 2 awkward ones with an email; the one without an email is skipped.
        #expect(rows.count == 1 + 70)
        #expect(rows.contains(["quote@example.com", "Anne \"Nan\", Jr.", "Zürich\nOld Town", "vip"]))
        #expect(rows.contains(["no-city@example.com", "Ólafur", "", "vip"]))
        #expect(rows.dropFirst().allSatisfy { $0[3].split(separator: ",").contains("vip") })
        #expect(rows.contains { $0[3] == "big,vip" }, "members list every segment they are in")

        let history = try BuiltProducts.ferry(["history", "show", "1", "--json", "--db", ws.db, "--schedules", ws.path + "/s"])
        let record = try #require(try JSONSerialization.jsonObject(with: Data(history.stdout.utf8)) as? [String: Any])
        #expect(record["status"] as? String == "succeeded")
        let counts = try #require(record["counts"] as? [String: Int])
        #expect(counts["exported"] == 70 && counts["skipped"] == 1 && counts["read"] == 71)
        #expect((record["notes"] as? [String])?.first == "wrote drop/ferry/\(names[0]) (\(bytes.count) bytes)")
        #expect((record["touched"] as? [[String: Any]])?.count == 5)
    }

    @Test func splitsIntoPartsBelowTheSizeLimitEachWithTheHeader() async throws {
        let server = try await SSHDServer.start()
        defer { server.stop() }
        let ws = try Self.prepare(server: server)
        let run = try BuiltProducts.ferry(["run", "mapp-test", "--now", "--schedules", ws.path + "/s", "--db", ws.db],
                                          environment: ["FERRY_MAPP_MAX_FILE_BYTES": "2000"])
        #expect(run.status == 0, "\(run.stderr)")
        let folder = server.root.appendingPathComponent("drop/ferry")
        let names = Self.files(in: folder)
        #expect(names.count >= 3)
        #expect(names.filter { $0.contains("-part") }.count == names.count - 1)
        #expect(names.allSatisfy { $0.hasSuffix(".csv") })
        var dataRows = 0
        for name in names {
            let path = folder.appendingPathComponent(name).path
            #expect(try Data(contentsOf: URL(fileURLWithPath: path)).count <= 2000)
            let rows = try Self.records(path)
            #expect(rows.first?.first == "user.Email")
            dataRows += rows.count - 1
        }
        #expect(dataRows == 70)
    }

    @Test func anUnknownHostKeyIsRefusedAndNothingIsPublished() async throws {
        let server = try await SSHDServer.start()
        defer { server.stop() }
        let other = try SSHKeyPair.generate(at: server.directory.appendingPathComponent("other_host").path)
        let knownHosts = try server.knownHostsFile(.bracketed, key: other.publicKey, name: "other_known_hosts")
        let ws = try Self.prepare(server: server, knownHosts: knownHosts)
        let run = try BuiltProducts.ferry(["run", "mapp-test", "--now", "--schedules", ws.path + "/s", "--db", ws.db])
        #expect(run.status == 1)
        #expect(run.stdout.contains("failed"))
        #expect(run.stdout.contains(server.hostKey.fingerprint), "the offered fingerprint is shown: \(run.stdout)")
        #expect(Self.files(in: server.root.appendingPathComponent("drop/ferry")).isEmpty)
    }

    @Test func aServerThatDiesMidRunLeavesNoCSVAndTheNextRunSucceeds() async throws {
        let server = try await SSHDServer.start()
        defer { server.stop() }
        let ws = try Self.prepare(server: server)
        // The folder is a file: mkdir -p fails part-way, like a server refusing the upload.
        let drop = server.root.appendingPathComponent("drop")
        try Data("not a folder".utf8).write(to: drop)
        let failed = try BuiltProducts.ferry(["run", "mapp-test", "--now", "--schedules", ws.path + "/s", "--db", ws.db])
        #expect(failed.status == 1)
        #expect(failed.stdout.contains("no file was published"))
        try FileManager.default.removeItem(at: drop)
        let retried = try BuiltProducts.ferry(["run", "mapp-test", "--now", "--schedules", ws.path + "/s", "--db", ws.db])
        #expect(retried.status == 0, "\(retried.stdout)")
        #expect(Self.files(in: server.root.appendingPathComponent("drop/ferry")).filter { $0.hasSuffix(".csv") }.count == 1)
    }

    @Test(.timeLimit(.minutes(5)))
    func aSegmentOfManyPagesIsExportedOnceEachInStoreOrderAcrossParts() async throws {
        let server = try await SSHDServer.start()
        defer { server.stop() }
        let ws = Workspace()
        ws.write("s/segments.yaml", "segments:\n  - name: vip\n    all:\n      - { property: email, exists: true }\n")
        ws.write("s/mapp.yaml", Self.connection(server: server, knownHosts: try server.knownHostsFile(.bracketed)))
        // 4,500 members: pages of 2,000 are read and formatted concurrently, then written in key order.
        let profiles = ws.path + "/profiles.jsonl"
        #expect(try BuiltProducts.run("ferry-sandbox", ["generate", "profiles", "--count", "4500", "--seed", "5", "--output", profiles]).status == 0)
        #expect(try BuiltProducts.ferry(["profiles", "load", profiles, "--schedules", ws.path + "/s", "--db", ws.db]).status == 0)
        let run = try BuiltProducts.ferry(["run", "mapp-test", "--now", "--schedules", ws.path + "/s", "--db", ws.db],
                                          environment: ["FERRY_MAPP_MAX_FILE_BYTES": "60000"])
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")

        let folder = server.root.appendingPathComponent("drop/ferry")
        let names = Self.files(in: folder)
        #expect(names.allSatisfy { $0.hasSuffix(".csv") }, "no .part left: \(names)")
        func partNumber(_ name: String) -> Int {
            name.range(of: #"-part(\d+)\.csv$"#, options: .regularExpression).map { Int(name[$0].dropFirst(5).dropLast(4))! } ?? 1
        }
        let ordered = names.sorted { partNumber($0) < partNumber($1) }
        #expect(ordered.map(partNumber) == Array(1...names.count))
        #expect(names.count >= 4, "split more than once: \(names)")
        var emails: [String] = []
        for name in ordered {
            let path = folder.appendingPathComponent(name).path
            #expect(try Data(contentsOf: URL(fileURLWithPath: path)).count <= 60_000)
            let rows = try Self.records(path)
            #expect(rows.first == ["user.Email", "user.FirstName", "user.CustomAttribute.City", "user.CustomAttribute.SegmentMembership"])
            #expect(rows.dropFirst().allSatisfy { $0.count == 4 && $0[3] == "vip" })
            emails += rows.dropFirst().map { $0[0] }
        }
        let database = try AppDatabase.open(path: ws.db)
        let expected = try await database.writer.read { db in
            try String.fetchAll(db, sql: "SELECT json_extract(properties, '$.email[0]') FROM profile ORDER BY pk")
        }
        #expect(expected.count == 4500)
        #expect(emails == expected)
    }
}
