import Foundation

/// A SendGrid API failure, typed by HTTP status or by what ferry found, with the endpoint and no secrets.
public struct SendGridError: Error, Sendable, CustomStringConvertible {
    /// What went wrong.
    public enum Kind: String, Sendable, Hashable {
        case unauthorized           // 401
        case forbidden              // 403
        case badRequest             // 400
        case notFound               // 404
        case payloadTooLarge        // 413
        case rateLimited            // 429
        case server                 // 5xx
        case otherStatus            // any other non-2xx
        /// The reply was not the JSON SendGrid sends.
        case invalidResponse
        /// The request never got a SendGrid reply (network, TLS, timeout, size); see `transport`.
        case transport
        /// A custom field exists with the same name but another type (or the name is a reserved field's).
        case fieldTypeConflict
        /// An import job ended `failed`, or did not finish in time.
        case jobFailed
        /// A single contact is larger than a whole request may be.
        case contactTooLarge
    }

    /// One entry of SendGrid's `{"errors":[{"field","message"}]}`.
    public struct Detail: Sendable, Hashable {
        public var field: String?
        public var message: String
        public init(field: String?, message: String) {
            self.field = field
            self.message = message
        }
    }

    public var kind: Kind
    /// A message a person can act on.
    public var message: String
    /// SendGrid's error entries, when the reply carried them.
    public var details: [Detail]
    public var httpStatus: Int?
    /// `METHOD /path`.
    public var endpoint: String
    /// The transport failure underneath, already redacted.
    public var transport: HTTPError?

    public init(kind: Kind, message: String, details: [Detail] = [], httpStatus: Int? = nil, endpoint: String,
                transport: HTTPError? = nil) {
        self.kind = kind
        self.message = message
        self.details = details
        self.httpStatus = httpStatus
        self.endpoint = endpoint
        self.transport = transport
    }

    /// Maps a non-2xx reply (`{"errors":[…]}`, `{"error":"…"}` or anything else) to a typed error.
    public static func fromResponse(status: Int, body: Data, endpoint: String, redactor: Redactor = Redactor(),
                                    keyVariable: String? = nil) -> SendGridError {
        var details: [Detail] = []
        if let json = try? JSONValue.parse(body) {
            if let errors = json["errors"]?.arrayValue {
                details = errors.compactMap { entry in
                    guard let message = entry["message"]?.scalarText else { return nil }
                    return Detail(field: entry["field"]?.scalarText, message: redactor.redact(message))
                }
            } else if let message = json["error"]?.scalarText {
                details = [Detail(field: nil, message: redactor.redact(message))]
            }
        }
        let kind: Kind = switch status {
        case 400: .badRequest
        case 401: .unauthorized
        case 403: .forbidden
        case 404: .notFound
        case 413: .payloadTooLarge
        case 429: .rateLimited
        case 500...599: .server
        default: .otherStatus
        }
        let joined = details.map { d in d.field.map { "\($0): \(d.message)" } ?? d.message }.joined(separator: "; ")
        var message: String
        switch kind {
        case .unauthorized:
            // The key is the one thing a person can fix; name where it came from, never its value.
            message = "authentication failed: SendGrid rejected the API key" + (keyVariable.map { " in ${\($0)}" } ?? "")
        case .forbidden: message = "access forbidden: the API key lacks a scope, or SendGrid blocked it for a while"
        case .payloadTooLarge: message = "request too large (SendGrid takes at most 30,000 contacts and 6 MB)"
        case .rateLimited: message = "rate limited"
        default: message = "HTTP \(status)"
        }
        if !joined.isEmpty { message += ": \(joined)" }
        else if details.isEmpty, !body.isEmpty, kind != .unauthorized {
            message += ": " + redactor.redact(String(decoding: body.prefix(200), as: UTF8.self))
        }
        return SendGridError(kind: kind, message: message, details: details, httpStatus: status, endpoint: endpoint)
    }

    /// Whether a later attempt (or a later run) may succeed.
    public var isRetryable: Bool {
        switch kind {
        case .rateLimited, .server: true
        case .transport: transport?.isRetryable ?? false
        default: false
        }
    }

    /// Whether no later call in this run can succeed either (a bad key, a blocked account).
    public var isFatal: Bool { kind == .unauthorized || kind == .forbidden }

    public var description: String {
        var text = "SendGrid \(endpoint): \(message)"
        if let transport, kind == .transport || kind == .invalidResponse { text += " [\(transport)]" }
        return text
    }
}
