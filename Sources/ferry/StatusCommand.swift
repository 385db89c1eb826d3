import ArgumentParser
import FerryCore
import Foundation

/// `ferry status`: daemon heartbeat, last and next fires, failing connections.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Daemon heartbeat, last and next fires, failing connections.")

    @OptionGroup var options: StoreOptions

    func run() async throws {
        try await reportingErrors {
            let database = try options.openDatabase()
            let status = try DaemonStatus.read(database: database)
            var lines: [String] = []
            if status.isAlive, let pid = status.pid {
                lines.append("daemon: running (pid \(pid), heartbeat \(ReportFormat.timestamp(status.heartbeat)))")
            } else {
                lines.append("daemon: not running" + (status.heartbeat.map { " (last heartbeat \(ReportFormat.timestamp($0)))" } ?? ""))
            }
            let config = options.loadConfig()
            let engine = ScheduleEngine()
            let now = Date()
            var table = TextTable(headers: ["CONNECTION", "ENABLED", "LAST FIRE", "NEXT FIRE"])
            for connection in config.connections.sorted(by: { $0.name < $1.name }) {
                let last = status.lastFires.first { $0.connection == connection.name }?.at
                let next = connection.isEnabled ? engine.nextFire(of: connection.schedule, after: now) : nil
                table.rows.append([connection.name, connection.isEnabled ? "yes" : "no", ReportFormat.timestamp(last), ReportFormat.timestamp(next)])
            }
            lines.append(table.render(colour: isTerminal))
            if status.failing.isEmpty {
                lines.append("failing: none")
            } else {
                lines.append("failing:")
                for run in status.failing {
                    lines.append("  \(run.connection): run \(run.id) \(run.status.rawValue) at \(ReportFormat.timestamp(run.startedAt))" + (run.error.map { " — \($0)" } ?? ""))
                }
            }
            for error in config.errors { printError("warning: " + error.description) }
            print(lines.joined(separator: "\n"))
        }
    }
}
