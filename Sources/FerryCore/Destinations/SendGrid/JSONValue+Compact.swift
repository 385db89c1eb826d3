/// Compact JSON written straight into bytes, for request bodies built by the hundred thousand.
///
/// The same text as `serialized()` (sorted keys, unescaped slashes, whole numbers as integers), written by the
/// one byte writer (`JSONValueText`) without a String in between.
extension JSONValue {
    /// Appends this value's compact JSON to `out` (`null` for a value holding a non-finite number, as `serialized()`).
    public func appendCompactJSON(to out: inout [UInt8]) {
        let mark = out.count
        if !JSONValueText.append(self, to: &out) {
            out.removeSubrange(mark...)
            out.append(contentsOf: "null".utf8)
        }
    }

    /// The compact JSON as bytes.
    public var compactJSONBytes: [UInt8] {
        var out: [UInt8] = []
        appendCompactJSON(to: &out)
        return out
    }
}
