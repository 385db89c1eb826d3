import Foundation

/// Everything in a schedules folder: segments, connections, and every problem found.
public struct FerryConfig: Sendable {
    public var segments: [SegmentDefinition]
    public var connections: [Connection]
    /// Per connection file, its parse result (also for files with errors).
    public var files: [ConnectionParseResult]
    /// Every problem, ordered by file, then line.
    public var errors: [ConfigError]

    /// The connection named `name`, if it parsed cleanly.
    public func connection(named name: String) -> Connection? {
        connections.first { $0.name == name }
    }

    /// The parse result of the file declaring connection `name`, even when the file has errors.
    public func file(declaring name: String) -> ConnectionParseResult? {
        files.first { $0.name == name }
    }
}

/// Reads a schedules folder: `segments.yaml` and one `*.yaml` file per connection.
public struct ConfigLoader: Sendable {
    public var environment: [String: String]

    public init(environment: [String: String]) {
        self.environment = environment
    }

    /// The name of the segments file inside the folder.
    public static let segmentsFile = "segments.yaml"

    /// Loads and validates everything under `directory`.
    public func load(directory: String) -> FerryConfig {
        var errors: [ConfigError] = []
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            let error = ConfigError(.io, file: directory, line: 0, column: 0, "schedules folder not found (use --schedules DIR)")
            return FerryConfig(segments: [], connections: [], files: [], errors: [error])
        }
        let segmentsPath = (directory as NSString).appendingPathComponent(Self.segmentsFile)
        var segments: [SegmentDefinition] = []
        if FileManager.default.fileExists(atPath: segmentsPath) {
            switch Self.readText(segmentsPath) {
            case .success(let text):
                let parsed = SegmentsParser.parse(text: text, file: segmentsPath)
                segments = parsed.segments
                errors += parsed.errors
            case .failure(let error):
                errors.append(error)
            }
        }
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { ($0.hasSuffix(".yaml") || $0.hasSuffix(".yml")) && $0 != Self.segmentsFile }
            .sorted()
        // A segments file with errors still names its segments, so goals are not also reported as unknown.
        let known = Set(segments.map(\.name)).union(errors.isEmpty ? [] : Self.segmentNamesLeniently(segmentsPath))
        let parser = ConnectionParser(environment: environment, knownSegments: known)
        var files: [ConnectionParseResult] = []
        var firstFileForName: [String: String] = [:]
        for name in names {
            let path = (directory as NSString).appendingPathComponent(name)
            switch Self.readText(path) {
            case .failure(let error):
                errors.append(error)
            case .success(let text):
                var result = parser.parse(text: text, file: path)
                if let connectionName = result.name {
                    if let other = firstFileForName[connectionName] {
                        let error = ConfigError(.duplicateName, file: path, line: 1, column: 1,
                                                "connection name '\(connectionName)' is already used by \(other)")
                        result.errors.append(error)
                        result.connection = nil
                    } else {
                        firstFileForName[connectionName] = path
                    }
                }
                errors += result.errors
                files.append(result)
            }
        }
        return FerryConfig(segments: segments, connections: files.compactMap(\.connection), files: files, errors: errors)
    }

    /// Reads a file as UTF-8, refusing other encodings with a located error.
    static func readText(_ path: String) -> Result<String, ConfigError> {
        guard let data = FileManager.default.contents(atPath: path) else {
            return .failure(ConfigError(.io, file: path, line: 0, column: 0, "cannot read the file"))
        }
        guard let text = String(validating: data, as: UTF8.self) else {
            let (line, column) = firstInvalidUTF8(in: data)
            return .failure(ConfigError(.yamlSyntax, file: path, line: line, column: column, "the file is not valid UTF-8"))
        }
        return .success(text)
    }

    /// The line and column (in characters) of the first byte that is not valid UTF-8.
    static func firstInvalidUTF8(in data: Data) -> (line: Int, column: Int) {
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = data.makeIterator()
        var line = 1, column = 1
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let encoded):
                if encoded.count == 1 && encoded.first == 10 { line += 1; column = 1 } else { column += 1 }
            case .emptyInput, .error:
                return (line, column)
            }
        }
    }

    private static func segmentNamesLeniently(_ path: String) -> Set<String> {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        var names = Set<String>()
        for line in text.split(separator: "\n") {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            for prefix in ["- name:", "name:"] where trimmed.hasPrefix(prefix) {
                names.insert(trimmed.dropFirst(prefix.count).trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\"'")))
            }
        }
        return names
    }
}
