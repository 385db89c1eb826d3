/// JSON's one-letter string escapes, shared by the byte-level readers (profile lines, stored properties).
enum JSONEscape {
    /// The byte a one-letter escape (`\n`, `\"`, …) stands for; nil for `\u` and for anything that is not an escape.
    static func simple(_ letter: UInt8) -> UInt8? {
        switch letter {
        case UInt8(ascii: "\""): 0x22
        case UInt8(ascii: "\\"): 0x5C
        case UInt8(ascii: "/"): 0x2F
        case UInt8(ascii: "b"): 0x08
        case UInt8(ascii: "f"): 0x0C
        case UInt8(ascii: "n"): 0x0A
        case UInt8(ascii: "r"): 0x0D
        case UInt8(ascii: "t"): 0x09
        default: nil
        }
    }
}
