import Foundation

/// Property names a reader keeps, laid out so a stored key's UTF-8 is matched by length and bytes, without making a
/// string of it or hashing it.
///
/// An import reads half a million stored profiles of about ten properties to keep five: making a string of every stored
/// key and hashing it to ask whether it was wanted, and growing the result, were a third of decoding them.
public struct PropertyKeys: Sendable, ExpressibleByArrayLiteral {
    /// The names, for asking whether one is kept.
    public let names: Set<String>
    /// The names by their UTF-8 length (`byLength[n]` holds those of `n` bytes), each with its bytes.
    private let byLength: [[Entry]]

    private struct Entry: Sendable {
        let name: String
        let utf8: [UInt8]
    }

    public init(_ names: Set<String>) {
        self.names = names
        var byLength: [[Entry]] = []
        for name in names.sorted() {
            let utf8 = Array(name.utf8)
            while byLength.count <= utf8.count { byLength.append([]) }
            byLength[utf8.count].append(Entry(name: name, utf8: utf8))
        }
        self.byLength = byLength
    }

    public init(arrayLiteral names: String...) {
        self.init(Set(names))
    }

    /// How many names are kept.
    public var count: Int { names.count }

    /// Whether `name` is kept.
    public func contains(_ name: String) -> Bool { names.contains(name) }

    /// The kept name whose UTF-8 is `bytes`, or nil when none is.
    func name(utf8 bytes: UnsafeBufferPointer<UInt8>) -> String? {
        guard bytes.count < byLength.count else { return nil }
        for entry in byLength[bytes.count] {
            let equal = entry.utf8.withUnsafeBufferPointer { kept in
                bytes.count == 0 || memcmp(kept.baseAddress!, bytes.baseAddress!, bytes.count) == 0
            }
            if equal { return entry.name }
        }
        return nil
    }
}
