import Foundation

/// Where and how to reach a remote drop folder (Mapp's SFTP server); secrets stay out of `description`.
public struct FileDropConfiguration: Sendable, Equatable, CustomStringConvertible {
    /// How the client proves who it is.
    public enum Authentication: Sendable, Equatable {
        /// Password authentication (SSH `password` method).
        case password(String)
        /// An OpenSSH private key file, optionally encrypted with `passphrase`.
        case privateKey(path: String, passphrase: String?)
    }

    /// How the server's host key is verified; there is deliberately no "accept anything" case.
    public enum HostKeyPolicy: Sendable, Equatable {
        /// An OpenSSH `known_hosts` file (plain, `[host]:port` and hashed `|1|` entries).
        case knownHosts(path: String)
        /// One pinned fingerprint as OpenSSH prints it: `SHA256:` and unpadded base64.
        case sha256(String)
    }

    public var host: String
    public var port: Int
    public var username: String
    public var authentication: Authentication
    public var hostKey: HostKeyPolicy
    /// The remote folder files are published into; empty means the login directory.
    public var folder: String
    /// How long the TCP connect may take.
    public var connectTimeout: Duration
    /// How long any single blocking protocol step may wait for the server, so a dead server cannot hang a run.
    public var operationTimeout: Duration

    public init(
        host: String, port: Int = 22, username: String,
        authentication: Authentication, hostKey: HostKeyPolicy, folder: String = "",
        connectTimeout: Duration = .seconds(15), operationTimeout: Duration = .seconds(60)
    ) {
        self.host = host
        self.port = port
        self.username = username
        self.authentication = authentication
        self.hostKey = hostKey
        self.folder = folder
        self.connectTimeout = connectTimeout
        self.operationTimeout = operationTimeout
    }

    /// `name` inside `folder`, joined with exactly one `/`.
    public func remotePath(_ name: String) -> String {
        guard !folder.isEmpty else { return name }
        return folder.hasSuffix("/") ? folder + name : folder + "/" + name
    }

    public var description: String {
        let auth: String
        switch authentication {
        case .password: auth = "password"
        case .privateKey(let path, let passphrase): auth = "key \(path)" + (passphrase == nil ? "" : " (with passphrase)")
        }
        let key: String
        switch hostKey {
        case .knownHosts(let path): key = "known_hosts \(path)"
        case .sha256(let fingerprint): key = "pinned \(fingerprint)"
        }
        return "\(username)@\(host):\(port) folder '\(folder)' auth \(auth), host key \(key)"
    }
}

/// One entry of a remote directory listing.
public struct RemoteFileInfo: Sendable, Equatable {
    public var name: String
    public var size: UInt64?
    public var isDirectory: Bool

    public init(name: String, size: UInt64?, isDirectory: Bool) {
        self.name = name
        self.size = size
        self.isDirectory = isDirectory
    }
}

/// A streaming upload into one remote file; used by one task at a time, and `close()` must be awaited.
public protocol RemoteFileWriter: Sendable {
    /// Appends bytes; the writer batches them into large pipelined writes.
    func write(_ bytes: [UInt8]) async throws
    /// Flushes what is buffered and closes the remote file; errors here mean the file is incomplete.
    func close() async throws
}

/// An open connection to a remote folder: the few file operations a file-drop export needs.
public protocol RemoteFileStore: Sendable {
    /// Creates `path` and every missing parent (`mkdir -p`); an existing directory is fine.
    func makeDirectories(_ path: String) async throws
    /// Creates or truncates `path` and returns a writer for it.
    func openForWriting(_ path: String) async throws -> any RemoteFileWriter
    /// The size in bytes of the file at `path`.
    func size(of path: String) async throws -> UInt64
    /// Renames `source` to `destination`, replacing `destination` if it exists.
    func rename(_ source: String, to destination: String) async throws
    /// Removes the file at `path`.
    func remove(_ path: String) async throws
    /// The entries of directory `path`, without `.` and `..`.
    func list(_ path: String) async throws -> [RemoteFileInfo]
    /// Ends the connection; later calls fail.
    func close() async
}

/// Opens `RemoteFileStore` connections; FerryTransport's SFTP client is the real one.
public protocol RemoteFileStoreConnector: Sendable {
    /// Connects, verifies the host key, and authenticates.
    func connect(_ configuration: FileDropConfiguration) async throws -> any RemoteFileStore
}

extension RemoteFileStoreConnector {
    /// Connects, runs `body`, and closes the connection on every path.
    public func withConnection<T: Sendable>(
        _ configuration: FileDropConfiguration, _ body: (any RemoteFileStore) async throws -> T
    ) async throws -> T {
        let store = try await connect(configuration)
        do {
            let result = try await body(store)
            await store.close()
            return result
        } catch {
            await store.close()
            throw error
        }
    }
}

/// Why a publish did not leave a complete file under its final name.
public struct FileDropError: Error, Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { "file drop \(path): \(message)" }
}

extension RemoteFileStore {
    /// Streams `chunks` into `path`, closing the remote file on every path; returns the bytes written.
    @discardableResult
    public func upload<Chunks: AsyncSequence>(_ chunks: Chunks, to path: String) async throws -> UInt64
    where Chunks.Element == [UInt8] {
        let writer = try await openForWriting(path)
        var written: UInt64 = 0
        do {
            for try await chunk in chunks {
                try await writer.write(chunk)
                written += UInt64(chunk.count)
            }
        } catch {
            try? await writer.close()
            throw error
        }
        try await writer.close()
        return written
    }

    /// Publishes a file the way Mapp expects: `mkdir -p` the folder, upload under `name.part` (which a
    /// `*.csv` pickup pattern does not match), check the remote size, then rename to `name`.
    @discardableResult
    public func publish<Chunks: AsyncSequence>(_ chunks: Chunks, named name: String, in folder: String) async throws -> UInt64
    where Chunks.Element == [UInt8] {
        let base = folder.isEmpty ? "" : (folder.hasSuffix("/") ? folder : folder + "/")
        if !folder.isEmpty { try await makeDirectories(folder) }
        let finalPath = base + name
        let partPath = finalPath + ".part"
        let written = try await upload(chunks, to: partPath)
        let remoteSize = try await size(of: partPath)
        guard remoteSize == written else {
            try? await remove(partPath)
            throw FileDropError(path: partPath, message: "uploaded \(written) bytes but the server holds \(remoteSize)")
        }
        try await rename(partPath, to: finalPath)
        return written
    }
}
