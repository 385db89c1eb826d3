import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Opening the TCP connection libssh2 runs over (libssh2 does not connect sockets itself).
enum TCPSocket {
    /// Connects to `host:port` within `timeout`; returns a blocking, close-on-exec socket or a message.
    static func connect(host: String, port: Int, timeout: Duration) -> Result<Int32, ConnectFailure> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let resolved = getaddrinfo(host, String(port), &hints, &list)
        guard resolved == 0, let first = list else {
            return .failure(ConnectFailure(message: "cannot resolve host: \(String(cString: gai_strerror(resolved)))"))
        }
        defer { freeaddrinfo(list) }

        var lastMessage = "no address to connect to"
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let address = entry {
            entry = address.pointee.ai_next
            let fd = socket(address.pointee.ai_family, address.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue),
                            address.pointee.ai_protocol)
            guard fd >= 0 else {
                lastMessage = "cannot create socket: \(String(cString: strerror(errno)))"
                continue
            }
            switch connect(fd, address.pointee.ai_addr, address.pointee.ai_addrlen, timeout: timeout) {
            case nil:
                return .success(fd)
            case let message?:
                lastMessage = message
                close(fd)
            }
        }
        return .failure(ConnectFailure(message: lastMessage))
    }

    /// A non-blocking connect bounded by poll(), so an unroutable host cannot hang the run; nil on success.
    private static func connect(_ fd: Int32, _ address: UnsafePointer<sockaddr>, _ length: socklen_t, timeout: Duration) -> String? {
        let flags = fcntl(fd, F_GETFL, 0)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        if Glibc.connect(fd, address, length) != 0 {
            guard errno == EINPROGRESS else { return "cannot connect: \(String(cString: strerror(errno)))" }
            var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            let ready = poll(&poller, 1, Int32(milliseconds(timeout)))
            if ready == 0 { return "cannot connect: no answer within \(timeout)" }
            if ready < 0 { return "cannot connect: \(String(cString: strerror(errno)))" }
            var socketError: Int32 = 0
            var size = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &socketError, &size)
            if socketError != 0 { return "cannot connect: \(String(cString: strerror(socketError)))" }
        }
        _ = fcntl(fd, F_SETFL, flags)
        var noDelay: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &noDelay, socklen_t(MemoryLayout<Int32>.size))
        return nil
    }

    /// Why a connect failed, as a sentence.
    struct ConnectFailure: Error {
        var message: String
    }
}
