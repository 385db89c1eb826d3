/// MD5 (RFC 1321) in pure Swift, for Sailthru request signatures and the import's kept-export digest.
///
/// FerryCore may not import C or swift-crypto; MD5 is weak, but Sailthru's protocol mandates it.
/// The sandbox checks signatures with OpenSSL, so the two implementations check each other.
/// Whole 64-byte blocks are hashed straight from the caller's memory with the 64 steps written out:
/// a million-row export is 150 MB, and a byte-at-a-time loop through an array cost over a second of it.
public struct MD5: Sendable {
    private var state: (UInt32, UInt32, UInt32, UInt32) = (0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476)
    /// The bytes of an unfinished block (fewer than 64).
    private var buffer: [UInt8] = []
    private var length: UInt64 = 0

    public init() {}

    /// Feeds more bytes.
    public mutating func update<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        let done: Void? = bytes.withContiguousStorageIfAvailable { update(contiguous: $0) }
        if done == nil { Array(bytes).withUnsafeBufferPointer { update(contiguous: $0) } }
    }

    /// Feeds bytes already in contiguous memory.
    public mutating func update(contiguous bytes: UnsafeBufferPointer<UInt8>) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        length &+= UInt64(bytes.count)
        var offset = 0
        if !buffer.isEmpty {
            offset = min(64 - buffer.count, bytes.count)
            buffer.append(contentsOf: UnsafeBufferPointer(start: base, count: offset))
            guard buffer.count == 64 else { return }
            buffer.withUnsafeBufferPointer { processBlock(UnsafeRawPointer($0.baseAddress!)) }
            buffer.removeAll(keepingCapacity: true)
        }
        while bytes.count - offset >= 64 {
            processBlock(UnsafeRawPointer(base + offset))
            offset += 64
        }
        if offset < bytes.count {
            buffer.append(contentsOf: UnsafeBufferPointer(start: base + offset, count: bytes.count - offset))
        }
    }

    /// The 16-byte digest; the hasher is consumed.
    public consuming func finalize() -> [UInt8] {
        let bitLength = length &* 8
        var tail = buffer
        tail.append(0x80)
        while tail.count % 64 != 56 { tail.append(0) }
        for i in 0..<8 { tail.append(UInt8(truncatingIfNeeded: bitLength >> (8 * UInt64(i)))) }
        tail.withUnsafeBufferPointer { blocks in
            var offset = 0
            while offset < blocks.count {
                processBlock(UnsafeRawPointer(blocks.baseAddress! + offset))
                offset += 64
            }
        }
        var digest: [UInt8] = []
        digest.reserveCapacity(16)
        for word in [state.0, state.1, state.2, state.3] {
            for i in 0..<4 { digest.append(UInt8(truncatingIfNeeded: word >> (8 * UInt32(i)))) }
        }
        return digest
    }

    /// The lowercase hex MD5 of `text`'s UTF-8 bytes.
    public static func hex(_ text: String) -> String {
        hex(bytes: Array(text.utf8))
    }

    /// The lowercase hex MD5 of `bytes`.
    public static func hex(bytes: [UInt8]) -> String {
        var hasher = MD5()
        hasher.update(bytes)
        return Hex.lowercase(hasher.finalize())
    }

    @inline(__always) private static func rotl(_ x: UInt32, _ s: UInt32) -> UInt32 { (x << s) | (x >> (32 - s)) }
    @inline(__always) private static func ff(_ a: inout UInt32, _ b: UInt32, _ c: UInt32, _ d: UInt32, _ x: UInt32, _ s: UInt32, _ t: UInt32) {
        a = b &+ rotl(a &+ ((b & c) | (~b & d)) &+ x &+ t, s)
    }
    @inline(__always) private static func gg(_ a: inout UInt32, _ b: UInt32, _ c: UInt32, _ d: UInt32, _ x: UInt32, _ s: UInt32, _ t: UInt32) {
        a = b &+ rotl(a &+ ((d & b) | (~d & c)) &+ x &+ t, s)
    }
    @inline(__always) private static func hh(_ a: inout UInt32, _ b: UInt32, _ c: UInt32, _ d: UInt32, _ x: UInt32, _ s: UInt32, _ t: UInt32) {
        a = b &+ rotl(a &+ (b ^ c ^ d) &+ x &+ t, s)
    }
    @inline(__always) private static func ii(_ a: inout UInt32, _ b: UInt32, _ c: UInt32, _ d: UInt32, _ x: UInt32, _ s: UInt32, _ t: UInt32) {
        a = b &+ rotl(a &+ (c ^ (b | ~d)) &+ x &+ t, s)
    }

    /// One 64-byte block at `block` (RFC 1321 §3.4; the constants are floor(abs(sin(i + 1)) * 2^32)).
    private mutating func processBlock(_ block: UnsafeRawPointer) {
        @inline(__always) func w(_ i: Int) -> UInt32 { UInt32(littleEndian: block.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)) }
        var (a, b, c, d) = state
        Self.ff(&a, b, c, d, w(0), 7, 0xd76aa478)
        Self.ff(&d, a, b, c, w(1), 12, 0xe8c7b756)
        Self.ff(&c, d, a, b, w(2), 17, 0x242070db)
        Self.ff(&b, c, d, a, w(3), 22, 0xc1bdceee)
        Self.ff(&a, b, c, d, w(4), 7, 0xf57c0faf)
        Self.ff(&d, a, b, c, w(5), 12, 0x4787c62a)
        Self.ff(&c, d, a, b, w(6), 17, 0xa8304613)
        Self.ff(&b, c, d, a, w(7), 22, 0xfd469501)
        Self.ff(&a, b, c, d, w(8), 7, 0x698098d8)
        Self.ff(&d, a, b, c, w(9), 12, 0x8b44f7af)
        Self.ff(&c, d, a, b, w(10), 17, 0xffff5bb1)
        Self.ff(&b, c, d, a, w(11), 22, 0x895cd7be)
        Self.ff(&a, b, c, d, w(12), 7, 0x6b901122)
        Self.ff(&d, a, b, c, w(13), 12, 0xfd987193)
        Self.ff(&c, d, a, b, w(14), 17, 0xa679438e)
        Self.ff(&b, c, d, a, w(15), 22, 0x49b40821)
        Self.gg(&a, b, c, d, w(1), 5, 0xf61e2562)
        Self.gg(&d, a, b, c, w(6), 9, 0xc040b340)
        Self.gg(&c, d, a, b, w(11), 14, 0x265e5a51)
        Self.gg(&b, c, d, a, w(0), 20, 0xe9b6c7aa)
        Self.gg(&a, b, c, d, w(5), 5, 0xd62f105d)
        Self.gg(&d, a, b, c, w(10), 9, 0x02441453)
        Self.gg(&c, d, a, b, w(15), 14, 0xd8a1e681)
        Self.gg(&b, c, d, a, w(4), 20, 0xe7d3fbc8)
        Self.gg(&a, b, c, d, w(9), 5, 0x21e1cde6)
        Self.gg(&d, a, b, c, w(14), 9, 0xc33707d6)
        Self.gg(&c, d, a, b, w(3), 14, 0xf4d50d87)
        Self.gg(&b, c, d, a, w(8), 20, 0x455a14ed)
        Self.gg(&a, b, c, d, w(13), 5, 0xa9e3e905)
        Self.gg(&d, a, b, c, w(2), 9, 0xfcefa3f8)
        Self.gg(&c, d, a, b, w(7), 14, 0x676f02d9)
        Self.gg(&b, c, d, a, w(12), 20, 0x8d2a4c8a)
        Self.hh(&a, b, c, d, w(5), 4, 0xfffa3942)
        Self.hh(&d, a, b, c, w(8), 11, 0x8771f681)
        Self.hh(&c, d, a, b, w(11), 16, 0x6d9d6122)
        Self.hh(&b, c, d, a, w(14), 23, 0xfde5380c)
        Self.hh(&a, b, c, d, w(1), 4, 0xa4beea44)
        Self.hh(&d, a, b, c, w(4), 11, 0x4bdecfa9)
        Self.hh(&c, d, a, b, w(7), 16, 0xf6bb4b60)
        Self.hh(&b, c, d, a, w(10), 23, 0xbebfbc70)
        Self.hh(&a, b, c, d, w(13), 4, 0x289b7ec6)
        Self.hh(&d, a, b, c, w(0), 11, 0xeaa127fa)
        Self.hh(&c, d, a, b, w(3), 16, 0xd4ef3085)
        Self.hh(&b, c, d, a, w(6), 23, 0x04881d05)
        Self.hh(&a, b, c, d, w(9), 4, 0xd9d4d039)
        Self.hh(&d, a, b, c, w(12), 11, 0xe6db99e5)
        Self.hh(&c, d, a, b, w(15), 16, 0x1fa27cf8)
        Self.hh(&b, c, d, a, w(2), 23, 0xc4ac5665)
        Self.ii(&a, b, c, d, w(0), 6, 0xf4292244)
        Self.ii(&d, a, b, c, w(7), 10, 0x432aff97)
        Self.ii(&c, d, a, b, w(14), 15, 0xab9423a7)
        Self.ii(&b, c, d, a, w(5), 21, 0xfc93a039)
        Self.ii(&a, b, c, d, w(12), 6, 0x655b59c3)
        Self.ii(&d, a, b, c, w(3), 10, 0x8f0ccc92)
        Self.ii(&c, d, a, b, w(10), 15, 0xffeff47d)
        Self.ii(&b, c, d, a, w(1), 21, 0x85845dd1)
        Self.ii(&a, b, c, d, w(8), 6, 0x6fa87e4f)
        Self.ii(&d, a, b, c, w(15), 10, 0xfe2ce6e0)
        Self.ii(&c, d, a, b, w(6), 15, 0xa3014314)
        Self.ii(&b, c, d, a, w(13), 21, 0x4e0811a1)
        Self.ii(&a, b, c, d, w(4), 6, 0xf7537e82)
        Self.ii(&d, a, b, c, w(11), 10, 0xbd3af235)
        Self.ii(&c, d, a, b, w(2), 15, 0x2ad7d2bb)
        Self.ii(&b, c, d, a, w(9), 21, 0xeb86d391)
        state = (state.0 &+ a, state.1 &+ b, state.2 &+ c, state.3 &+ d)
    }
}
