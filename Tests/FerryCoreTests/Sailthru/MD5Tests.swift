import Foundation
import Testing
@testable import FerryCore

@Suite struct MD5Tests {
    /// RFC 1321 appendix A.5, the whole test suite.
    @Test(arguments: [
        ("", "d41d8cd98f00b204e9800998ecf8427e"),
        ("a", "0cc175b9c0f1b6a831c399e269772661"),
        ("abc", "900150983cd24fb0d6963f7d28e17f72"),
        ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
        ("abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"),
        ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "d174ab98d277d9f5a5611c2c9f419d9f"),
        ("12345678901234567890123456789012345678901234567890123456789012345678901234567890",
         "57edf4a22be3c955ac49da2e2107b67a"),
    ])
    func rfc1321TestSuite(input: String, digest: String) {
        #expect(MD5.hex(input) == digest)
    }

    @Test func blockBoundariesAndIncrementalUpdates() {
        // 55, 56, 63, 64 and 65 bytes straddle the padding edge cases.
        let expected = [
            55: "ef1772b6dff9a122358552954ad0df65", 56: "3b0c8ac703f828b04c6c197006d17218",
            63: "b06521f39153d618550606be297466d5", 64: "014842d480b571495a4a0363793f7367",
            65: "c743a45e0d2e6a95cb859adae0248435",
        ]
        for (count, digest) in expected {
            #expect(MD5.hex(String(repeating: "a", count: count)) == digest, "\(count) bytes")
        }
        var hasher = MD5()
        hasher.update(Array("message ".utf8))
        hasher.update(Array("digest".utf8))
        #expect(hasher.finalize().map { String(format: "%02x", $0) }.joined() == "f96b697d7cb7938d525a2f31aaf161d0")
    }

    @Test func hashesUTF8Bytes() {
        #expect(MD5.hex("é") == MD5.hex(bytes: [0xC3, 0xA9]))
    }

    /// Whole blocks are hashed straight from the caller's memory and the rest kept for the next update:
    /// any way of cutting the input gives the digest of the whole (Python's hashlib for the expected one).
    @Test func piecesOfAnySizeGiveTheWholeInputsDigest() {
        let data = (0..<1000).map { i in UInt8(truncatingIfNeeded: (i * 131 + 7) ^ (i >> 3)) }
        let expected = "ba2bf5bc0347c6b541628de5c8bb294e"
        #expect(MD5.hex(bytes: data) == expected)
        for pieces in [[1, 63, 64, 65, 128, 679], [200, 800], [0, 1000], [999, 1], [3, 61, 2, 62, 64, 808]] {
            var hasher = MD5()
            var offset = 0
            for size in pieces {
                data[offset..<offset + size].withUnsafeBufferPointer { hasher.update(contiguous: $0) }
                offset += size
            }
            #expect(hasher.finalize().map { String(format: "%02x", $0) }.joined() == expected, "\(pieces)")
        }
        var generic = MD5()
        generic.update(data.lazy.map { $0 })  // not contiguous: copied, then the same path
        #expect(generic.finalize().map { String(format: "%02x", $0) }.joined() == expected)
    }
}
