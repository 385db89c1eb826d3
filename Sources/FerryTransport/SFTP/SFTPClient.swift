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
        thread.submit { try? ssh.closeFile(handle.pointer, path: path) }
    }
}

/// A libssh2 SFTP file handle. `@unchecked Sendable` is safe because the pointer is only dereferenced
/// by libssh2 calls made on its connection's `SessionThread`.
final class SFTPFileHandle: @unchecked Sendable {
    let pointer: OpaquePointer

    init(_ pointer: OpaquePointer) {
        self.pointer = pointer
    }
}

/// Streams bytes into one remote file, buffering small writes into large pipelined ones; one task at a time.
public actor SFTPFileWriter: RemoteFileWriter {
    /// Bytes gathered before one libssh2 write; libssh2 keeps its ~30 kB packets for a chunk this size
    /// in flight together, so the link stays busy instead of waiting for one acknowledgement per packet.
    public static let chunkSize = 1 << 20

    private let connection: SFTPConnection
    private let handle: SFTPFileHandle
    /// The remote path being written.
    public nonisolated let path: String
    private var buffer: [UInt8] = []
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

    /// Appends `bytes`, sending once a full chunk is buffered; after a failure every call rethrows it.
    public func write(contentsOf bytes: some Collection<UInt8> & Sendable) async throws(SSH2Error) {
        if let failure { throw failure }
        guard !isClosed else { throw closedError("write") }
        buffer.append(contentsOf: bytes)
        bytesWritten += UInt64(bytes.count)
        if buffer.count >= Self.chunkSize { try await flush() }
    }

    private func flush() async throws(SSH2Error) {
        guard !buffer.isEmpty else { return }
        let chunk = buffer
        buffer = []
        buffer.reserveCapacity(Self.chunkSize)
        let handle = handle, path = path
        do {
            try await connection.perform("write", path) { ssh throws(SSH2Error) in try ssh.write(handle.pointer, chunk, path: path) }
        } catch {
            failure = error
            throw error
        }
    }

    public func close() async throws {
        try await finish()
    }

    /// Sends what is buffered and closes the remote file; the file is complete only if this returns.
    public func finish() async throws(SSH2Error) {
        guard !isClosed else {
            if let failure { throw failure }
            return
        }
        var flushError: SSH2Error?
        if failure == nil {
            do { try await flush() } catch { flushError = error }
        }
        isClosed = true
        let handle = handle, path = path
        do {
            try await connection.perform("close", path) { ssh throws(SSH2Error) in try ssh.closeFile(handle.pointer, path: path) }
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
