import Foundation

/// Parses `segments.yaml` (DESIGN.md "Goal files") into segment definitions, reporting every problem.
public enum SegmentsParser {
    static let operators = ["eq", "ne", "in", "contains", "exists", "gt", "gte", "lt", "lte", "before", "after", "within_days"]

    /// The definitions and the problems found; definitions are empty when any problem was found.
    public static func parse(text: String, file: String) -> (segments: [SegmentDefinition], errors: [ConfigError]) {
        let d = Diagnostics(file: file)
        guard let root = YAMLLoader.load(text: text, diagnostics: d),
              let top = root.mapping(allowedKeys: ["segments"], required: ["segments"]),
              let items = top["segments"]?.sequence() else { return ([], d.errors) }
        var segments: [SegmentDefinition] = []
        var seen: [String: Int] = [:]
        for item in items {
            guard let m = item.mapping(allowedKeys: ["name", "description", "all", "any", "not"], required: ["name"]) else { continue }
            guard let name = m["name"]?.slug(what: "segment name") else { continue }
            if let line = seen[name] {
                d.report(.duplicateName, at: m["name"]!.mark, "segment '\(name)' is defined twice (first on line \(line))")
                continue
            }
            seen[name] = m["name"]!.mark.line
            let combinators = ["all", "any", "not"].filter(m.has)
            if combinators.count > 1 {
                d.report(.conflictingKeys, at: m.keyMark(combinators[1]), "segment '\(name)' has both \(combinators[0]) and \(combinators[1]): nest one inside the other")
                continue
            }
            var rule: SegmentRule?
            if let key = combinators.first, let value = m[key] {
                guard let parsed = combinator(key, value) else { continue }
                rule = parsed
            }
            segments.append(SegmentDefinition(name: name, rule: rule))
        }
        return (d.errors.isEmpty ? segments : [], d.errors)
    }

    private static func combinator(_ key: String, _ value: YAMLValue) -> SegmentRule? {
        if key == "not", case .mapping = value.node {
            return rule(value).map(SegmentRule.not)
        }
        guard let items = value.sequence() else { return nil }
        if items.isEmpty {
            value.diagnostics.report(.invalidValue, at: value.mark, "\(value.path) must hold at least one rule")
            return nil
        }
        let rules = items.compactMap(rule)
        guard rules.count == items.count else { return nil }
        switch key {
        case "all": return .all(rules)
        case "any": return .any(rules)
        default: return .not(.all(rules))
        }
    }

    private static func rule(_ v: YAMLValue) -> SegmentRule? {
        guard case .mapping(let raw) = v.node else {
            v.diagnostics.report(.wrongType, at: v.mark, "\(v.path) must be a rule: { property: …, operator: value } or all/any/not")
            return nil
        }
        let keys = raw.keys.compactMap { if case .scalar(let s) = $0 { return s.string } else { return nil } }
        if keys.count == 1, let only = keys.first, ["all", "any", "not"].contains(only) {
            guard let m = v.mapping(allowedKeys: ["all", "any", "not"]), let inner = m[only] else { return nil }
            return combinator(only, inner)
        }
        guard let m = v.mapping(allowedKeys: ["property"] + operators, required: ["property"]) else { return nil }
        guard let property = m["property"]?.nonEmptyString() else { return nil }
        let ops = operators.filter(m.has)
        guard ops.count == 1, let opName = ops.first, let operand = m[opName] else {
            v.diagnostics.report(.invalidValue, at: m.mark, "\(v.path) needs exactly one operator (\(operators.joined(separator: ", "))), found \(ops.isEmpty ? "none" : ops.joined(separator: ", "))")
            return nil
        }
        let op: SegmentOperator?
        switch opName {
        case "eq": op = ruleValue(operand).map(SegmentOperator.eq)
        case "ne": op = ruleValue(operand).map(SegmentOperator.ne)
        case "in":
            let items = operand.sequence() ?? []
            let values = items.compactMap(ruleValue)
            op = values.count == items.count && !items.isEmpty ? .in(values) : nil
            if items.isEmpty, case .sequence = operand.node { operand.diagnostics.report(.invalidValue, at: operand.mark, "\(operand.path) must list at least one value") }
        case "contains": op = operand.string().map(SegmentOperator.contains)
        case "exists": op = operand.bool().map(SegmentOperator.exists)
        case "gt": op = operand.double().map(SegmentOperator.gt)
        case "gte": op = operand.double().map(SegmentOperator.gte)
        case "lt": op = operand.double().map(SegmentOperator.lt)
        case "lte": op = operand.double().map(SegmentOperator.lte)
        case "before", "after":
            guard let text = operand.string() else { return nil }
            guard let date = ISO8601.parse(text) else {
                operand.diagnostics.report(.invalidValue, at: operand.mark, "\(operand.path) '\(text)' must be an ISO 8601 date like 2026-01-31 or 2026-01-31T12:00:00Z")
                return nil
            }
            op = opName == "before" ? .before(date) : .after(date)
        default:
            guard let n = operand.int() else { return nil }
            guard n >= 0 else {
                operand.diagnostics.report(.invalidValue, at: operand.mark, "\(operand.path) must be 0 or more days")
                return nil
            }
            op = .withinDays(n)
        }
        return op.map { .condition(property: property, $0) }
    }

    private static func ruleValue(_ v: YAMLValue) -> RuleValue? {
        guard case .scalar(let s) = v.node else {
            v.diagnostics.report(.wrongType, at: v.mark, "\(v.path) must be a single value")
            return nil
        }
        // Quoted scalars stay text even when they look like numbers ("007").
        if s.style == .plain, let n = Double(s.string), n.isFinite { return .number(n) }
        return .text(s.string)
    }
}
