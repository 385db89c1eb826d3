/// The Sailthru sandbox's users by sid: one array plus a sid → position map, so an export can read every user
/// in place (a dictionary hands out copies: copying a million users was a fifth of an export's samples).
/// A load puts the users in id order and new ones are appended (new sids are mostly larger), so an export
/// usually finds them in its order already and walks them in the order their storage was allocated.
/// Encodes and decodes as the `{sid: user}` object `users.json` has always held.
struct UserTable: Sendable {
    private var users: [SandboxUser] = []
    /// `sids[i]` is the key `users[i]` is stored under: its `id`, unless a hand-edited `users.json` says otherwise.
    private var sids: [String] = []
    private var positions: [String: Int] = [:]
    /// True while the users are in increasing `id` order (String's `<`), so an export needs no sort. A change
    /// that could break the order checks the neighbours; once broken, it stays false until the next load.
    private(set) var isInIDOrder = true

    init() {}

    var count: Int { users.count }
    var isEmpty: Bool { users.isEmpty }

    /// Every user, in the table's order (sid order after a load, then in order of creation).
    var values: [SandboxUser] { users }

    /// The user stored under `sid`; setting nil removes it (the last user moves into its place).
    subscript(sid: String) -> SandboxUser? {
        get { positions[sid].map { users[$0] } }
        set {
            if let position = positions[sid] {
                if let newValue {
                    users[position] = newValue
                    checkOrder(at: position)
                } else {
                    remove(at: position)
                }
            } else if let newValue {
                positions[sid] = users.count
                users.append(newValue)
                sids.append(sid)
                checkOrder(at: users.count - 1)
            }
        }
    }

    /// Clears `isInIDOrder` unless the user at `position` sorts between its neighbours.
    private mutating func checkOrder(at position: Int) {
        guard isInIDOrder, position < users.count else { return }
        isInIDOrder = (position == 0 || users[position - 1].id < users[position].id)
            && (position == users.count - 1 || users[position].id < users[position + 1].id)
    }

    private mutating func remove(at position: Int) {
        positions[sids[position]] = nil
        let last = users.count - 1
        if position != last {
            users.swapAt(position, last)
            sids.swapAt(position, last)
            positions[sids[position]] = position
        }
        users.removeLast()
        sids.removeLast()
        checkOrder(at: position)
    }

    /// Removes `list` from every user's lists (a deleted list).
    mutating func removeMemberships(of list: String) {
        for position in users.indices where users[position].lists[list] != nil { users[position].lists[list] = nil }
    }

    /// Calls `body` with every user in place, in the table's order: nothing is copied.
    func withUsers<Result>(_ body: (UnsafeBufferPointer<SandboxUser>) throws -> Result) rethrows -> Result {
        try users.withUnsafeBufferPointer(body)
    }
}

extension UserTable: Codable {
    /// A user's sid as the key of `users.json`'s object.
    private struct SIDKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    init(from decoder: any Decoder) throws {
        let byID = try decoder.singleValueContainer().decode([String: SandboxUser].self)
        let unordered = Array(byID)
        users.reserveCapacity(unordered.count)
        sids.reserveCapacity(unordered.count)
        positions.reserveCapacity(unordered.count)
        for index in SIDOrder.sorted(unordered.indices, by: { unordered[$0].value.id }) {
            positions[unordered[index].key] = users.count
            users.append(unordered[index].value)
            sids.append(unordered[index].key)
        }
        isInIDOrder = zip(users, users.dropFirst()).allSatisfy { $0.id < $1.id }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: SIDKey.self)
        for (sid, user) in zip(sids, users) { try container.encode(user, forKey: SIDKey(stringValue: sid)) }
    }
}

/// Orders items by a String id (a sid) without comparing Strings: ids of up to 32 ASCII bytes become four
/// big-endian words, compared as integers, several times cheaper than String's `<`.
enum SIDOrder {
    /// The ordering key of an ASCII id of up to 32 bytes, zero-padded: comparing keys orders ids as String's
    /// `<` does (byte order for ASCII; no id holds a NUL). Nil for any other id.
    static func key(_ id: String) -> (UInt64, UInt64, UInt64, UInt64)? {
        var id = id
        return id.withUTF8 { utf8 -> (UInt64, UInt64, UInt64, UInt64)? in
            guard utf8.count <= 32 else { return nil }
            var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
            for i in 0..<utf8.count {
                let byte = utf8[i]
                guard byte > 0, byte < 0x80 else { return nil }
                let shifted = UInt64(byte) << UInt64((7 - i % 8) * 8)
                switch i / 8 {
                case 0: words.0 |= shifted
                case 1: words.1 |= shifted
                case 2: words.2 |= shifted
                default: words.3 |= shifted
                }
            }
            return words
        }
    }

    /// `items` sorted by `id` as String's `<` orders ids (stable: equal ids keep their order).
    static func sorted<Items: Collection>(_ items: Items, by id: (Items.Element) -> String) -> [Items.Element] {
        var keyed: [(key: (UInt64, UInt64, UInt64, UInt64), item: Items.Element)] = []
        keyed.reserveCapacity(items.count)
        for item in items {
            guard let key = key(id(item)) else { return items.sorted { id($0) < id($1) } }
            keyed.append((key, item))
        }
        keyed.sort { $0.key < $1.key }
        return keyed.map(\.item)
    }
}
