import Foundation
import Yams

/// A position in a YAML file.
struct SourceMark: Hashable, Sendable {
    var line: Int
    var column: Int
    static let start = SourceMark(line: 1, column: 1)
}

/// Collects every problem found while reading one file, so `ferry validate` can report them all at once.
final class Diagnostics {
    let file: String
    private(set) var errors: [ConfigError] = []
    /// Errors in these keys still let `ferry next` compute fire times; the rest are warnings for it.
    private(set) var scheduleErrors: [ConfigError] = []
    var isInScheduleSection = false

    init(file: String) { self.file = file }

    func report(_ kind: ConfigError.Kind, at mark: SourceMark, _ message: String) {
        let error = ConfigError(kind, file: file, line: mark.line, column: mark.column, message)
        errors.append(error)
        if isInScheduleSection { scheduleErrors.append(error) }
    }

    /// Runs `body` with errors also counted against the schedule (name, timezone, schedule, dst).
    func scheduleSection<T>(_ body: () -> T) -> T {
        let previous = isInScheduleSection
        isInScheduleSection = true
        defer { isInScheduleSection = previous }
        return body()
    }
}

/// A YAML node with its location, and typed accessors that report problems instead of throwing.
struct YAMLValue {
    let node: Node
    let path: String
    let diagnostics: Diagnostics

    var mark: SourceMark {
        guard let m = node.mark else { return .start }
        return SourceMark(line: m.line, column: m.column)
    }

    /// A mapping's entries, or nil (reported) when the node is not a mapping.
    func mapping(allowedKeys: [String], required: [String] = []) -> YAMLMapping? {
        guard case .mapping(let m) = node else {
            diagnostics.report(.wrongType, at: mark, "\(path.isEmpty ? "the file" : path) must be a mapping (key: value), found \(kindName)")
            return nil
        }
        var entries: [(key: String, keyMark: SourceMark, value: YAMLValue)] = []
        var seen = Set<String>()
        for (k, v) in m {
            let keyMark = k.mark.map { SourceMark(line: $0.line, column: $0.column) } ?? mark
            guard case .scalar(let s) = k else {
                diagnostics.report(.wrongType, at: keyMark, "\(path) has a key that is not text")
                continue
            }
            let key = s.string
            let childPath = path.isEmpty ? key : "\(path).\(key)"
            if !allowedKeys.contains(key) {
                var message = "unknown key '\(key)'\(path.isEmpty ? "" : " in \(path)")"
                if let suggestion = Self.closest(to: key, in: allowedKeys) { message += "; did you mean '\(suggestion)'?" }
                diagnostics.report(.unknownKey, at: keyMark, message)
                continue
            }
            if !seen.insert(key).inserted {
                diagnostics.report(.conflictingKeys, at: keyMark, "key '\(key)' appears twice in \(path.isEmpty ? "the file" : path)")
                continue
            }
            entries.append((key, keyMark, YAMLValue(node: v, path: childPath, diagnostics: diagnostics)))
        }
        for key in required where !seen.contains(key) {
            diagnostics.report(.missingKey, at: mark, "\(path.isEmpty ? "the file" : path) needs '\(key)'")
        }
        return YAMLMapping(entries: entries, mark: mark)
    }

    /// A sequence's items, or nil (reported) when the node is not a sequence.
    func sequence() -> [YAMLValue]? {
        guard case .sequence(let s) = node else {
            diagnostics.report(.wrongType, at: mark, "\(path) must be a list, found \(kindName)")
            return nil
        }
        return s.enumerated().map { YAMLValue(node: $1, path: "\(path)[\($0)]", diagnostics: diagnostics) }
    }

    /// The scalar's text, or nil (reported) when it is not a scalar.
    func string() -> String? {
        guard case .scalar(let s) = node else {
            diagnostics.report(.wrongType, at: mark, "\(path) must be text, found \(kindName)")
            return nil
        }
        return s.string
    }

    /// A non-empty text value.
    func nonEmptyString() -> String? {
        guard let s = string() else { return nil }
        guard !s.trimmingCharacters(in: .whitespaces).isEmpty else {
            diagnostics.report(.invalidValue, at: mark, "\(path) must not be empty")
            return nil
        }
        return s
    }

    /// `true`/`false` (YAML 1.2 core forms), or nil (reported).
    func bool() -> Bool? {
        guard let s = string() else { return nil }
        switch s.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default:
            diagnostics.report(.wrongType, at: mark, "\(path) must be true or false, found '\(s)'")
            return nil
        }
    }

    /// A whole number, or nil (reported).
    func int() -> Int? {
        guard let s = string() else { return nil }
        guard let n = Int(s) else {
            diagnostics.report(.wrongType, at: mark, "\(path) must be a whole number, found '\(s)'")
            return nil
        }
        return n
    }

    /// A number, or nil (reported).
    func double() -> Double? {
        guard let s = string() else { return nil }
        guard let n = Double(s), n.isFinite else {
            diagnostics.report(.wrongType, at: mark, "\(path) must be a number, found '\(s)'")
            return nil
        }
        return n
    }

    /// A list of texts; a single text is accepted as a one-item list.
    func stringList() -> [String]? {
        if case .scalar = node { return string().map { [$0] } }
        guard let items = sequence() else { return nil }
        let strings = items.compactMap { $0.string() }
        return strings.count == items.count ? strings : nil
    }

    /// An identifier-like name: lower-case letters, digits and dashes.
    func slug(what: String) -> String? {
        guard let s = nonEmptyString() else { return nil }
        guard s.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }) else {
            diagnostics.report(.invalidValue, at: mark, "\(what) '\(s)' may hold only a-z, 0-9 and '-'")
            return nil
        }
        return s
    }

    var kindName: String {
        switch node {
        case .scalar(let s): return s.string.isEmpty ? "nothing" : "text '\(s.string.prefix(40))'"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }

    /// The allowed key nearest to `key` by edit distance, when it is close enough to be a likely typo.
    static func closest(to key: String, in candidates: [String]) -> String? {
        let scored = candidates.map { ($0, editDistance(key.lowercased(), $0)) }.min { $0.1 < $1.1 }
        guard let (best, distance) = scored, distance <= max(2, key.count / 3) else { return nil }
        return best
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.utf8), b = Array(b.utf8)
        var previous = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in stride(from: 1, through: b.count, by: 1) {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return a.isEmpty ? b.count : previous[b.count]
    }
}

/// The entries of a YAML mapping, in file order, already checked against the allowed keys.
struct YAMLMapping {
    let entries: [(key: String, keyMark: SourceMark, value: YAMLValue)]
    let mark: SourceMark

    subscript(key: String) -> YAMLValue? { entries.first { $0.key == key }?.value }
    func has(_ key: String) -> Bool { entries.contains { $0.key == key } }
    func keyMark(_ key: String) -> SourceMark { entries.first { $0.key == key }?.keyMark ?? mark }
}

/// Reads a YAML file into a node tree, reporting syntax errors and refusing alias bombs and huge documents.
enum YAMLLoader {
    /// The most nodes a configuration file may hold (after aliases are expanded).
    static let maximumNodes = 100_000
    /// The deepest nesting a configuration file may use.
    static let maximumDepth = 64
    /// The longest single value: configuration values are names, times and short texts, never data.
    static let maximumScalarBytes = 65_536

    static func load(text: String, diagnostics: Diagnostics) -> YAMLValue? {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            let (mark, problem) = describe(error, text: text)
            diagnostics.report(.yamlSyntax, at: mark, "YAML syntax: \(problem)")
            return nil
        } catch {
            diagnostics.report(.yamlSyntax, at: .start, "YAML syntax: \(error)")
            return nil
        }
        guard let root else {
            diagnostics.report(.missingKey, at: .start, "the file is empty")
            return nil
        }
        var budget = maximumNodes
        if let problem = firstProblem(root, &budget, depth: 0) {
            diagnostics.report(.invalidValue, at: problem.mark, problem.message)
            return nil
        }
        return YAMLValue(node: root, path: "", diagnostics: diagnostics)
    }

    /// The first node that breaks a limit (node count with aliases expanded, depth, value size), and why.
    private static func firstProblem(_ node: Node, _ budget: inout Int, depth: Int) -> (mark: SourceMark, message: String)? {
        budget -= 1
        let mark = node.mark.map { SourceMark(line: $0.line, column: $0.column) } ?? .start
        if budget < 0 {
            return (mark, "the document is too large: more than \(maximumNodes) values counting aliases (an alias bomb?)")
        }
        if depth >= maximumDepth {
            return (mark, "the document is nested more than \(maximumDepth) levels deep")
        }
        switch node {
        case .scalar(let s):
            let size = s.string.utf8.count
            return size > maximumScalarBytes ? (mark, "a value of \(size) bytes is over the \(maximumScalarBytes)-byte limit") : nil
        case .alias: return nil
        case .sequence(let items):
            for item in items { if let p = firstProblem(item, &budget, depth: depth + 1) { return p } }
            return nil
        case .mapping(let m):
            for (k, v) in m {
                if let p = firstProblem(k, &budget, depth: depth + 1) ?? firstProblem(v, &budget, depth: depth + 1) { return p }
            }
            return nil
        }
    }

    private static func describe(_ error: YamlError, text: String) -> (SourceMark, String) {
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _),
             let .composer(context, problem, mark, _):
            if problem.contains("nesting level") {
                return (SourceMark(line: mark.line, column: mark.column), "the document is nested too deeply")
            }
            let where_ = context.map { "\($0.text) " } ?? ""
            return (SourceMark(line: mark.line, column: mark.column), "\(where_)\(problem)".trimmingCharacters(in: .whitespaces))
        case let .reader(problem, offset, _, _):
            // The offset counts characters from the start of the text.
            return (offset.map { mark(ofCharacterOffset: $0, in: text) } ?? .start, problem)
        case let .duplicatedKeysInMapping(duplicates, context):
            let keys = duplicates.map { "'\($0)'" }.joined(separator: ", ")
            return (SourceMark(line: context.mark.line, column: context.mark.column),
                    "key \(keys) appears more than once in the same mapping (first here)")
        default:
            return (.start, "\(error)")
        }
    }

    /// The line and column of the character `offset` characters into `text`.
    private static func mark(ofCharacterOffset offset: Int, in text: String) -> SourceMark {
        var line = 1, column = 1
        for character in text.prefix(offset) {
            if character == "\n" || character == "\r\n" { line += 1; column = 1 } else { column += 1 }
        }
        return SourceMark(line: line, column: column)
    }
}
