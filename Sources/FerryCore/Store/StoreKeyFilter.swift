import Foundation
import GRDB

/// Which profile ids and identifiers the store may hold: a Bloom filter, so a bulk writer looks up only keys it may find.
///
/// A load of new profiles spent a quarter of its writing thread looking up ids and identifiers that were not
/// there. The filter answers "surely absent" for nearly all of them without touching SQLite; "maybe" (every key
/// the store holds, and about one absent key in a hundred) still goes to the database. It never answers
/// "absent" for a key the store holds, so a writer that skips those lookups does exactly what it did before:
///
/// - it is built from every `profile.id` and `identifier` row, and the writer adds each key it writes;
/// - it carries the writing connection's ``WriterStamp`` from before it was read (on the writer, or on a reader while
///   the writer is free) and from the end of every transaction that wrote through it since; at the start of every
///   batch, a changed stamp means someone else has written, and the writer goes back to looking everything up.
///
/// An import's filter (``build(reading:)``) keeps the identifiers in an ``OwnerTable`` instead: a key it holds comes
/// with the row key of the profile that owned it, which the import reads anyway and checks for the value, so even the
/// keys the store holds need no lookup.
struct StoreKeyFilter: Sendable {
    /// Filters of growing size: when one holds its capacity the next takes the new keys, so the
    /// false-positive rate stays near 1 % however far the load outgrows its estimate.
    private var layers: [Layer]
    /// The identifiers with their owners, instead of their bits in `layers`, for a filter built for an import
    /// (``build(reading:)``): a key it holds names the profile to read, so the key need not be looked up.
    private var owners: OwnerTable?
    /// The writing connection's stamp when the filter was last known to hold every key of the store.
    private var stamp: WriterStamp

    /// Reads every id and identifier of the store (on `db`, the writing connection, inside a transaction),
    /// sized for about `expectedNewKeys` more.
    static func build(db: Database, expectedNewKeys: Int) throws -> StoreKeyFilter {
        var filter: StoreKeyFilter?
        try db.inSavepoint {
            filter = try read(db, expectedNewKeys: expectedNewKeys, stamp: WriterStamp(db))
            return .commit
        }
        return filter!
    }

    /// Reads every id and identifier of the store on one of `writer`'s reading connections, so the writer stays
    /// free (an import reads them while the platform prepares its export), sized for as many new keys as the store
    /// holds; the identifiers are kept with their owners (``owner(of:)``). It is stamped with the writing connection
    /// as it was before the read began: anything written from then on, by anyone, makes it stale at its first
    /// ``isCurrent(_:)``. Cancelling the task interrupts the read.
    static func build(reading writer: any DatabaseWriter) async throws -> StoreKeyFilter {
        let stamp = try await writer.writeWithoutTransaction { try WriterStamp($0) }
        return try await writer.read { db in
            try db.withPageCache(kibibytes: 2048) { try read(db, expectedNewKeys: nil, keepingOwners: true, stamp: stamp) }
        }
    }

    /// The filter of every key `db` sees (`expectedNewKeys` nil: as many as it holds), stamped `stamp`.
    private static func read(_ db: Database, expectedNewKeys: Int?, keepingOwners: Bool = false, stamp: WriterStamp) throws -> StoreKeyFilter {
        let profiles = try Int.fetchOne(db, sql: "SELECT count(*) FROM profile") ?? 0
        let identifiers = try Int.fetchOne(db, sql: "SELECT count(*) FROM identifier") ?? 0
        let bloomKeys = keepingOwners ? profiles : profiles + identifiers
        var layer = Layer(capacity: max(bloomKeys + (expectedNewKeys ?? bloomKeys), 1 << 16))
        var owners = keepingOwners ? OwnerTable(slots: 2 * identifiers) : nil
        let ids = try String.fetchCursor(db, sql: "SELECT id FROM profile")
        while let id = try ids.next() { layer.insert(Self.hash(property: nil, value: id)) }
        // One property at a time (each found with one seek: the key starts with it), so a row reads only its value.
        var property = try String.fetchOne(db, sql: "SELECT min(property) FROM identifier")
        while let current = property {
            if owners != nil {
                let rows = try Row.fetchCursor(db, sql: "SELECT value, profile_pk FROM identifier WHERE property = ?", arguments: [current])
                while let row = try rows.next() {
                    var value: String = row[0]
                    let hash = value.withUTF8 { Self.hash(property: current, bytes: UnsafeRawBufferPointer($0)) }
                    owners!.insert(hash, owner: row[1])
                }
            } else {
                let values = try String.fetchCursor(db, sql: "SELECT value FROM identifier WHERE property = ?", arguments: [current])
                while let value = try values.next() { layer.insert(Self.hash(property: current, value: value)) }
            }
            property = try String.fetchOne(db, sql: "SELECT min(property) FROM identifier WHERE property > ?", arguments: [current])
        }
        return StoreKeyFilter(layers: [layer], owners: owners, stamp: stamp)
    }

    private init(layers: [Layer], owners: OwnerTable?, stamp: WriterStamp) {
        self.layers = layers
        self.owners = owners
        self.stamp = stamp
    }

    /// Whether nobody has written since the filter was last stamped (call on the writing connection, inside the
    /// write transaction that will trust it).
    func isCurrent(_ db: Database) throws -> Bool {
        isCurrent(at: try WriterStamp(db))
    }

    /// ``isCurrent(_:)`` for the writing connection's stamp `current`, read in the same transaction.
    func isCurrent(at current: WriterStamp) -> Bool {
        current == stamp
    }

    /// Marks the filter as holding every key of the store: call at the end of a transaction whose new keys were
    /// all inserted into it.
    mutating func stamp(_ db: Database) throws {
        stamp(at: try WriterStamp(db))
    }

    /// ``stamp(_:)`` with the writing connection's stamp `current`, read after the transaction's last write.
    mutating func stamp(at current: WriterStamp) {
        stamp = current
    }

    /// Whether the store may hold a profile with this id.
    func mayContain(id: String) -> Bool {
        mayContain(Self.hash(property: nil, value: id))
    }

    /// Whether the store may hold this identifier.
    func mayContain(_ key: IdentifierKey) -> Bool {
        if owners != nil { return owner(of: key) != .absent }
        return mayContain(key.storeHash)
    }

    /// What the filter knows of an identifier's owner. With owners kept, a key the store holds is always a
    /// ``OwnerHint/candidate(_:)`` or ``OwnerHint/unknown``, never ``OwnerHint/absent``; without, it is only ever
    /// absent or unknown.
    func owner(of key: IdentifierKey) -> OwnerHint {
        let hash = key.storeHash
        if let owners { return owners.owner(of: hash) }
        return mayContain(hash) ? .unknown : .absent
    }

    /// ``owner(of:)`` of each of `keys`, in order. The owner table is unwrapped once, not for each key
    /// (`keys.map(owner(of:))` took 0.14 s a 1M import against 0.08 s), and the lookups run back to back over the keys'
    /// hashes: each is a cache miss in a table of 16 MB, and misses with their addresses known ahead overlap instead of
    /// waiting one for another.
    func owners(of keys: some Sequence<IdentifierKey>) -> [OwnerHint] {
        let hashes = keys.map(\.storeHash)
        guard let owners else { return hashes.map { mayContain($0) ? .unknown : .absent } }
        return hashes.map { owners.owner(of: $0) }
    }

    /// Records a profile id the writer wrote.
    mutating func insert(id: String) {
        insert(Self.hash(property: nil, value: id))
    }

    /// Records an identifier the writer wrote, with the profile that now owns it (nil: none, or not known).
    mutating func insert(_ key: IdentifierKey, owner: Int64? = nil) {
        let hash = key.storeHash
        if owners != nil { owners!.insert(hash, owner: owner) } else { insert(hash) }
    }

    private func mayContain(_ hash: UInt64) -> Bool {
        layers.contains { $0.mayContain(hash) }
    }

    private mutating func insert(_ hash: UInt64) {
        if layers[layers.count - 1].isFull { layers.append(Layer(capacity: layers[layers.count - 1].capacity * 2)) }
        layers[layers.count - 1].insert(hash)
    }

    // MARK: - Hashing

    /// A 64-bit hash of the key's bytes: ids hash their value alone, identifiers their property, a byte that
    /// UTF-8 never holds, then their value (so no id and identifier share an input).
    static func hash(property: String?, value: String) -> UInt64 {
        var value = value
        return value.withUTF8 { hash(property: property, bytes: UnsafeRawBufferPointer($0)) }
    }

    private static func hash(property: String?, bytes: UnsafeRawBufferPointer) -> UInt64 {
        // FNV-1a, then a finalizer that spreads it over all 64 bits (the filter uses both halves).
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ byte: UInt8) { h = (h ^ UInt64(byte)) &* 0x100_0000_01b3 }
        if var property {
            property.withUTF8 { for byte in $0 { mix(byte) } }
            mix(0xFF)
        }
        for byte in bytes { mix(byte) }
        h ^= h >> 33
        h = h &* 0xff51_afd7_ed55_8ccd
        h ^= h >> 33
        h = h &* 0xc4ce_b9fe_1a85_ec53
        h ^= h >> 33
        return h
    }

    // MARK: - Owners

    /// What ``owner(of:)`` says of an identifier.
    enum OwnerHint: Equatable {
        /// The store surely does not hold it.
        case absent
        /// The store holds it, or another key that hashes alike: trust it only once the profile holds the value.
        case candidate(Int64)
        /// The store may hold it: look it up.
        case unknown
    }

    /// Identifier owners by the top 32 bits of the key's hash, in an open-addressed table of 8-byte slots (the hash
    /// bits, then the owner's row key), twice as many slots as the store's identifiers and doubled at 80 % full: 16 MB
    /// for a million, with room for 600,000 more. An answer is a
    /// candidate, not the owner: another key may share the 32 bits, and an owner may since have given the key up.
    /// Two keys meeting in one slot with different owners, and an owner not known or beyond 32 bits, leave it
    /// `unknown`, looked up as without the table; a key is never dropped, so `absent` stays exact.
    struct OwnerTable {
        private var slots: [UInt64]
        private(set) var count = 0
        /// The row-key half of a slot whose owner is not known.
        private static let unknownOwner = UInt64(UInt32.max)

        init(slots count: Int) {
            slots = [UInt64](repeating: 0, count: max(1024, count))
        }

        func owner(of hash: UInt64) -> OwnerHint {
            let bits = hash >> 32
            var i = home(bits)
            return slots.withUnsafeBufferPointer { slots in
                while true {
                    let slot = slots[i]
                    if slot == 0 { return .absent }
                    if slot >> 32 == bits {
                        let owner = slot & 0xFFFF_FFFF
                        return owner == Self.unknownOwner ? .unknown : .candidate(Int64(owner))
                    }
                    i = i + 1 == slots.count ? 0 : i + 1
                }
            }
        }

        /// Records that the key hashing to `hash` belongs to `owner`. A slot's owner half is never 0 (row keys
        /// kept start at 1), so 0 marks an empty slot.
        mutating func insert(_ hash: UInt64, owner: Int64?) {
            let bits = hash >> 32
            let ownerHalf = owner.flatMap { $0 > 0 && $0 < Int64(Self.unknownOwner) ? UInt64($0) : nil } ?? Self.unknownOwner
            var i = home(bits)
            while true {
                let slot = slots[i]
                if slot == 0 {
                    guard (count + 1) * 5 <= slots.count * 4 else {
                        grow()  // a new key past 80 % full: the slot it takes moves with the doubling
                        return insert(hash, owner: owner)
                    }
                    slots[i] = bits << 32 | ownerHalf
                    count += 1
                    return
                }
                if slot >> 32 == bits {
                    if slot & 0xFFFF_FFFF != ownerHalf { slots[i] = bits << 32 | Self.unknownOwner }
                    return
                }
                i = i + 1 == slots.count ? 0 : i + 1
            }
        }

        /// The slot a key's probe starts at: its 32 bits scaled to the table, so the table can grow from them alone.
        private func home(_ bits: UInt64) -> Int {
            Int(truncatingIfNeeded: (bits &* UInt64(slots.count)) >> 32)
        }

        private mutating func grow() {
            let old = slots
            slots = [UInt64](repeating: 0, count: old.count * 2)
            for slot in old where slot != 0 {
                var i = home(slot >> 32)
                while slots[i] != 0 { i = i + 1 == slots.count ? 0 : i + 1 }
                slots[i] = slot
            }
        }
    }

    // MARK: - One filter

    /// A split-block Bloom filter (as Parquet's): each key sets one bit in each of the eight words of one
    /// 32-byte block, so a query reads one cache line. About 1 % false positives at 10 bits a key.
    private struct Layer {
        private static let salts: [UInt32] = [0x47b6_137b, 0x4497_4d91, 0x8824_ad5b, 0xa2b7_289d,
                                              0x7054_95c7, 0x2df1_424b, 0x9efc_4947, 0x5c6b_fb31]
        let capacity: Int
        private var count = 0
        private var words: [UInt32]
        private let blockCount: UInt64

        init(capacity: Int) {
            self.capacity = capacity
            let blocks = max(1, (capacity * 10 + 255) / 256)
            blockCount = UInt64(blocks)
            words = [UInt32](repeating: 0, count: blocks * 8)
        }

        var isFull: Bool { count >= capacity }

        private func block(_ hash: UInt64) -> Int {
            Int(truncatingIfNeeded: ((hash >> 32) &* blockCount) >> 32) * 8
        }

        mutating func insert(_ hash: UInt64) {
            let base = block(hash)
            let low = UInt32(truncatingIfNeeded: hash)
            words.withUnsafeMutableBufferPointer { words in
                for i in 0..<8 { words[base + i] |= 1 << ((low &* Self.salts[i]) >> 27) }
            }
            count += 1
        }

        func mayContain(_ hash: UInt64) -> Bool {
            let base = block(hash)
            let low = UInt32(truncatingIfNeeded: hash)
            return words.withUnsafeBufferPointer { words in
                for i in 0..<8 where words[base + i] & (1 << ((low &* Self.salts[i]) >> 27)) == 0 { return false }
                return true
            }
        }
    }
}
