import COpenSSL

/// MD5 through OpenSSL's EVP API: independent of FerryCore's pure-Swift MD5 on purpose.
enum Digest {
    /// Lowercase hex MD5 of `text`'s UTF-8 bytes.
    static func md5Hex(_ text: String) -> String {
        var out = [UInt8](repeating: 0, count: 16)
        let bytes = Array(text.utf8)
        let ok = bytes.withUnsafeBytes { input in
            out.withUnsafeMutableBufferPointer { copenssl_md5(input.baseAddress, input.count, $0.baseAddress) }
        }
        guard ok == 1 else { return "" }
        let digits = Array("0123456789abcdef".utf8)
        var hex = [UInt8]()
        hex.reserveCapacity(32)
        for byte in out { hex.append(digits[Int(byte >> 4)]); hex.append(digits[Int(byte & 0x0F)]) }
        return String(decoding: hex, as: UTF8.self)
    }

    /// Sailthru's signature over received parameter values: secret + values sorted by bytes.
    static func signature(secret: String, values: [String]) -> String {
        md5Hex(secret + values.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }.joined())
    }
}

/// OpenSSL's MD5 for many short texts in a row (an export's email hashes): the algorithm is fetched once and
/// one context reused, where `Digest.md5Hex`'s one-shot `EVP_Digest(…, EVP_md5(), …)` looks MD5 up again for
/// every text (about 600 ns a hash against 200 ns here). Not Sendable: each export thread has its own.
final class MD5Hasher {
    private let algorithm: OpaquePointer
    private let context: OpaquePointer
    /// After the first text the context keeps MD5 and is reinitialised without naming it: naming it again takes
    /// a reference to the shared algorithm object, which two export threads then contend for.
    private var isInitialized = false

    /// Nil when OpenSSL cannot provide MD5.
    init?() {
        guard let algorithm = EVP_MD_fetch(nil, "MD5", nil) else { return nil }
        guard let context = EVP_MD_CTX_new() else {
            EVP_MD_free(algorithm)
            return nil
        }
        self.algorithm = algorithm
        self.context = context
    }

    deinit {
        EVP_MD_CTX_free(context)
        EVP_MD_free(algorithm)
    }

    /// Appends the lowercase hex MD5 of `bytes` to `out`, or nothing when OpenSSL fails (`md5Hex` gives "" then).
    func appendHex(of bytes: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        var digest: (UInt64, UInt64) = (0, 0)
        let ok = withUnsafeMutableBytes(of: &digest) { raw -> Bool in
            let digest = raw.baseAddress!.assumingMemoryBound(to: UInt8.self)
            var written: UInt32 = 0
            return EVP_DigestInit_ex2(context, isInitialized ? nil : algorithm, nil) == 1
                && EVP_DigestUpdate(context, bytes.baseAddress, bytes.count) == 1
                && EVP_DigestFinal_ex(context, digest, &written) == 1 && written == 16
        }
        guard ok else { return }
        isInitialized = true
        withUnsafeBytes(of: &digest) { digest in
            for byte in digest {
                out.append(Self.hexDigits[Int(byte >> 4)])
                out.append(Self.hexDigits[Int(byte & 0x0F)])
            }
        }
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)
}
