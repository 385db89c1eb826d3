import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A listening TCP socket on 127.0.0.1; each accepted connection gets its own thread.
///
/// `@unchecked Sendable`: `fd` is set once in `init` and only read afterwards.
final class SMTPListener: @unchecked Sendable {
    let fd: Int32
    let port: Int

    init(port: Int) throws {
        signal(SIGPIPE, SIG_IGN)
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw SMTPSocketError("socket() failed: errno \(errno)") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard bound == 0, listen(fd, 64) == 0 else {
            close(fd)
            throw SMTPSocketError("cannot listen on 127.0.0.1:\(port): errno \(errno)")
        }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        self.fd = fd
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    /// Accepts connections until the process ends, handing each to `handle` on a new thread.
    func acceptForever(_ handle: @escaping @Sendable (SMTPSocket) -> Void) {
        while true {
            let client = accept(fd, nil, nil)
            if client < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return
            }
            let socket = SMTPSocket(fd: client)
            Thread { handle(socket) }.start()
        }
    }
}

/// A failure to set up the listening socket.
struct SMTPSocketError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// One client connection with a read buffer; lines end with CRLF (a bare LF is accepted too).
///
/// `@unchecked Sendable`: handed to exactly one session thread, which alone uses it.
final class SMTPSocket: @unchecked Sendable {
    private let fd: Int32
    private var buffer: [UInt8] = []
    private var start = 0

    init(fd: Int32) { self.fd = fd }

    deinit { close(fd) }

    /// The next line without its line end; nil at end of stream. Lines longer than `limit` are cut there.
    func readLine(limit: Int = 1 << 20) -> [UInt8]? {
        while true {
            if let newline = buffer[start...].firstIndex(of: 10) {
                var end = newline
                if end > start, buffer[end - 1] == 13 { end -= 1 }
                let line = Array(buffer[start..<min(end, start + limit)])
                start = newline + 1
                if start > 65536 {
                    buffer.removeFirst(start)
                    start = 0
                }
                return line
            }
            var chunk = [UInt8](repeating: 0, count: 16384)
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { return nil }
            buffer += chunk[0..<count]
        }
    }

    /// Sends one reply line with CRLF.
    func write(_ line: String) {
        let bytes = Array((line + "\r\n").utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { return }
            sent += n
        }
    }
}

/// One SMTP conversation (RFC 5321): EHLO/HELO, AUTH PLAIN/LOGIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT.
struct SMTPSession {
    let socket: SMTPSocket
    let settings: SMTPSettings
    let mailbox: SMTPMailbox
    /// Bigger messages are refused with 552.
    static let maximumMessageBytes = 10 << 20

    func run() {
        var greeted = false
        var authenticated = settings.credentials == nil
        var sender: String?
        var recipients: [String] = []
        var refuse = false
        socket.write("220 127.0.0.1 ferry-sandbox ESMTP ready")
        while let raw = socket.readLine() {
            let line = String(decoding: raw, as: UTF8.self)
            let verb = line.prefix { $0 != " " }.uppercased()
            let argument = line.drop { $0 != " " }.trimmingCharacters(in: .whitespaces)
            switch verb {
            case "EHLO":
                greeted = true
                sender = nil
                recipients = []
                var lines = ["127.0.0.1 greets \(argument)", "8BITMIME", "SMTPUTF8", "SIZE \(Self.maximumMessageBytes)"]
                if settings.credentials != nil { lines.append("AUTH PLAIN LOGIN") }
                for (index, text) in lines.enumerated() { socket.write("250\(index == lines.count - 1 ? " " : "-")\(text)") }
            case "HELO":
                greeted = true
                sender = nil
                recipients = []
                socket.write("250 127.0.0.1")
            case "AUTH":
                guard settings.credentials != nil else { socket.write("502 5.5.1 AUTH not offered"); continue }
                guard !authenticated else { socket.write("503 5.5.1 already authenticated"); continue }
                authenticated = authenticate(argument)
            case "MAIL":
                guard greeted else { socket.write("503 5.5.1 EHLO or HELO first"); continue }
                guard authenticated else { socket.write("530 5.7.0 Authentication required"); continue }
                guard let address = Self.path(after: "FROM:", in: argument) else {
                    socket.write("501 5.5.4 syntax: MAIL FROM:<address>"); continue
                }
                sender = address
                recipients = []
                refuse = mailbox.refuses(rate: settings.failRate)
                socket.write("250 2.1.0 OK")
            case "RCPT":
                guard sender != nil else { socket.write("503 5.5.1 MAIL first"); continue }
                guard let address = Self.path(after: "TO:", in: argument), !address.isEmpty else {
                    socket.write("501 5.5.4 syntax: RCPT TO:<address>"); continue
                }
                if refuse, settings.failAt == .rcpt {
                    socket.write("\(settings.failCode) \(settings.failCode < 500 ? "4.3.0 try again later" : "5.7.1 recipient refused") (sandbox fault)")
                    continue
                }
                recipients.append(address)
                socket.write("250 2.1.5 OK")
            case "DATA":
                guard let from = sender, !recipients.isEmpty else { socket.write("503 5.5.1 RCPT first"); continue }
                socket.write("354 End data with <CR><LF>.<CR><LF>")
                guard let message = readData() else { return }
                defer {
                    sender = nil
                    recipients = []
                }
                if message.count > Self.maximumMessageBytes { socket.write("552 5.3.4 message too big"); continue }
                if refuse, settings.failAt == .data {
                    socket.write("\(settings.failCode) \(settings.failCode < 500 ? "4.3.0 try again later" : "5.6.0 message refused") (sandbox fault)")
                    continue
                }
                // Trace headers, the way a receiving MTA adds them: who the envelope named.
                var stored = Data("Return-Path: <\(from)>\r\nX-Sandbox-Rcpt-To: \(recipients.map { "<\($0)>" }.joined(separator: ", "))\r\n".utf8)
                stored.append(message)
                do {
                    let name = try mailbox.store(stored)
                    socket.write("250 2.0.0 OK queued as \(name)")
                } catch {
                    socket.write("451 4.3.0 cannot store the message: \(error)")
                }
            case "RSET":
                sender = nil
                recipients = []
                socket.write("250 2.0.0 OK")
            case "NOOP":
                socket.write("250 2.0.0 OK")
            case "QUIT":
                socket.write("221 2.0.0 Bye")
                return
            case "VRFY":
                socket.write("252 2.1.5 cannot verify, will try")
            default:
                socket.write("500 5.5.2 command not recognised")
            }
        }
    }

    /// The message up to the lone `.` line, dot-unstuffed, with CRLF line ends; nil when the client went away.
    private func readData() -> Data? {
        var message = Data()
        while let line = socket.readLine() {
            if line == [46] { return message }
            let unstuffed = line.first == 46 ? line.dropFirst() : line[...]
            if message.count <= Self.maximumMessageBytes {
                message.append(contentsOf: unstuffed)
                message.append(contentsOf: [13, 10])
            }
        }
        return nil
    }

    /// `AUTH PLAIN [initial]` or `AUTH LOGIN`; replies and returns whether the credentials matched.
    private func authenticate(_ argument: String) -> Bool {
        guard let credentials = settings.credentials else { return false }
        let parts = argument.split(separator: " ", maxSplits: 1).map(String.init)
        let mechanism = parts.first?.uppercased() ?? ""
        var user: String?
        var password: String?
        switch mechanism {
        case "PLAIN":
            var response = parts.count > 1 ? parts[1] : nil
            if response == nil {
                socket.write("334 ")
                response = socket.readLine().map { String(decoding: $0, as: UTF8.self) }
            }
            // authzid NUL authcid NUL password
            if let decoded = response.flatMap({ Data(base64Encoded: $0) }) {
                let fields = decoded.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
                if fields.count == 3 {
                    user = fields[1]
                    password = fields[2]
                }
            }
        case "LOGIN":
            var first = parts.count > 1 ? parts[1] : nil
            if first == nil {
                socket.write("334 " + Data("Username:".utf8).base64EncodedString())
                first = socket.readLine().map { String(decoding: $0, as: UTF8.self) }
            }
            user = first.flatMap { Data(base64Encoded: $0) }.map { String(decoding: $0, as: UTF8.self) }
            socket.write("334 " + Data("Password:".utf8).base64EncodedString())
            password = socket.readLine().flatMap { Data(base64Encoded: Data($0)) }.map { String(decoding: $0, as: UTF8.self) }
        default:
            socket.write("504 5.5.4 unrecognised authentication mechanism")
            return false
        }
        if user == credentials.user, password == credentials.password {
            socket.write("235 2.7.0 Authentication successful")
            return true
        }
        socket.write("535 5.7.8 Authentication credentials invalid")
        return false
    }

    /// The address in `FROM:<a@b> SIZE=10` or `TO:<a@b>`; parameters after it are ignored.
    static func path(after keyword: String, in argument: String) -> String? {
        guard argument.uppercased().hasPrefix(keyword) else { return nil }
        let rest = argument.dropFirst(keyword.count).trimmingCharacters(in: .whitespaces)
        guard rest.hasPrefix("<"), let close = rest.firstIndex(of: ">") else { return nil }
        return String(rest[rest.index(after: rest.startIndex)..<close])
    }
}
