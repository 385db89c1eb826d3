import Foundation

/// The subset of Segments 2.0 `query_dsl` the sandbox evaluates: `SELECT contact_id, updated_at FROM contact_data
/// WHERE …` with `=`, `!=`, `LIKE`, `NOT LIKE` on columns and string literals, joined by AND / OR / NOT and parentheses.
struct SegmentQuery: Sendable {
    struct ParseError: Error, CustomStringConvertible {
        var description: String
    }

    indirect enum Expression: Sendable {
        /// `pattern` is the literal compiled once, for LIKE and NOT LIKE.
        case compare(column: String, op: String, literal: String, pattern: LikePattern?)
        case and(Expression, Expression)
        case or(Expression, Expression)
        case not(Expression)
    }

    let expression: Expression

    init(parsing text: String) throws {
        var parser = Parser(tokens: try Self.tokenize(text))
        for word in ["SELECT", "CONTACT_ID", ",", "UPDATED_AT", "FROM", "CONTACT_DATA"] {
            try parser.expect(word)
        }
        if parser.peekKeyword == "AS" { parser.index += 2 }
        try parser.expect("WHERE")
        expression = try parser.orExpression()
        guard parser.index == parser.tokens.count else {
            throw ParseError(description: "unexpected '\(parser.tokens[parser.index].text)'")
        }
    }

    /// Every column the query reads.
    var columns: [String] {
        func walk(_ e: Expression) -> [String] {
            switch e {
            case .compare(let c, _, _, _): [c]
            case .and(let a, let b), .or(let a, let b): walk(a) + walk(b)
            case .not(let a): walk(a)
            }
        }
        return walk(expression)
    }

    /// Whether a contact matches, given its columns' values as text (nil = NULL, which matches nothing).
    func matches(_ value: (String) -> String?) -> Bool {
        func eval(_ e: Expression) -> Bool {
            switch e {
            case .compare(let column, let op, let literal, let pattern):
                guard let v = value(column) else { return false }
                switch op {
                case "=": return v == literal
                case "!=": return v != literal
                case "LIKE": return pattern!.matches(v)
                default: return !pattern!.matches(v)
                }
            case .and(let a, let b): return eval(a) && eval(b)
            case .or(let a, let b): return eval(a) || eval(b)
            case .not(let a): return !eval(a)
            }
        }
        return eval(expression)
    }

    struct Token: Sendable {
        var text: String
        var isLiteral: Bool
    }

    static func tokenize(_ text: String) throws -> [Token] {
        var tokens: [Token] = []
        var chars = Array(text)[...]
        while let c = chars.first {
            if c.isWhitespace { chars.removeFirst(); continue }
            if c == "'" {
                chars.removeFirst()
                var literal = ""
                var closed = false
                while let d = chars.popFirst() {
                    if d == "\\", let e = chars.popFirst() { literal.append(e); continue }
                    if d == "'" { closed = true; break }
                    literal.append(d)
                }
                guard closed else { throw ParseError(description: "unterminated string literal") }
                tokens.append(Token(text: literal, isLiteral: true))
            } else if c == "!" {
                chars.removeFirst()
                guard chars.popFirst() == "=" else { throw ParseError(description: "expected != ") }
                tokens.append(Token(text: "!=", isLiteral: false))
            } else if "(),=".contains(c) {
                chars.removeFirst()
                tokens.append(Token(text: String(c), isLiteral: false))
            } else if c.isLetter || c == "_" {
                var word = ""
                while let d = chars.first, d.isLetter || d.isNumber || d == "_" || d == "." { word.append(d); chars.removeFirst() }
                tokens.append(Token(text: word, isLiteral: false))
            } else {
                throw ParseError(description: "unsupported character '\(c)'")
            }
        }
        return tokens
    }

    struct Parser {
        var tokens: [Token]
        var index = 0

        var peekKeyword: String? { index < tokens.count && !tokens[index].isLiteral ? tokens[index].text.uppercased() : nil }

        mutating func expect(_ word: String) throws {
            guard peekKeyword == word else {
                throw ParseError(description: "expected \(word)" + (index < tokens.count ? ", found '\(tokens[index].text)'" : " at the end"))
            }
            index += 1
        }

        mutating func orExpression() throws -> Expression {
            var left = try andExpression()
            while peekKeyword == "OR" { index += 1; left = .or(left, try andExpression()) }
            return left
        }

        mutating func andExpression() throws -> Expression {
            var left = try unary()
            while peekKeyword == "AND" { index += 1; left = .and(left, try unary()) }
            return left
        }

        mutating func unary() throws -> Expression {
            if peekKeyword == "NOT" { index += 1; return .not(try unary()) }
            if peekKeyword == "(" {
                index += 1
                let inner = try orExpression()
                try expect(")")
                return inner
            }
            guard index < tokens.count, !tokens[index].isLiteral else { throw ParseError(description: "expected a column") }
            var column = tokens[index].text
            if let dot = column.lastIndex(of: ".") { column = String(column[column.index(after: dot)...]) }
            index += 1
            var op: String
            switch peekKeyword {
            case "=": op = "="
            case "!=": op = "!="
            case "LIKE": op = "LIKE"
            case "NOT":
                index += 1
                guard peekKeyword == "LIKE" else { throw ParseError(description: "expected LIKE after NOT") }
                op = "NOT LIKE"
            default: throw ParseError(description: "unsupported operator after \(column)")
            }
            index += 1
            guard index < tokens.count, tokens[index].isLiteral else { throw ParseError(description: "expected a string literal") }
            let literal = tokens[index].text
            index += 1
            return .compare(column: column, op: op, literal: literal, pattern: op.hasSuffix("LIKE") ? LikePattern(literal) : nil)
        }
    }
}

/// A LIKE pattern compiled once: matched over Unicode scalars the way the sandbox's former regex
/// (`^…$`, `%` → `.*`, `_` → `.`) matched, including that neither wildcard matches a line terminator.
struct LikePattern: Sendable {
    enum Token: Sendable, Equatable {
        case scalar(Unicode.Scalar)
        case one
        case run
    }

    let tokens: [Token]

    init(_ pattern: String) {
        var tokens: [Token] = []
        var chars = Array(pattern)[...]
        while let c = chars.popFirst() {
            if c == "%" {
                if chars.first == "%" { chars.removeFirst(); tokens.append(.scalar("%")) } else if tokens.last != .run { tokens.append(.run) }
            } else if c == "_" {
                tokens.append(.one)
            } else {
                tokens += c.unicodeScalars.map(Token.scalar)
            }
        }
        self.tokens = tokens
    }

    /// ICU's `.` matches anything but these.
    static func isLineTerminator(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x0A...0x0D, 0x85, 0x2028, 0x2029: true
        default: false
        }
    }

    func matches(_ text: String) -> Bool {
        let scalars = Array(text.unicodeScalars)
        // reachable[i]: the tokens so far can consume exactly the first i scalars.
        var reachable = [Bool](repeating: false, count: scalars.count + 1)
        reachable[0] = true
        for token in tokens {
            switch token {
            case .run:
                var i = 0
                while i < scalars.count {
                    if reachable[i], !Self.isLineTerminator(scalars[i]) { reachable[i + 1] = true }
                    i += 1
                }
            case .one, .scalar:
                var i = scalars.count
                while i > 0 {
                    let fits: Bool
                    if case .scalar(let s) = token { fits = scalars[i - 1] == s } else { fits = !Self.isLineTerminator(scalars[i - 1]) }
                    reachable[i] = reachable[i - 1] && fits
                    i -= 1
                }
                reachable[0] = false
            }
        }
        return reachable[scalars.count]
    }
}
