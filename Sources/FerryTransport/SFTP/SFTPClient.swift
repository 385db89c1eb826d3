import FerryCore
import Foundation
import Logging

/// Opens SFTP connections over libssh2; the production `RemoteFileStoreConnector`.
public struct SFTPClient: RemoteFileStoreConnector {
    private let logger: Logger

    public init(logger: Logger = Logger(label: "ferry.sftp")) {
        self.logger = logger
    }

    public func connect(_ configuration: FileDropConfiguration) async throws -> any RemoteFileStore {
        try await open(configuration)
    }

    /// Connects to `configuration.host`, verifies its host key before sending any credential, and
    /// authenticates; the result owns one thread until `close()`.
    public func open(_ configuration: FileDropConfiguration) async throws(SSH2Error) -> SFTPConnection {
        let thread = SessionThread(name: "ferry-sftp \(configuration.host):\(configuration.port)")
        let ssh = SSH2Connection(host: configuration.host, port: configuration.port,
                                 operationTimeout: configuration.operationTimeout)
        do {
            try await thread.run(stoppedError: ssh.closedError("connect", nil)) {
                try ssh.open(configuration)
            }
        } catch let error as SSH2Error {
            thread.stop()
            logger.debug("SFTP connect failed", metadata: ["error": "\(error)"])
            throw error
        } catch {
            thread.stop()
            throw SSH2Error(kind: .other, operation: "connect", host: configuration.host, port: configuration.port,
                            message: "\(error)")
        }
        logger.debug("SFTP connected", metadata: ["server": "\(configuration.username)@\(configuration.host):\(configuration.port)"])
        return SFTPConnection(thread: thread, ssh: ssh)
    }
}

/// One authenticated SFTP session; every libssh2 call runs on the session's own thread, in call order.
public final class SFTPConnection: RemoteFileStore {
    private let thread: SessionThread
    private let ssh: SSH2Connection

    init(thread: SessionThread, ssh: SSH2Connection) {
        self.thread = thread
        self.ssh = ssh
    }

    /// The server this connection talks to, for error messages.
    public var host: String { ssh.host }
    /// The server's port.
    public var port: Int { ssh.port }

    deinit {
        let ssh = ssh
        thread.submit { ssh.shutdown() }
        thread.stop()
    }

    /// Runs `body` on the session thread, turning any error into an `SSH2Error`.
    func perform<T: Sendable>(
        _ operation: String, _ path: String?, _ body: @escaping @Sendable (SSH2Connection) throws(SSH2Error) -> T
    ) async throws(SSH2Error) -> T {
        let ssh = ssh
        do {
            return try await thread.run(stoppedError: ssh.closedError(operation, path)) {
                guard ssh.isOpen else { throw ssh.closedError(operation, path) }
                return try body(ssh)
            }
        } catch let error as SSH2Error {
            throw error
        } catch {
            throw SSH2Error(kind: .other, operation: operation, host: ssh.host, port: ssh.port, path: path, message: "\(error)")
        }
    }

    public func makeDirectories(_ path: String) async throws {
        try await perform("mkdir -p", path) { ssh throws(SSH2Error) in try ssh.makeDirectories(path) }
    }

    public func openForWriting(_ path: String) async throws -> any RemoteFileWriter {
        try await openWriter(path)
    }

    /// Creates or truncates `path` and returns the concrete streaming writer.
    public func openWriter(_ path: String) async throws(SSH2Error) -> SFTPFileWriter {
        let handle = try await perform("open for writing", path) { ssh throws(SSH2Error) in
            SFTPFileHandle(try ssh.openFile(path))
        }
        return SFTPFileWriter(connection: self, handle: handle, path: path)
    }

    public func size(of path: String) async throws -> UInt64 {
        try await perform("stat", path) { ssh throws(SSH2Error) in try ssh.size(of: path) }
    }

    public func rename(_ source: String, to destination: String) async throws {
        try await perform("rename", source) { ssh throws(SSH2Error) in try ssh.rename(source, to: destination) }
    }

    public func remove(_ path: String) async throws {
        try await perform("remove", path) { ssh throws(SSH2Error) in try ssh.remove(path) }
    }

    public func list(_ path: String) async throws -> [RemoteFileInfo] {
        try await perform("list", path) { ssh throws(SSH2Error) in try ssh.list(path) }
    }

    public func close() async {
        let ssh = ssh
        _ = try? await thread.run(stoppedError: ssh.closedError("close", nil)) { ssh.shutdown() }
        thread.stop()
    }

    /// Queues closing a file handle, for a writer dropped without `close()`.
    func closeInBackground(_ handle: SFTPFileHandle, path: String) {
        let ssh = ssh
        thread.submit { try? ssh.closeFile(handle, drain: false, path: path) }
    }

    /// Queues `bytes` for `file` on the session thread and returns at once; jobs run in call order.
    func startWrite(_ file: SFTPFileHandle, _ bytes: [UInt8], path: String) -> PendingJob<Void> {
        let ssh = ssh, thread = thread
        return thread.start(stoppedError: ssh.closedError("write", path)) {
            guard ssh.isOpen else { throw ssh.closedError("write", path) }
            try ssh.write(file, bytes, inFlight: SFTPFileWriter.inFlightBytes, moreQueued: { thread.hasQueuedJobs }, path: path)
        }
    }
}

/// A libssh2 SFTP file handle and the part of its stream libssh2 has not acknowledged yet.
/// `@unchecked Sendable` is safe because the pointer is only dereferenced, and the other fields only
/// read or written, by libssh2 calls and jobs running on its connection's `SessionThread`.
final class SFTPFileHandle: @unchecked Sendable {
    let pointer: OpaquePointer
    /// Bytes handed to libssh2 and not reported acknowledged, from index `acknowledged` on (see `SSH2Connection.write`).
    var unacknowledged: [UInt8] = []
    var acknowledged = 0
    /// The first write failure; later writes would continue the stream at a wrong offset, so they rethrow it.
    var failure: SSH2Error?

    init(_ pointer: OpaquePointer) {
        self.pointer = pointer
    }
}

/// Streams bytes into one remote file, buffering small writes into large pipelined ones; one task at a time.
///
/// A full chunk is queued on the session thread and `write` returns without waiting for it, so the caller
/// produces the next bytes while these are encrypted and sent; it waits only when `queuedChunks` chunks are
/// already queued (bounded memory, and back-pressure from a slow server). A write that failed on the session
/// thread is rethrown by the next `write` or by `close`, which also waits until the server acknowledged
/// every byte: the file is complete only if `close` returns.
public actor SFTPFileWriter: RemoteFileWriter {
    /// Bytes gathered before they are queued for libssh2.
    public static let chunkSize = 1 << 20
    /// Full chunks that may wait on the session thread before `write` waits for the oldest.
    public static let queuedChunks = 4
    /// Unacknowledged bytes libssh2 keeps in flight while more chunks wait (its write requests are ~30 kB,
    /// so about 130 requests: OpenSSH's `sftp` keeps 64 of 32 kB).
    static let inFlightBytes = 4 << 20

    private let connection: SFTPConnection
    private let handle: SFTPFileHandle
    /// The remote path being written.
    public nonisolated let path: String
    private var buffer: [UInt8] = []
    /// Chunks queued on the session thread, oldest first.
    private var queued: [PendingJob<Void>] = []
    private var isClosed = false
    private var failure: SSH2Error?
    /// Bytes accepted by `write` so far.
    public private(set) var bytesWritten: UInt64 = 0

    init(connection: SFTPConnection, handle: SFTPFileHandle, path: String) {
        self.connection = connection
        self.handle = handle
        self.path = path
        buffer.reserveCapacity(Self.chunkSize)
    }

    deinit {
        if !isClosed { connection.closeInBackground(handle, path: path) }
    }

    public func write(_ bytes: [UInt8]) async throws {
        try await write(contentsOf: bytes)
    }

    /// Appends `bytes`, queueing a full chunk for upload; after a failure every call rethrows it.
    public func write(contentsOf bytes: some Collection<UInt8> & Sendable) async throws(SSH2Error) {
        if let failure { throw failure }
        guard !isClosed else { throw closedError("write") }
        buffer.append(contentsOf: bytes)
        bytesWritten += UInt64(bytes.count)
        if buffer.count >= Self.chunkSize { try await send() }
    }

    /// Queues what is buffered, then surfaces any failure already known and waits while too many chunks are queued.
    private func send() async throws(SSH2Error) {
        if !buffer.isEmpty {
            let chunk = buffer
            buffer = []
            buffer.reserveCapacity(Self.chunkSize)
            queued.append(connection.startWrite(handle, chunk, path: path))
        }
        while let oldest = queued.first, let outcome = oldest.finished {
            queued.removeFirst()
            if case .failure(let error) = outcome { throw failed(error) }
        }
        while queued.count > Self.queuedChunks { try await waitForOldest() }
    }

    private func waitForOldest() async throws(SSH2Error) {
        let oldest = queued.removeFirst()
        do {
            try await oldest.value()
        } catch {
            throw failed(error)
        }
    }

    private func failed(_ error: any Error) -> SSH2Error {
        let failure = error as? SSH2Error
            ?? SSH2Error(kind: .other, operation: "write", host: connection.host, port: connection.port, path: path, message: "\(error)")
        if self.failure == nil { self.failure = failure }
        return self.failure!
    }

    public func close() async throws {
        try await finish()
    }

    /// Sends what is buffered, waits until the server acknowledged every byte and closes the remote file;
    /// the file is complete only if this returns.
    public func finish() async throws(SSH2Error) {
        guard !isClosed else {
            if let failure { throw failure }
            return
        }
        var flushError: SSH2Error?
        if failure == nil {
            do {
                try await send()
                while !queued.isEmpty { try await waitForOldest() }
            } catch {
                flushError = error
            }
        }
        while !queued.isEmpty { _ = try? await queued.removeFirst().value() }
        isClosed = true
        let handle = handle, path = path
        do {
            try await connection.perform("close", path) { ssh throws(SSH2Error) in try ssh.closeFile(handle, drain: true, path: path) }
        } catch {
            if failure == nil && flushError == nil { failure = error }
        }
        if let error = flushError ?? failure { throw error }
    }

    private func closedError(_ operation: String) -> SSH2Error {
        SSH2Error(kind: .closed, operation: operation, host: connection.host, port: connection.port, path: path,
                  message: "the file was already closed")
    }
}
