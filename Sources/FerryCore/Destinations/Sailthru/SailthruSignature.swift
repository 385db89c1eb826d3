/// Sailthru's request signature: MD5 hex of the secret followed by every signed parameter
/// value, sorted by UTF-8 bytes (keys ignored; `sig` and the `file` part excluded).
public enum SailthruSignature {
    /// The `sig` for `values` (the values of every parameter except `sig` and `file`).
    public static func sign(values: [String], secret: String) -> String {
        MD5.hex(signatureString(values: values, secret: secret))
    }

    /// The string that is hashed; exposed so tests can pin it against the research notes.
    public static func signatureString(values: [String], secret: String) -> String {
        // String `<` uses Unicode canonical ordering; Sailthru (PHP/Python) compares bytes.
        let sorted = values.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        return secret + sorted.joined()
    }

    /// The JSON-mode `sig`: signs `api_key`, `format=json` and the exact `json` string sent.
    public static func sign(apiKey: String, json: String, secret: String) -> String {
        sign(values: [apiKey, "json", json], secret: secret)
    }
}
