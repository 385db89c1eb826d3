/// A problem in a configuration file, located by file, line and column, with a message a person can act on.
public struct ConfigError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of problem it is, so callers and tests can tell them apart without parsing text.
    public enum Kind: String, Hashable, Sendable {
        case io, yamlSyntax, unknownKey, missingKey, wrongType, invalidValue
        case unknownTimeZone, badTime, badCron, conflictingKeys, unknownSegment
        case unknownMergeMode, missingVariable, secretInFile, duplicateName, conflictingGoals
    }

    public let kind: Kind
    public let file: String
    public let line: Int
    public let column: Int
    public let message: String

    public init(_ kind: Kind, file: String, line: Int, column: Int, _ message: String) {
        self.kind = kind
        self.file = file
        self.line = line
        self.column = column
        self.message = message
    }

    /// `file:line:column: message`, the form compilers use, so editors can jump to it.
    public var description: String { "\(file):\(line):\(column): \(message)" }
}
