import ArgumentParser
import FerryCore
import Foundation
import Logging
import ServiceLifecycle

/// `ferry daemon`: the scheduler, until SIGTERM/SIGINT.
struct DaemonCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon", abstract: "Fire every enabled connection when due, until SIGTERM or SIGINT (SIGHUP reloads).")

    @OptionGroup var options: StoreOptions

    @Option(help: "The most runs at once across all connections.")
    var maxConcurrent: Int = 4

    @Option(help: "On SIGTERM/SIGINT, how long running runs may take to finish (30s, 2m) before they are marked interrupted.")
    var grace: String = "30s"

    @Option(help: ArgumentHelp("Start the clock at this instant (tests and demos).", visibility: .hidden))
    var clockStart: String?

    @Option(help: ArgumentHelp("Run the clock this many times faster than real time (tests and demos).", visibility: .hidden))
    var clockScale: Double = 1

    func validate() throws {
        guard maxConcurrent >= 1 else { throw ValidationError("--max-concurrent must be 1 or more") }
        guard Self.seconds(grace) != nil else { throw ValidationError("--grace '\(grace)' must be a duration like 30s, 2m or 45") }
        if let clockStart, ISO8601.parse(clockStart) == nil { throw ValidationError("--clock-start must be an RFC 3339 instant") }
    }

    /// `30s`, `2m`, `1h` or plain seconds.
    static func seconds(_ text: String) -> Double? {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600]
        if let unit = text.last, let factor = units[unit], let n = Double(text.dropLast()), n >= 0 { return n * factor }
        return Double(text).flatMap { $0 >= 0 ? $0 : nil }
    }

    func run() async throws {
        try await reportingErrors {
            let logger = Logging.Logger(label: "ferry.daemon")
            let lock: DaemonLock
            do {
                lock = try DaemonLock(databasePath: options.databasePath)
            } catch {
                throw CLIError.failure("\(error)")
            }
            let schedules = options
            let holder = ConfigHolder(load: { schedules.loadConfig() }, logger: logger)
            let config = await holder.config
            if !config.errors.isEmpty {
                for error in config.errors { printError(error.description) }
                throw CLIError.badInput("the schedules have \(config.errors.count) problem(s); the daemon did not start")
            }
            let database = try options.openDatabase()
            let clock: any WallClock
            if clockStart != nil || clockScale != 1 {
                clock = ScaledWallClock(start: clockStart.flatMap(ISO8601.parse) ?? Date(), scale: clockScale)
            } else {
                clock = SystemWallClock()
            }
            let scheduler = Scheduler(holder: holder, database: database, factory: LiveGoalFactory(logger: logger),
                                      clock: clock, logger: logger, maxConcurrent: maxConcurrent)
            var groupConfig = ServiceGroupConfiguration(
                services: [.init(service: scheduler), .init(service: ReloadOnHangup(holder: holder))],
                logger: logger)
            groupConfig.gracefulShutdownSignals = [.sigterm, .sigint]
            groupConfig.maximumGracefulShutdownDuration = .milliseconds(Int64((Self.seconds(grace) ?? 30) * 1000))
            do {
                try await ServiceGroup(configuration: groupConfig).run()
            } catch {
                // Escalation past the grace period cancels running runs; they are recorded interrupted.
                logger.info("daemon stopped after the grace period: \(error)")
            }
            withExtendedLifetime(lock) {}
        }
    }
}
