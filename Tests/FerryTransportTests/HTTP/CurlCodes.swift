import CCurl

/// CURLcode constants for tests (the test target imports CCurl only here).
enum CURLcodeValue {
    static let resolve = CURLE_COULDNT_RESOLVE_HOST
    static let connect = CURLE_COULDNT_CONNECT
    static let timeout = CURLE_OPERATION_TIMEDOUT
    static let peerVerification = CURLE_PEER_FAILED_VERIFICATION
    static let gotNothing = CURLE_GOT_NOTHING
    static let fileSize = CURLE_FILESIZE_EXCEEDED
}
