import Foundation

/// What reading one connection file produced: the connection when it is valid, and every problem found.
public struct ConnectionParseResult: Sendable {
    /// The whole validated connection; nil when any error was found.
    public var connection: Connection?
    /// The name and schedule alone, available when just those parts are valid (enough for `ferry next`).
    public var name: String?
    public var schedule: Schedule?
    /// Every problem in the file.
    public var errors: [ConfigError]
    /// The problems in the name, timezone and schedule: the ones that stop `ferry next`.
    public var scheduleErrors: [ConfigError]
}

/// Parses and validates connection files against the schema in DESIGN.md.
public struct ConnectionParser: Sendable {
    /// Environment variables for `${VAR}` references.
    public var environment: [String: String]
    /// Segment names a goal may refer to.
    public var knownSegments: Set<String>

    public init(environment: [String: String], knownSegments: Set<String>) {
        self.environment = environment
        self.knownSegments = knownSegments
    }

    static let topKeys = ["name", "description", "enabled", "timezone", "schedule", "notify", "objectives", "destination", "goals"]
    static let scheduleKeys = ["at", "weekdays", "monthdays", "times_per_day", "cron", "once", "catch_up", "dst"]

    /// Reads one file's text; `file` names it in messages.
    public func parse(text: String, file: String) -> ConnectionParseResult {
        let d = Diagnostics(file: file)
        var result = parse(text: text, diagnostics: d)
        let byPosition: (ConfigError, ConfigError) -> Bool = { ($0.line, $0.column) < ($1.line, $1.column) }
        result.errors = d.errors.sorted(by: byPosition)
        result.scheduleErrors = d.scheduleErrors.sorted(by: byPosition)
        return result
    }

    private func parse(text: String, diagnostics d: Diagnostics) -> ConnectionParseResult {
        var result = ConnectionParseResult(errors: [], scheduleErrors: [])
        guard let root = d.scheduleSection({ YAMLLoader.load(text: text, diagnostics: d) }),
              let top = d.scheduleSection({ root.mapping(allowedKeys: Self.topKeys, required: ["name", "timezone", "schedule", "destination", "goals"]) })
        else { return result }

        let name = d.scheduleSection { top["name"]?.slug(what: "connection name") }
        let zone = d.scheduleSection { top["timezone"].flatMap(timeZone) }
        let scheduleParts = d.scheduleSection { top["schedule"].flatMap(schedule) }
        result.name = name
        if let zone, let scheduleParts {
            result.schedule = Schedule(rule: scheduleParts.rule, timeZoneIdentifier: zone, dst: scheduleParts.dst)
        }

        let description = top["description"]?.string()
        let enabled = top["enabled"]?.bool() ?? true
        let notify = top["notify"].flatMap(notifySettings)
        let objectives = top["objectives"]?.stringList() ?? []
        let destination = top["destination"].flatMap(destination)
        let goals = top["goals"].flatMap { parseGoals($0, destinationType: top["destination"].flatMap(destinationType)) } ?? []

        guard d.errors.isEmpty, let name, let schedule = result.schedule, let scheduleParts, let destination else {
            return result
        }
        result.connection = Connection(
            name: name, description: description, isEnabled: enabled, schedule: schedule,
            catchUp: scheduleParts.catchUp, notify: notify, objectives: objectives,
            destination: destination, goals: goals.filter(\.isImport) + goals.filter { !$0.isImport }, file: d.file)
        return result
    }

    // MARK: - Schedule

    private func timeZone(_ v: YAMLValue) -> String? {
        guard let id = v.nonEmptyString() else { return nil }
        guard TimeZone(identifier: id) != nil, id.contains("/") || id == "UTC" || id == "GMT" else {
            var message = "unknown time zone '\(id)': use an IANA name like America/New_York"
            let known = TimeZone.knownTimeZoneIdentifiers
            if let near = YAMLValue.closest(to: id, in: known) { message += "; did you mean '\(near)'?" }
            v.diagnostics.report(.unknownTimeZone, at: v.mark, message)
            return nil
        }
        return id
    }

    private struct ScheduleParts {
        var rule: ScheduleRule
        var dst: DSTPolicy
        var catchUp: CatchUpPolicy
    }

    private func schedule(_ v: YAMLValue) -> ScheduleParts? {
        guard let m = v.mapping(allowedKeys: Self.scheduleKeys) else { return nil }
        let d = v.diagnostics
        let errorsBefore = d.errors.count
        let shapes = ["cron", "once"].filter(m.has)
        let listKeys = ["at", "weekdays", "monthdays", "times_per_day"].filter(m.has)
        if shapes.count > 1 || (shapes.count == 1 && !listKeys.isEmpty) {
            let all = shapes + listKeys
            d.report(.conflictingKeys, at: m.keyMark(all[1]), "schedule.\(all[1]) cannot be combined with schedule.\(all[0]): use one of at/times_per_day, cron, once")
        }
        if m.has("weekdays") && m.has("monthdays") {
            d.report(.conflictingKeys, at: m.keyMark("monthdays"), "schedule.weekdays and schedule.monthdays are exclusive: use one")
        }
        if shapes.isEmpty && listKeys.filter({ $0 == "at" || $0 == "times_per_day" }).isEmpty {
            d.report(.missingKey, at: m.mark, "schedule needs one of at, times_per_day, cron or once")
        }

        var rule: ScheduleRule?
        if let cronValue = m["cron"], let text = cronValue.nonEmptyString() {
            do {
                rule = .cron(try CronExpression(parsing: text))
            } catch {
                d.report(.badCron, at: cronValue.mark, "schedule.cron '\(text)': \(error.field) field: \(error.message)")
            }
        } else if let onceValue = m["once"], let text = onceValue.nonEmptyString() {
            if let local = LocalDateTime(parsing: text) {
                rule = .once(local)
            } else {
                d.report(.badTime, at: onceValue.mark, "schedule.once '\(text)' must be a local date and time like 2026-12-24T09:00")
            }
        } else {
            var times: [WallTime] = []
            if let atValue = m["at"], let items = atValue.sequence() {
                if items.isEmpty { d.report(.invalidValue, at: atValue.mark, "schedule.at must list at least one time (HH:MM)") }
                for item in items {
                    guard let text = item.string() else { continue }
                    if let t = WallTime(parsing: text) { times.append(t) } else {
                        d.report(.badTime, at: item.mark, "\(item.path) '\(text)' is not a time: use HH:MM, 00:00 to 23:59")
                    }
                }
            }
            if let perDay = m["times_per_day"], let n = perDay.int() {
                if (1...1440).contains(n) {
                    times = Schedule.timesPerDay(n, startingAt: times.first ?? WallTime(hour: 0, minute: 0)!)
                } else {
                    d.report(.invalidValue, at: perDay.mark, "schedule.times_per_day must be 1 to 1440, found \(n)")
                }
            }
            var days = DayFilter.everyDay
            if let weekdays = m["weekdays"], let items = weekdays.sequence() {
                var set = Set<Weekday>()
                for item in items {
                    guard let text = item.string() else { continue }
                    if let day = Weekday(shortName: text) { set.insert(day) } else {
                        d.report(.invalidValue, at: item.mark, "\(item.path) '\(text)' is not a weekday: use mon, tue, wed, thu, fri, sat, sun")
                    }
                }
                if items.isEmpty { d.report(.invalidValue, at: weekdays.mark, "schedule.weekdays must list at least one day") }
                days = .weekdays(set)
            }
            if let monthdays = m["monthdays"], let items = monthdays.sequence() {
                var set = Set<MonthDay>()
                for item in items {
                    guard let text = item.string() else { continue }
                    if text.lowercased() == "last" { set.insert(.last) } else if let n = Int(text), (1...31).contains(n) {
                        set.insert(.day(n))
                    } else {
                        d.report(.invalidValue, at: item.mark, "\(item.path) '\(text)' is not a day of the month: use 1 to 31 or last")
                    }
                }
                if items.isEmpty { d.report(.invalidValue, at: monthdays.mark, "schedule.monthdays must list at least one day") }
                days = .monthdays(set)
            }
            if !times.isEmpty { rule = .times(Array(Set(times)).sorted(), days: days) }
        }

        var dst = DSTPolicy.default
        if let dstValue = m["dst"], let dm = dstValue.mapping(allowedKeys: ["gap", "overlap"]) {
            if let g = dm["gap"], let text = g.string() {
                if let policy = GapPolicy(rawValue: text) { dst.gap = policy } else {
                    d.report(.invalidValue, at: g.mark, "schedule.dst.gap '\(text)' must be shift, transition or skip")
                }
            }
            if let o = dm["overlap"], let text = o.string() {
                if let policy = OverlapPolicy(rawValue: text) { dst.overlap = policy } else {
                    d.report(.invalidValue, at: o.mark, "schedule.dst.overlap '\(text)' must be first, last or both")
                }
            }
        }
        var catchUp = CatchUpPolicy.once
        if let c = m["catch_up"], let text = c.string() {
            if let policy = CatchUpPolicy(rawValue: text) { catchUp = policy } else {
                d.report(.invalidValue, at: c.mark, "schedule.catch_up '\(text)' must be once or skip")
            }
        }
        guard d.errors.count == errorsBefore, let rule else { return nil }
        return ScheduleParts(rule: rule, dst: dst, catchUp: catchUp)
    }

    // MARK: - Notify, destination

    private func notifySettings(_ v: YAMLValue) -> NotifySettings? {
        guard let m = v.mapping(allowedKeys: ["email", "on"], required: ["email"]) else { return nil }
        let emails = m["email"]?.stringList() ?? []
        if let e = m["email"] {
            for address in emails where !address.contains("@") {
                v.diagnostics.report(.invalidValue, at: e.mark, "notify.email '\(address)' is not an email address")
            }
        }
        var events: Set<NotifyEvent> = [.failure]
        if let on = m["on"], let names = on.stringList() {
            events = []
            for name in names {
                if let event = NotifyEvent(rawValue: name) { events.insert(event) } else {
                    v.diagnostics.report(.invalidValue, at: on.mark, "notify.on '\(name)' must be failure or success")
                }
            }
        }
        return NotifySettings(email: emails, on: events)
    }

    /// Replaces `${VAR}` references with the environment's values.
    private func interpolated(_ v: YAMLValue) -> String? {
        guard let raw = v.string() else { return nil }
        var out = ""
        var rest = Substring(raw)
        while let start = rest.range(of: "${") {
            out += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                v.diagnostics.report(.invalidValue, at: v.mark, "\(v.path) has '${' without a closing '}'")
                return nil
            }
            let name = String(rest[start.upperBound..<end])
            guard let value = environment[name] else {
                v.diagnostics.report(.missingVariable, at: v.mark, "\(v.path) refers to ${\(name)}, but the environment variable \(name) is not set")
                return nil
            }
            out += value
            rest = rest[rest.index(after: end)...]
        }
        return out + rest
    }

    /// A secret must be exactly `${VAR}`: secrets are never written in files.
    private func secret(_ v: YAMLValue) -> Secret? {
        guard let raw = v.string() else { return nil }
        let trimmed = raw.trimmingCharacters(in: .whitespaces)
        guard trimmed.hasPrefix("${"), trimmed.hasSuffix("}"), trimmed.count > 3 else {
            v.diagnostics.report(.secretInFile, at: v.mark, "\(v.path) is a secret: write it as ${VARIABLE} and set the variable in the environment, never in the file")
            return nil
        }
        let name = String(trimmed.dropFirst(2).dropLast())
        guard let value = environment[name] else {
            v.diagnostics.report(.missingVariable, at: v.mark, "\(v.path) refers to ${\(name)}, but the environment variable \(name) is not set")
            return nil
        }
        return Secret(value: value, variable: name)
    }

    private func url(_ v: YAMLValue) -> String? {
        guard let text = interpolated(v) else { return nil }
        guard let u = URL(string: text), let scheme = u.scheme, ["http", "https"].contains(scheme), u.host != nil else {
            v.diagnostics.report(.invalidValue, at: v.mark, "\(v.path) must be an http(s) URL")
            return nil
        }
        return text.hasSuffix("/") ? String(text.dropLast()) : text
    }

    private func destination(_ v: YAMLValue) -> Destination? {
        let all = ["type", "api_key", "api_secret", "base_url", "host", "port", "username", "password",
                   "private_key", "passphrase", "folder", "known_hosts", "host_key_sha256"]
        guard let m = v.mapping(allowedKeys: all, required: ["type"]), let typeValue = m["type"],
              let type = typeValue.string() else { return nil }
        let d = v.diagnostics
        func only(_ allowed: [String]) {
            for entry in m.entries where !allowed.contains(entry.key) && entry.key != "type" {
                d.report(.unknownKey, at: entry.keyMark, "destination.\(entry.key) does not apply to a \(type) destination")
            }
        }
        func required(_ keys: [String]) -> Bool {
            var ok = true
            for key in keys where !m.has(key) {
                d.report(.missingKey, at: m.mark, "a \(type) destination needs '\(key)'")
                ok = false
            }
            return ok
        }
        switch type {
        case "sailthru":
            only(["api_key", "api_secret", "base_url"])
            guard required(["api_key", "api_secret"]) else { return nil }
            let key = m["api_key"].flatMap(secret), secretValue = m["api_secret"].flatMap(secret)
            let base = m["base_url"].map(url) ?? "https://api.sailthru.com"
            guard let key, let secretValue, let base else { return nil }
            return .sailthru(SailthruDestination(apiKey: key, apiSecret: secretValue, baseURL: base))
        case "sendgrid":
            only(["api_key", "base_url"])
            guard required(["api_key"]) else { return nil }
            let key = m["api_key"].flatMap(secret)
            let base = m["base_url"].map(url) ?? "https://api.sendgrid.com"
            guard let key, let base else { return nil }
            return .sendgrid(SendGridDestination(apiKey: key, baseURL: base))
        case "mapp":
            only(["host", "port", "username", "password", "private_key", "passphrase", "folder", "known_hosts", "host_key_sha256"])
            guard required(["host", "username", "folder"]) else { return nil }
            let host = m["host"].flatMap(interpolated)
            var port = 22
            if let p = m["port"] {
                if let text = interpolated(p) {
                    if let n = Int(text), (1...65535).contains(n) { port = n } else {
                        d.report(.invalidValue, at: p.mark, "destination.port must be 1 to 65535, found '\(text)'")
                    }
                }
            }
            let username = m["username"].flatMap(interpolated)
            let folder = m["folder"].flatMap(interpolated)
            var auth: SFTPAuthentication?
            switch (m["password"], m["private_key"]) {
            case (.some(let p), nil):
                if m.has("passphrase") { d.report(.conflictingKeys, at: m.keyMark("passphrase"), "destination.passphrase goes with private_key, not password") }
                auth = secret(p).map { .password($0) }
            case (nil, .some(let k)):
                let passphrase = m["passphrase"].flatMap(secret)
                auth = interpolated(k).map { .privateKey(path: $0, passphrase: passphrase) }
            case (.some, .some):
                d.report(.conflictingKeys, at: m.keyMark("private_key"), "destination: use password or private_key, not both")
            case (nil, nil):
                d.report(.missingKey, at: m.mark, "a mapp destination needs password or private_key")
            }
            var hostKey: HostKeyCheck?
            switch (m["known_hosts"], m["host_key_sha256"]) {
            case (.some(let k), nil): hostKey = interpolated(k).map { .knownHosts(path: $0) }
            case (nil, .some(let f)):
                if let text = interpolated(f) {
                    if text.hasPrefix("SHA256:"), text.count > 7 { hostKey = .sha256(text) } else {
                        d.report(.invalidValue, at: f.mark, "destination.host_key_sha256 must look like SHA256:base64 (as ssh-keygen -lf prints it)")
                    }
                }
            case (.some, .some):
                d.report(.conflictingKeys, at: m.keyMark("host_key_sha256"), "destination: use known_hosts or host_key_sha256, not both")
            case (nil, nil):
                d.report(.missingKey, at: m.mark, "a mapp destination needs known_hosts or host_key_sha256: ferry never connects to an unverified host")
            }
            guard let host, let username, let folder, let auth, let hostKey else { return nil }
            return .mapp(MappDestination(host: host, port: port, username: username, authentication: auth, folder: folder, hostKey: hostKey))
        default:
            d.report(.invalidValue, at: typeValue.mark, "destination.type '\(type)' must be sailthru, sendgrid or mapp")
            return nil
        }
    }

    // MARK: - Goals

    /// The destination's `type`, read on its own so goals are checked even when other destination keys are wrong.
    private func destinationType(_ v: YAMLValue) -> String? {
        guard case .mapping(let m) = v.node else { return nil }
        for (key, value) in m {
            if case .scalar(let k) = key, k.string == "type", case .scalar(let t) = value,
               ["sailthru", "sendgrid", "mapp"].contains(t.string) { return t.string }
        }
        return nil
    }

    private func parseGoals(_ v: YAMLValue, destinationType: String?) -> [Goal]? {
        guard let items = v.sequence() else { return nil }
        let d = v.diagnostics
        if items.isEmpty { d.report(.invalidValue, at: v.mark, "goals must list at least one import or export") }
        var goals: [(Goal, SourceMark)] = []
        for item in items {
            guard let m = item.mapping(allowedKeys: ["import", "export"]) else { continue }
            guard m.entries.count == 1, let entry = m.entries.first else {
                d.report(.conflictingKeys, at: m.mark, "\(item.path) must hold exactly one of import or export")
                continue
            }
            guard let destinationType else { continue }
            let goal: Goal?
            switch (entry.key, destinationType) {
            case ("import", "sailthru"): goal = sailthruImport(entry.value).map(Goal.sailthruImport)
            case ("import", _):
                d.report(.invalidValue, at: entry.keyMark, "\(item.path): a \(destinationType) destination has no import goal; only sailthru imports")
                goal = nil
            case ("export", "sailthru"): goal = sailthruExport(entry.value).map(Goal.sailthruExport)
            case ("export", "sendgrid"): goal = sendgridExport(entry.value).map(Goal.sendgridExport)
            default: goal = mappExport(entry.value).map(Goal.mappExport)
            }
            if let goal { goals.append((goal, entry.keyMark)) }
        }
        checkConflicts(goals, diagnostics: d)
        return goals.map(\.0)
    }

    /// Two goals that would fight over the same list, field or file.
    private func checkConflicts(_ goals: [(Goal, SourceMark)], diagnostics d: Diagnostics) {
        var claimed: [String: Int] = [:]
        for (index, (goal, mark)) in goals.enumerated() {
            let claims: [String]
            switch goal {
            case .sailthruImport(let g): claims = g.lists.map { "import of Sailthru list '\($0)'" }
            case .sailthruExport(let g): claims = g.lists.map { "export to Sailthru list '\($0)'" }
            case .sendgridExport(let g): claims = ["SendGrid membership field '\(g.membershipField)'"]
            case .mappExport(let g): claims = ["Mapp files '\(g.filePrefix)-\(g.segment)-*.csv'"]
            }
            for claim in claims {
                if let other = claimed[claim] {
                    d.report(.conflictingGoals, at: mark, "goals[\(index)] conflicts with goals[\(other)]: both use the \(claim)")
                } else {
                    claimed[claim] = index
                }
            }
        }
    }

    private func segmentName(_ v: YAMLValue) -> String? {
        guard let name = v.nonEmptyString() else { return nil }
        guard knownSegments.contains(name) else {
            var message = "unknown segment '\(name)': define it in segments.yaml"
            if let near = YAMLValue.closest(to: name, in: knownSegments.sorted()) { message += "; did you mean '\(near)'?" }
            v.diagnostics.report(.unknownSegment, at: v.mark, message)
            return nil
        }
        return name
    }

    private func propertyName(_ v: YAMLValue) -> String? {
        guard let name = v.nonEmptyString() else { return nil }
        guard !name.contains(where: { $0.isWhitespace }) else {
            v.diagnostics.report(.invalidValue, at: v.mark, "\(v.path) '\(name)' is not a property name (no spaces)")
            return nil
        }
        return name
    }

    private func sailthruImport(_ v: YAMLValue) -> SailthruImportGoal? {
        guard let m = v.mapping(allowedKeys: ["lists", "match", "create_profiles", "list_name_property", "fields"],
                                required: ["lists", "match"]) else { return nil }
        let d = v.diagnostics
        let before = d.errors.count
        let lists = m["lists"]?.stringList() ?? []
        if lists.isEmpty, let l = m["lists"] { d.report(.invalidValue, at: l.mark, "import.lists must name at least one list") }
        var links: [IdentifierLink] = []
        if let mv = m["match"] {
            if case .mapping = mv.node, let mm = mv.mapping(allowedKeys: anyKeys(mv)) {
                for entry in mm.entries {
                    guard let property = propertyName(entry.value) else { continue }
                    if !Identifiers.isIdentifier(property) {
                        d.report(.invalidValue, at: entry.value.mark, "import.match.\(entry.key) → '\(property)' is not an identifier property (email or a name ending in _id)")
                    }
                    links.append(IdentifierLink(column: entry.key, property: property))
                }
                if mm.entries.isEmpty { d.report(.invalidValue, at: mv.mark, "import.match must map at least one column") }
            } else {
                d.report(.wrongType, at: mv.mark, "import.match must be a mapping of platform column → identifier property")
            }
        }
        let create = m["create_profiles"]?.bool() ?? false
        let listName = m["list_name_property"].flatMap(propertyName)
        var fields: [ImportField] = []
        for item in m["fields"]?.sequence() ?? [] {
            guard let fm = item.mapping(allowedKeys: ["from", "to", "mode"], required: ["from", "to", "mode"]) else { continue }
            let from = fm["from"]?.nonEmptyString(), to = fm["to"].flatMap(propertyName)
            var mode: MergeMode?
            if let mv = fm["mode"], let text = mv.string() {
                mode = MergeMode(rawValue: text)
                if mode == nil {
                    var message = "unknown merge mode '\(text)': use set, set_if_empty, add or sum"
                    if let near = YAMLValue.closest(to: text, in: MergeMode.allCases.map(\.rawValue)) { message += "; did you mean '\(near)'?" }
                    d.report(.unknownMergeMode, at: mv.mark, message)
                }
            }
            if let to, Identifiers.isIdentifier(to) || to == Profile.segmentsProperty {
                d.report(.invalidValue, at: fm["to"]!.mark, "\(item.path).to '\(to)' is an identifier or reserved property; link identifiers with match")
            }
            if let from, let to, let mode { fields.append(ImportField(from: from, to: to, mode: mode)) }
        }
        guard d.errors.count == before else { return nil }
        return SailthruImportGoal(lists: lists, match: links, createProfiles: create, listNameProperty: listName, fields: fields)
    }

    /// The keys a free-form mapping actually has (for mappings whose keys are data, not schema).
    private func anyKeys(_ v: YAMLValue) -> [String] {
        guard case .mapping(let m) = v.node else { return [] }
        return m.keys.compactMap { if case .scalar(let s) = $0 { return s.string } else { return nil } }
    }

    private func exportFields(_ v: YAMLValue?) -> [ExportField] {
        var fields: [ExportField] = []
        for item in v?.sequence() ?? [] {
            guard let m = item.mapping(allowedKeys: ["property", "segments", "objectives", "profile_id", "text", "to"], required: ["to"]) else { continue }
            let kinds = ["property", "segments", "objectives", "profile_id", "text"].filter(m.has)
            guard kinds.count == 1, let kind = kinds.first, let source = m[kind] else {
                item.diagnostics.report(.conflictingKeys, at: m.mark, "\(item.path) needs exactly one of property, segments, objectives, profile_id, text")
                continue
            }
            let value: ExportValue?
            switch kind {
            case "property": value = propertyName(source).map(ExportValue.property)
            case "segments":
                if case .scalar(let s) = source.node, s.string == "all" { value = .segments(nil) } else {
                    let names = source.stringList()?.compactMap { name -> String? in
                        knownSegments.contains(name) ? name : { source.diagnostics.report(.unknownSegment, at: source.mark, "unknown segment '\(name)' in \(source.path)"); return nil }()
                    }
                    value = names.map { .segments($0) }
                }
            case "objectives": value = source.bool() == true ? .objectives : nil
            case "profile_id": value = source.bool() == true ? .profileID : nil
            default: value = source.string().map(ExportValue.text)
            }
            if let value, let to = m["to"]?.nonEmptyString() { fields.append(ExportField(value: value, to: to)) }
        }
        return fields
    }

    private func sailthruExport(_ v: YAMLValue) -> SailthruExportGoal? {
        let keys = ["segment", "match", "method", "create_users", "existing_profiles", "lists", "remove_when_leaving", "max_removal_fraction", "fields"]
        guard let m = v.mapping(allowedKeys: keys, required: ["segment", "match"]) else { return nil }
        let d = v.diagnostics
        let before = d.errors.count
        let segment = m["segment"].flatMap(segmentName)
        var matchProperty: String?, matchKey: SailthruKey?
        if let mv = m["match"] {
            if case .mapping(let raw) = mv.node, raw.count == 1, let mm = mv.mapping(allowedKeys: anyKeys(mv)), let entry = mm.entries.first {
                matchProperty = entry.key
                if let text = entry.value.string() {
                    matchKey = SailthruKey(rawValue: text)
                    if matchKey == nil { d.report(.invalidValue, at: entry.value.mark, "export.match.\(entry.key) '\(text)' must be a Sailthru key: email, sid or extid") }
                }
            } else {
                d.report(.wrongType, at: mv.mark, "export.match must map one identifier property to a Sailthru key, like { email: email }")
            }
        }
        var method = SailthruExportMethod.job
        if let mv = m["method"], let text = mv.string() {
            if let parsed = SailthruExportMethod(rawValue: text) { method = parsed } else {
                d.report(.invalidValue, at: mv.mark, "export.method '\(text)' must be job or user")
            }
        }
        let fraction = m["max_removal_fraction"]?.double() ?? 0.5
        if let f = m["max_removal_fraction"], !(0...1).contains(fraction) {
            d.report(.invalidValue, at: f.mark, "export.max_removal_fraction must be between 0 and 1")
        }
        let lists = m["lists"]?.stringList() ?? []
        let removeWhenLeaving = m["remove_when_leaving"]?.bool() ?? false
        if removeWhenLeaving && lists.isEmpty {
            d.report(.invalidValue, at: m.keyMark("remove_when_leaving"), "export.remove_when_leaving needs lists to remove leavers from")
        }
        let goal = SailthruExportGoal(
            segment: segment ?? "", matchProperty: matchProperty ?? "", matchKey: matchKey ?? .email, method: method,
            createUsers: m["create_users"]?.bool() ?? false, existingProfiles: m["existing_profiles"]?.bool() ?? true,
            lists: lists, removeWhenLeaving: removeWhenLeaving, maxRemovalFraction: fraction, fields: exportFields(m["fields"]))
        return d.errors.count == before ? goal : nil
    }

    private func sendgridExport(_ v: YAMLValue) -> SendGridExportGoal? {
        let keys = ["segments", "list", "membership_field", "email", "first_name", "last_name", "fields"]
        guard let m = v.mapping(allowedKeys: keys, required: ["segments", "email"]) else { return nil }
        let d = v.diagnostics
        let before = d.errors.count
        var segments: [String] = []
        if let sv = m["segments"], let items = sv.sequence() {
            segments = items.compactMap(segmentName)
            if items.isEmpty { d.report(.invalidValue, at: sv.mark, "export.segments must name at least one segment") }
        }
        var fields: [SendGridField] = []
        for item in m["fields"]?.sequence() ?? [] {
            guard let fm = item.mapping(allowedKeys: ["property", "to", "type"], required: ["property", "to"]) else { continue }
            var type = SendGridFieldType.text
            if let tv = fm["type"], let text = tv.string() {
                if let parsed = SendGridFieldType(rawValue: text) { type = parsed } else {
                    d.report(.invalidValue, at: tv.mark, "\(item.path).type '\(text)' must be text, number or date")
                }
            }
            if let p = fm["property"].flatMap(propertyName), let to = fm["to"]?.nonEmptyString() {
                fields.append(SendGridField(property: p, to: to, type: type))
            }
        }
        let goal = SendGridExportGoal(
            segments: segments, list: m["list"]?.nonEmptyString(),
            membershipField: m["membership_field"]?.nonEmptyString() ?? "ferry_segments",
            emailProperty: m["email"].flatMap(propertyName) ?? "email",
            firstNameProperty: m["first_name"].flatMap(propertyName), lastNameProperty: m["last_name"].flatMap(propertyName),
            fields: fields)
        return d.errors.count == before ? goal : nil
    }

    private func mappExport(_ v: YAMLValue) -> MappExportGoal? {
        guard let m = v.mapping(allowedKeys: ["segment", "file_prefix", "columns"], required: ["segment", "file_prefix", "columns"]) else { return nil }
        let d = v.diagnostics
        let before = d.errors.count
        let segment = m["segment"].flatMap(segmentName)
        let prefix = m["file_prefix"]?.nonEmptyString()
        if let p = prefix, p.contains("/") || p.contains("..") {
            d.report(.invalidValue, at: m["file_prefix"]!.mark, "export.file_prefix '\(p)' must be a plain file name prefix")
        }
        var columns: [MappColumn] = []
        if let cv = m["columns"], let items = cv.sequence() {
            if items.isEmpty { d.report(.invalidValue, at: cv.mark, "export.columns must list at least the identifier column") }
            for item in items {
                guard let cm = item.mapping(allowedKeys: ["property", "header"], required: ["property", "header"]) else { continue }
                if let p = cm["property"].flatMap(propertyName), let h = cm["header"]?.nonEmptyString() {
                    columns.append(MappColumn(property: p, header: h))
                }
            }
        }
        if !columns.isEmpty, let columnsValue = m["columns"] {
            do {
                _ = try MappCSVWriter(columnHeaders: columns.map(\.header))
            } catch {
                d.report(.invalidValue, at: columnsValue.mark, "export.columns: \(error)")
            }
        }
        guard d.errors.count == before, let segment, let prefix else { return nil }
        return MappExportGoal(segment: segment, filePrefix: prefix, columns: columns)
    }
}
