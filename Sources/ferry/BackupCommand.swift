import ArgumentParser
import FerryCore
import Foundation

/// `ferry backup PATH`: an online copy of the store, safe while the daemon runs.
struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup", abstract: "Copy the store to PATH while ferry keeps running (SQLite online backup).")

    @OptionGroup var options: StoreOptions

    @Argument(help: "Where to write the copy (must not exist yet).")
    var path: String

    func run() async throws {
        try await reportingErrors {
            guard !FileManager.default.fileExists(atPath: path) else {
                throw CLIError.badInput("\(path) already exists; choose a new file name")
            }
            let database = try options.openDatabase()
            try database.backup(to: path)
            print("backed up \(options.databasePath) to \(path)")
        }
    }
}
