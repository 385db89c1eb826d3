import CSSH2

/// A failed SSH or SFTP step, with libssh2's message, the operation, the host and the path; never a secret.
public struct SSH2Error: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong, coarse enough to decide on a retry.
    public enum Kind: Sendable, Equatable {
        /// The host name did not resolve or the TCP connection was refused or timed out.
        case connect
        /// The SSH handshake (banner, key exchange) failed.
        case handshake
        /// The host key is not in `known_hosts` (no trust on first use).
        case hostKeyUnknown
        /// The host key differs from the one in `known_hosts` or the pinned fingerprint.
        case hostKeyChanged
        /// The host key could not be checked at all (unreadable `known_hosts`, unsupported key type).
        case hostKeyCheck
        /// The server refused the password or key, or the key file could not be read or decrypted.
        case authentication
        /// The server answered an SFTP request with an error status.
        case sftp
        /// The server did not answer within the configured timeout.
        case timeout
        /// The connection broke (server gone, socket closed).
        case disconnected
        /// The connection was already closed by this process.
        case closed
        /// Anything else libssh2 reported.
        case other
    }

    public var kind: Kind
    /// The step that failed, e.g. `connect`, `authenticate`, `write`, `rename`.
    public var operation: String
    public var host: String
    public var port: Int
    /// The remote path the operation was about, if any.
    public var path: String?
    /// A message a person can act on, built from libssh2's last error.
    public var message: String
    /// libssh2's error code (`LIBSSH2_ERROR_*`), 0 when the error did not come from libssh2.
    public var code: Int32
    /// The SFTP status code (`SSH_FX_*`) when the server answered with one.
    public var sftpStatus: UInt?

    public init(
        kind: Kind, operation: String, host: String, port: Int, path: String? = nil,
        message: String, code: Int32 = 0, sftpStatus: UInt? = nil
    ) {
        self.kind = kind
        self.operation = operation
        self.host = host
        self.port = port
        self.path = path
        self.message = message
        self.code = code
        self.sftpStatus = sftpStatus
    }

    public var description: String {
        var text = "SFTP \(operation)"
        if let path { text += " '\(path)'" }
        text += " on \(host):\(port) failed: \(message)"
        return text
    }

    /// The kind a libssh2 error code stands for.
    static func kind(forCode code: Int32) -> Kind {
        switch code {
        case LIBSSH2_ERROR_TIMEOUT, LIBSSH2_ERROR_SOCKET_TIMEOUT:
            return .timeout
        case LIBSSH2_ERROR_SOCKET_SEND, LIBSSH2_ERROR_SOCKET_RECV, LIBSSH2_ERROR_SOCKET_DISCONNECT,
             LIBSSH2_ERROR_CHANNEL_CLOSED, LIBSSH2_ERROR_CHANNEL_EOF_SENT, LIBSSH2_ERROR_BAD_SOCKET:
            return .disconnected
        case LIBSSH2_ERROR_BANNER_RECV, LIBSSH2_ERROR_BANNER_SEND, LIBSSH2_ERROR_KEX_FAILURE,
             LIBSSH2_ERROR_KEY_EXCHANGE_FAILURE:
            return .handshake
        case LIBSSH2_ERROR_AUTHENTICATION_FAILED, LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED,
             LIBSSH2_ERROR_FILE, LIBSSH2_ERROR_KEYFILE_AUTH_FAILED, LIBSSH2_ERROR_PASSWORD_EXPIRED,
             LIBSSH2_ERROR_METHOD_NONE:
            return .authentication
        case LIBSSH2_ERROR_SFTP_PROTOCOL:
            return .sftp
        default:
            return .other
        }
    }

    /// A readable name for an SFTP status code.
    static func statusName(_ status: UInt) -> String {
        switch status {
        case 1: return "end of file"
        case 2: return "no such file"
        case 3: return "permission denied"
        case 4: return "failure"
        case 5: return "bad message"
        case 6: return "no connection"
        case 7: return "connection lost"
        case 8: return "operation unsupported"
        case 10: return "no such path"
        case 11: return "file already exists"
        case 12: return "write protected"
        case 14: return "no space on filesystem"
        case 15: return "quota exceeded"
        case 18: return "directory not empty"
        case 19: return "not a directory"
        default: return "status \(status)"
        }
    }
}
