/// The shape of one JSON number in a byte buffer: where it ends, and what the fast readers need to
/// decide whether they can take it or must leave it to Foundation.
struct JSONNumberScan {
    /// The byte after the number.
    var end: Int
    /// Digits before any fraction or exponent.
    var integerDigits: Int
    /// No fraction and no exponent.
    var isInteger: Bool
    /// `-0` (or `-00…`, refused anyway by the leading-zero rule).
    var isNegativeZero: Bool

    /// Scans the number starting at `start`; nil when the bytes there are not a JSON number
    /// (no digits, a leading zero, an empty fraction or exponent).
    init?(_ bytes: UnsafeBufferPointer<UInt8>, at start: Int) {
        var index = start
        func digits() -> Int {
            let from = index
            while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 { index += 1 }
            return index - from
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
        let digitsStart = index
        integerDigits = digits()
        guard integerDigits > 0, integerDigits == 1 || bytes[digitsStart] != 0x30 else { return nil }
        isInteger = true
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            isInteger = false
            index += 1
            guard digits() > 0 else { return nil }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            isInteger = false
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard digits() > 0 else { return nil }
        }
        end = index
        isNegativeZero = isInteger && integerDigits == 1 && bytes[digitsStart] == 0x30 && digitsStart > start
    }
}
