import ArgumentParser
import Foundation

/// `ferry-sandbox smtp`: a small real SMTP server (RFC 5321) that stores each message it accepts as a `.eml` file.
struct SMTPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "smtp",
        abstract: "A local SMTP server that stores every accepted message as DIR/NAME.eml.")

    @Option(help: "Port on 127.0.0.1; 0 picks a free one.") var port: Int = 0
    @Option(help: "Directory for the received messages (.eml).") var dir: String
    @Option(help: "Require AUTH PLAIN or LOGIN with this user (and --password).") var user: String?
    @Option(help: "The password AUTH must give.") var password: String?
    @Option(help: "Fraction of messages refused (see --fail-code and --fail-at).") var failRate: Double = 0
    @Option(help: "The reply code of a refusal: 4xx (try later) or 5xx (rejected).") var failCode: Int = 451
    @Option(help: "Where a refused message is refused: rcpt or data.") var failAt: SMTPRefusalPoint = .rcpt
    @Option(help: "Seed for the refusal dice (random when absent).") var seed: UInt64?

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535") }
        guard (0...1).contains(failRate) else { throw ValidationError("--fail-rate is a fraction in 0...1") }
        guard (400...599).contains(failCode) else { throw ValidationError("--fail-code must be a 4xx or 5xx reply code") }
        guard (user == nil) == (password == nil) else { throw ValidationError("give --user and --password together") }
    }

    func run() async throws {
        let directory = URL(fileURLWithPath: dir)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let settings = SMTPSettings(
            credentials: user.flatMap { user in password.map { (user, $0) } }, failRate: failRate, failCode: failCode,
            failAt: failAt)
        let mailbox = SMTPMailbox(directory: directory, seed: seed ?? UInt64.random(in: .min ... .max))
        let listener = try SMTPListener(port: port)
        let boundPort = listener.port
        let thread = Thread {
            listener.acceptForever { socket in
                SMTPSession(socket: socket, settings: settings, mailbox: mailbox).run()
            }
        }
        thread.start()
        // write(2) directly: a piped stdout is block-buffered and the line must arrive now.
        FileHandle.standardOutput.write(Data("listening on 127.0.0.1:\(boundPort)\n".utf8))
        while !Task.isCancelled { try await Task.sleep(for: .seconds(3600)) }
    }
}

/// Where a refusal happens in the SMTP exchange.
enum SMTPRefusalPoint: String, ExpressibleByArgument, Sendable {
    case rcpt, data
}

/// What the server demands and which faults it injects.
struct SMTPSettings: Sendable {
    var credentials: (user: String, password: String)?
    var failRate: Double
    var failCode: Int
    var failAt: SMTPRefusalPoint
}

/// The message store: writes each message atomically and rolls the refusal dice.
///
/// `@unchecked Sendable`: `counter` and `dice` are only touched with `lock` held.
final class SMTPMailbox: @unchecked Sendable {
    let directory: URL
    private let lock = NSLock()
    private var counter = 0
    private var dice: SplitMix64

    init(directory: URL, seed: UInt64) {
        self.directory = directory
        dice = SplitMix64(seed: seed)
    }

    /// True when the next message should be refused.
    func refuses(rate: Double) -> Bool {
        guard rate > 0 else { return false }
        return lock.withLock { dice.nextUnit() < rate }
    }

    /// Stores `message` as `DIR/NAME.eml` (written to a temporary name, then renamed) and returns NAME.
    func store(_ message: Data) throws -> String {
        let number = lock.withLock { () -> Int in
            counter += 1
            return counter
        }
        let name = String(format: "%013lld-%05lld", Int64(Date().timeIntervalSince1970 * 1000), Int64(number))
        let temporary = directory.appendingPathComponent(".\(name).tmp")
        try message.write(to: temporary)
        try FileManager.default.moveItem(at: temporary, to: directory.appendingPathComponent("\(name).eml"))
        return name
    }
}
