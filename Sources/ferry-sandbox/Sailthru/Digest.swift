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
