import ArgumentParser
import Foundation

/// `ferry-sandbox generate profiles --count N --seed S`: deterministic profile files for tests and benchmarks.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate", abstract: "Write deterministic fixture files.",
        subcommands: [Profiles.self])

    /// Profiles as JSON Lines (or CSV) on standard output.
    struct Profiles: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Realistic profiles, the same for the same seed.")

        @Option(help: "How many profiles.")
        var count: Int = 1000

        @Option(help: "The random seed.")
        var seed: UInt64 = 1

        @Option(help: "jsonl or csv.")
        var format: String = "jsonl"

        @Option(help: "Write to this file instead of standard output.")
        var output: String?

        func validate() throws {
            guard count >= 0 else { throw ValidationError("--count must be 0 or more") }
            guard ["jsonl", "csv"].contains(format) else { throw ValidationError("--format must be jsonl or csv") }
        }

        func run() throws {
            let sink: FileHandle
            if let output {
                guard FileManager.default.createFile(atPath: output, contents: nil) , let handle = FileHandle(forWritingAtPath: output) else {
                    throw ValidationError("cannot write \(output)")
                }
                sink = handle
            } else {
                sink = FileHandle.standardOutput
            }
            var generator = ProfileGenerator(seed: seed)
            var buffer = ""
            buffer.reserveCapacity(1 << 20)
            if format == "csv" { buffer += ProfileGenerator.csvHeader + "\n" }
            for index in 1...max(count, 1) where count > 0 {
                let profile = generator.next(index: index)
                buffer += format == "csv" ? profile.csvLine : profile.jsonLine
                buffer += "\n"
                if buffer.utf8.count > (1 << 20) - 4096 {
                    sink.write(Data(buffer.utf8))
                    buffer.removeAll(keepingCapacity: true)
                }
            }
            sink.write(Data(buffer.utf8))
            if output != nil { try sink.close() }
        }
    }
}

/// One generated profile, ready to print.
struct GeneratedProfile {
    var jsonLine: String
    var csvLine: String
}

/// Makes realistic profiles: names, emails, places, spend, engagement, interests, dates, consents.
struct ProfileGenerator {
    private var random: SplitMix64

    static let firstNames = ["Ava", "Liam", "Mia", "Noah", "Zoë", "Lucas", "Emma", "Mateo", "Sofia", "Ethan",
                             "Chloé", "Oliver", "Amara", "Kenji", "Priya", "Diego", "Hannah", "Omar", "Freya", "Jonas",
                             "Aisha", "Léa", "Marco", "Ingrid", "Tariq", "Nora", "Sven", "Yuki", "Carmen", "Aleksander"]
    static let lastNames = ["Smith", "García", "Müller", "Rossi", "Nguyen", "O'Brien", "Kowalski", "Silva", "Jensen",
                            "Dubois", "Kim", "Patel", "Novak", "Haddad", "Okafor", "Larsen", "Costa", "Tanaka", "Weber", "Fischer"]
    static let places = [("New York", "US"), ("Toronto", "CA"), ("Chicago", "US"), ("Vancouver", "CA"), ("Berlin", "DE"),
                         ("Paris", "FR"), ("London", "GB"), ("Dublin", "IE"), ("São Paulo", "BR"), ("Sydney", "AU"),
                         ("Austin", "US"), ("Montréal", "CA"), ("Amsterdam", "NL"), ("Madrid", "ES"), ("Tokyo", "JP")]
    static let interests = ["golf", "wine", "running", "cooking", "travel", "jazz", "cycling", "books", "gardening", "film"]
    static let engagement = ["high", "medium", "low"]
    static let csvHeader = "id,email,first_name,last_name,city,country,lifetime_spend,engagement,interests,signup_date,last_order_time,objectives,segments"
    /// Dates are spread before this instant (2026-11-01T00:00:00Z) so fixtures do not depend on today.
    static let baseEpoch: Int64 = 1_793_491_200

    init(seed: UInt64) { random = SplitMix64(seed: seed) }

    private mutating func pick<T>(_ items: [T]) -> T { items[Int(random.next() % UInt64(items.count))] }
    private mutating func chance(_ percent: UInt64) -> Bool { random.next() % 100 < percent }

    mutating func next(index: Int) -> GeneratedProfile {
        let first = pick(Self.firstNames), last = pick(Self.lastNames)
        let (city, country) = pick(Self.places)
        let id = String(format: "p%07d", index)
        let local = "\(first).\(last)".folding(options: [.diacriticInsensitive], locale: nil)
            .lowercased().filter { $0.isLetter || $0 == "." }
        let email = "\(local).\(index)@example.com"
        let spend = Double(random.next() % 50_000) / 100
        let level = pick(Self.engagement)
        var chosen: [String] = []
        for interest in Self.interests where chance(15) { chosen.append(interest) }
        let signupDays = Int64(random.next() % 1500) + 30
        let signup = Self.date(epoch: Self.baseEpoch - signupDays * 86_400, withTime: false)
        let lastOrder = chance(80) ? Self.date(epoch: Self.baseEpoch - Int64(random.next() % (200 * 86_400)), withTime: true) : nil
        var objectives: [String] = []
        if chance(85) { objectives.append("email-marketing") }
        if chance(40) { objectives.append("analytics") }
        var segments: [String] = []
        if spend > 400 || chance(3) { segments.append("vip") }

        func jsonString(_ s: String) -> String {
            var out = "\""
            for scalar in s.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                default: out.unicodeScalars.append(scalar)
                }
            }
            return out + "\""
        }
        func jsonArray(_ items: [String]) -> String { "[" + items.map(jsonString).joined(separator: ",") + "]" }
        var json = "{\"id\":\"\(id)\",\"email\":\(jsonString(email)),\"first_name\":\(jsonString(first)),\"last_name\":\(jsonString(last))"
        json += ",\"city\":\(jsonString(city)),\"country\":\"\(country)\",\"lifetime_spend\":\(String(format: "%.2f", spend))"
        json += ",\"engagement\":\"\(level)\",\"interests\":\(jsonArray(chosen)),\"signup_date\":\"\(signup)\""
        if let lastOrder { json += ",\"last_order_time\":\"\(lastOrder)\"" }
        json += ",\"objectives\":\(jsonArray(objectives))"
        if !segments.isEmpty { json += ",\"segments\":\(jsonArray(segments))" }
        json += "}"

        func csvField(_ s: String) -> String {
            s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
        }
        let csv = [id, email, first, last, city, country, String(format: "%.2f", spend), level, chosen.joined(separator: "|"),
                   signup, lastOrder ?? "", objectives.joined(separator: "|"), segments.joined(separator: "|")].map(csvField).joined(separator: ",")
        return GeneratedProfile(jsonLine: json, csvLine: csv)
    }

    static func date(epoch: Int64, withTime: Bool) -> String {
        let text = utcFormat.format(Date(timeIntervalSince1970: TimeInterval(epoch)))
        return withTime ? text : String(text.prefix(10))
    }

    private static let utcFormat = Date.ISO8601FormatStyle(timeZone: TimeZone(identifier: "UTC")!)
}
