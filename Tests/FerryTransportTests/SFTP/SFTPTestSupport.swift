import FerryTestSupport
import FerryCore
import Foundation
@testable import FerryTransport

/// Starts an sshd for `body` and stops it on every path, printing its log when the body fails.
func withSSHD<T>(_ body: (SSHDServer) async throws -> T) async throws -> T {
    let server = try await SSHDServer.start()
    do {
        let result = try await body(server)
        await server.stopped()
        return result
    } catch {
        print("sshd log for the failed test:\n\(server.logText)")
        await server.stopped()
        throw error
    }
}

/// Deterministic bytes that do not compress or repeat (SplitMix64), so a shifted or lost chunk shows.
func pseudoRandomBytes(count: Int, seed: UInt64) -> [UInt8] {
    // Whole 64-bit words keep this fast in debug builds, where per-byte loops crawl.
    var words = [UInt64](repeating: 0, count: (count + 7) / 8)
    var state = seed
    words.withUnsafeMutableBufferPointer { buffer in
        for index in buffer.indices {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            buffer[index] = z ^ (z >> 31)
        }
    }
    return words.withUnsafeBytes { Array($0.prefix(count)) }
}

/// `bytes` cut into chunks of uneven sizes, delivered as an async sequence, the way a CSV generator would.
func chunkStream(_ bytes: [UInt8]) -> AsyncStream<[UInt8]> {
    let sizes = [1, 7, 4096, 65_536, 300_001, 1 << 20, 2_500_000]
    return AsyncStream { continuation in
        var offset = 0
        var index = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + sizes[index % sizes.count])
            continuation.yield(Array(bytes[offset..<end]))
            offset = end
            index += 1
        }
        continuation.finish()
    }
}

extension SSHDServer {
    /// The bytes of `relativePath` under the SFTP root, read straight from disk.
    func bytesOnDisk(_ relativePath: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: root.appendingPathComponent(relativePath)))
    }

    func existsOnDisk(_ relativePath: String, isDirectory: Bool? = nil) -> Bool {
        var directory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: root.appendingPathComponent(relativePath).path, isDirectory: &directory)
        if let isDirectory { return exists && directory.boolValue == isDirectory }
        return exists
    }

    /// Waits briefly for sshd to flush its log (it writes from another process).
    func logAfterSettling() async throws -> String {
        try await Task.sleep(for: .milliseconds(300))
        return logText
    }
}
