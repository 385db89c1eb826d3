import FerryCore
import FerryTransport
import Foundation

/// `ferry-bench`: micro-benchmarks of core pieces for `make bench`; prints JSON for scripts/bench.py.
///
/// - `ferry-bench schedule ZONE START COUNT ROUNDS EXPR…` times computing COUNT successive fire times of each
///   cron expression from START (RFC 3339), ROUNDS times, and prints the median nanoseconds per fire time.
/// - `ferry-bench download URL FILE` streams URL to FILE through the libcurl client and prints seconds and bytes.
/// - `ferry-bench sftp-upload HOST PORT USER KEY KNOWN_HOSTS FILE REMOTE` uploads FILE through the libssh2 client in
///   1 MiB writes and prints seconds and bytes (compare with OpenSSH `sftp put` of the same file).
/// - `ferry-bench sailthru-users BASE_URL API_KEY SECRET COUNT CONCURRENCY` sends COUNT signed `/user` POSTs (100 users, updated in turn).
@main
struct Bench {
    static func main() async {
        let args = Array(CommandLine.arguments.dropFirst())
        switch args.first {
        case "download" where args.count == 3:
            await download(url: args[1], file: args[2])
            return
        case "sftp-upload" where args.count == 8:
            await sftpUpload(host: args[1], port: Int(args[2]) ?? 22, user: args[3], key: args[4], knownHosts: args[5],
                             file: args[6], remote: args[7])
            return
        case "sailthru-users" where args.count == 6:
            await sailthruUsers(baseURL: args[1], key: args[2], secret: args[3], count: Int(args[4]) ?? 0, concurrency: Int(args[5]) ?? 1)
            return
        default:
            break
        }
        guard args.first == "schedule", args.count >= 6, let start = ISO8601.parse(args[2]),
              let count = Int(args[3]), let rounds = Int(args[4]) else {
            FileHandle.standardError.write(Data("usage: ferry-bench schedule ZONE START COUNT ROUNDS EXPR...\n".utf8))
            exit(2)
        }
        let engine = ScheduleEngine()
        var results: [String: Double] = [:]
        var checksum = 0.0
        for expression in args[5...] {
            guard let cron = try? CronExpression(parsing: expression) else {
                FileHandle.standardError.write(Data("bad cron: \(expression)\n".utf8))
                exit(2)
            }
            let schedule = Schedule(rule: .cron(cron), timeZoneIdentifier: args[1])
            var samples: [Double] = []
            for _ in 0..<rounds {
                let clock = ContinuousClock.now
                // Successive calls, as a scheduler asks: each next fire after the previous one.
                var instant = start
                for _ in 0..<count {
                    guard let next = engine.nextFire(of: schedule, after: instant) else { break }
                    instant = next
                }
                let elapsed = ContinuousClock.now - clock
                checksum += instant.timeIntervalSince1970
                samples.append((Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9) / Double(count))
            }
            samples.sort()
            results[expression] = samples[samples.count / 2]
        }
        printJSON(["ns_per_fire": results, "checksum": checksum])
    }

    static func printJSON(_ object: [String: Any]) {
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    static func download(url: String, file: String) async {
        var configuration = CurlHTTPClient.Configuration()
        configuration.maxDownloadBytes = 1 << 40
        let client = CurlHTTPClient(configuration: configuration)
        let start = ContinuousClock.now
        do {
            _ = try await client.download(HTTPRequest(method: .get, url: url), to: URL(fileURLWithPath: file))
        } catch {
            FileHandle.standardError.write(Data("download failed: \(error)\n".utf8))
            exit(1)
        }
        let bytes = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0
        printJSON(["seconds": seconds(since: start), "bytes": bytes])
    }

    static func sftpUpload(host: String, port: Int, user: String, key: String, knownHosts: String, file: String, remote: String) async {
        let configuration = FileDropConfiguration(host: host, port: port, username: user,
                                                  authentication: .privateKey(path: key, passphrase: nil),
                                                  hostKey: .knownHosts(path: knownHosts), folder: "")
        guard let input = FileHandle(forReadingAtPath: file) else {
            FileHandle.standardError.write(Data("cannot read \(file)\n".utf8))
            exit(1)
        }
        let start = ContinuousClock.now
        var bytes = 0
        do {
            let store = try await SFTPClient().open(configuration)
            let writer = try await store.openWriter(remote)
            while let chunk = try input.read(upToCount: 1 << 20), !chunk.isEmpty {
                try await writer.write(contentsOf: [UInt8](chunk))
                bytes += chunk.count
            }
            try await writer.finish()
            await store.close()
        } catch {
            FileHandle.standardError.write(Data("upload failed: \(error)\n".utf8))
            exit(1)
        }
        printJSON(["seconds": seconds(since: start), "bytes": bytes])
    }

    static func sailthruUsers(baseURL: String, key: String, secret: String, count: Int, concurrency: Int) async {
        let client = SailthruClient(configuration: .init(apiKey: key, apiSecret: secret, baseURL: baseURL), transport: CurlHTTPClient())
        let start = ContinuousClock.now
        let failures = await withTaskGroup(of: Int.self) { group in
            let perWorker = (count + concurrency - 1) / concurrency
            for worker in 0..<concurrency {
                group.addTask {
                    var failed = 0
                    for n in (worker * perWorker)..<min(count, (worker + 1) * perWorker) {
                        // 100 users updated over and over: the sandbox rewrites its whole state on every change,
                        // so creating 10,000 users would measure the sandbox's persistence, not this client.
                        let update = SailthruUserUpdate(id: "bench\(n % 100)@example.com", key: "email",
                                                        vars: ["n": .number(Double(n)), "name": .string("Bench \(n)")],
                                                        lists: ["Bench": true])
                        do { try await client.saveUser(update) } catch { failed += 1 }
                    }
                    return failed
                }
            }
            return await group.reduce(0, +)
        }
        printJSON(["seconds": seconds(since: start), "requests": count, "failed": failures])
    }
}
