import FerryCore
import Foundation

/// `ferry-bench`: micro-benchmarks of core pieces for `make bench`; prints JSON for scripts/bench.py.
///
/// `ferry-bench schedule ZONE START COUNT ROUNDS EXPR…` times computing COUNT successive fire times of each
/// cron expression from START (RFC 3339), ROUNDS times, and prints the median nanoseconds per fire time.
@main
struct Bench {
    static func main() {
        let args = Array(CommandLine.arguments.dropFirst())
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
        let data = try! JSONSerialization.data(withJSONObject: ["ns_per_fire": results, "checksum": checksum], options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }
}
