import ArgumentParser
import FerryCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Options every command takes: where the schedules and the store are.
struct StoreOptions: ParsableArguments {
    @Option(help: "The folder of connection files and segments.yaml.")
    var schedules: String = "./Schedules"

    @Option(help: "The SQLite store (default: $FERRY_DB or ./ferry.sqlite).")
    var db: String?

    var databasePath: String {
        db ?? ProcessInfo.processInfo.environment["FERRY_DB"] ?? "./ferry.sqlite"
    }

    func openDatabase() throws -> AppDatabase {
        do {
            return try AppDatabase.open(path: databasePath)
        } catch {
            throw CLIError.failure("cannot open the store \(databasePath): \(error)")
        }
    }

    func loadConfig() -> FerryConfig {
        ConfigLoader(environment: ProcessInfo.processInfo.environment).load(directory: schedules)
    }

    /// The segments, or exit 2 with segments.yaml's problems.
    func loadSegments() throws -> [SegmentDefinition] {
        let config = loadConfig()
        let segmentErrors = config.errors.filter { $0.file.hasSuffix(ConfigLoader.segmentsFile) || $0.kind == .io && $0.line == 0 && !$0.file.hasSuffix(".yaml") }
        if !segmentErrors.isEmpty {
            for error in segmentErrors { printError(error.description) }
            throw ExitCode(2)
        }
        return config.segments
    }
}

/// A failure the command reports in one line before exiting with its code.
enum CLIError: Error, CustomStringConvertible {
    /// Bad input or configuration: exit 2.
    case badInput(String)
    /// Something failed: exit 1.
    case failure(String)

    var description: String {
        switch self {
        case .badInput(let m), .failure(let m): return m
        }
    }
}

/// Runs `body`, turning CLIError into a message on stderr and the right exit code.
func reportingErrors<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as CLIError {
        printError(error.description)
        switch error {
        case .badInput: throw ExitCode(2)
        case .failure: throw ExitCode(1)
        }
    } catch let error as InputError {
        printError(error.description)
        throw ExitCode(2)
    }
}

func printError(_ message: String) {
    FileHandle.standardError.write("ferry: " + message + "\n")
}

extension FileHandle {
    func write(_ text: String) {
        write(Data(text.utf8))
    }
}

/// Whether standard output is a terminal (colour and live progress only then).
var isTerminal: Bool { isatty(1) == 1 }

/// Whether standard error is a terminal (live progress bars only then).
var isStandardErrorTerminal: Bool { isatty(2) == 1 }
