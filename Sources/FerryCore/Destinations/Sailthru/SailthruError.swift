/// A Sailthru API failure, typed by error code, with the endpoint and no secrets.
public struct SailthruError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, from Sailthru's numeric `error` code (or from the transport).
    public enum Kind: String, Sendable, Hashable {
        case missingParameter       // error 2
        case invalidAPIKey          // error 3
        case signatureMismatch      // error 5
        case invalidEmail           // error 11
        case unknownList            // error 15
        case rateLimited            // error 43 / HTTP 429
        case userNotFound           // "User not found with …"
        case other                  // error 99 and any other code
        /// The reply was not the JSON object Sailthru sends.
        case invalidResponse
        /// The request never got a Sailthru reply (network, TLS, timeout, size); see `transport`.
        case transport
        /// A job ended with status `error`, or did not finish in time.
        case jobFailed
    }

    public var kind: Kind
    /// Sailthru's numeric `error`, when the reply carried one.
    public var code: Int?
    /// A message a person can act on (Sailthru's `errormsg`, or ours).
    public var message: String
    /// The HTTP status the error came with (Sailthru sends some errors with 200).
    public var httpStatus: Int?
    /// `METHOD /endpoint`.
    public var endpoint: String
    /// The transport failure underneath, already redacted.
    public var transport: HTTPError?

    public init(kind: Kind, code: Int? = nil, message: String, httpStatus: Int? = nil, endpoint: String,
                transport: HTTPError? = nil) {
        self.kind = kind
        self.code = code
        self.message = message
        self.httpStatus = httpStatus
        self.endpoint = endpoint
        self.transport = transport
    }

    /// Maps an error body `{"error": N, "errormsg": "..."}` to a typed error.
    public static func fromBody(code: Int, message: String, httpStatus: Int?, endpoint: String) -> SailthruError {
        let kind: Kind
        var text = message
        switch code {
        case 2: kind = .missingParameter
        case 3: kind = .invalidAPIKey
        case 5:
            kind = .signatureMismatch
            // Sailthru says "Signature hash does not match"; the cause is nearly always the secret.
            text = "signature mismatch: check api_secret"
        case 11: kind = .invalidEmail
        case 15: kind = .unknownList
        case 43: kind = .rateLimited
        default: kind = message.hasPrefix("User not found") ? .userNotFound : .other
        }
        if kind != .userNotFound, message.hasPrefix("User not found") {
            return SailthruError(kind: .userNotFound, code: code, message: message, httpStatus: httpStatus, endpoint: endpoint)
        }
        return SailthruError(kind: kind, code: code, message: text, httpStatus: httpStatus, endpoint: endpoint)
    }

    /// Whether a later attempt may succeed.
    public var isRetryable: Bool {
        switch kind {
        case .rateLimited: true
        case .transport: transport?.isRetryable ?? false
        case .other: code == 9 || (httpStatus ?? 0) >= 500
        default: false
        }
    }

    public var description: String {
        var text = "Sailthru \(endpoint): \(message)"
        if let code { text += " (error \(code)" + (httpStatus.map { ", HTTP \($0)" } ?? "") + ")" }
        else if let httpStatus { text += " (HTTP \(httpStatus))" }
        if let transport, kind == .transport || kind == .invalidResponse { text += " [\(transport)]" }
        return text
    }
}
