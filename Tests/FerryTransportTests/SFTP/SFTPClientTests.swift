import FerryTestSupport
import FerryCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import FerryTransport

/// File operations against a real OpenSSH sshd on 127.0.0.1.
@Suite("SFTP file operations", .timeLimit(.minutes(2)))
struct SFTPFileOperationTests {
    @Test func streamsAMultiMegabyteUploadByteForByte() async throws {
        try await withSSHD { server in
            let store = try await SFTPClient().open(server.configuration())
            let payload = pseudoRandomBytes(count: 12 * 1024 * 1024 + 12_345, seed: 42)
            let written = try await store.upload(chunkStream(payload), to: "upload.bin")
            #expect(written == UInt64(payload.count))
            #expect(try await store.size(of: "upload.bin") == UInt64(payload.count))
            let onDisk = try server.bytesOnDisk("upload.bin")
            #expect(onDisk.count == payload.count)
            #expect(onDisk == payload)
            await store.close()
        }
    }

    @Test func makesNestedDirectoriesAndToleratesExistingOnes() async throws {
        try await withSSHD { server in
            let store = try await SFTPClient().open(server.configuration())
            try await store.makeDirectories("exports/mapp/2026")
            #expect(server.existsOnDisk("exports/mapp/2026", isDirectory: true))
            try await store.makeDirectories("exports/mapp/2026")
            try await store.makeDirectories("exports/mapp/other/")
            #expect(server.existsOnDisk("exports/mapp/other", isDirectory: true))
            let absolute = server.root.appendingPathComponent("abs/a/b").path
            try await store.makeDirectories(absolute)
            #expect(server.existsOnDisk("abs/a/b", isDirectory: true))

            try Data("x".utf8).write(to: server.root.appendingPathComponent("exports/file"))
            let error = await #expect(throws: SSH2Error.self) { try await store.makeDirectories("exports/file/below") }
            #expect(error?.kind == .sftp)
            #expect(error?.path == "exports/file")
            await store.close()
        }
    }

    @Test func statListAndRemove() async throws {
        try await withSSHD { server in
            let store = try await SFTPClient().open(server.configuration())
            try await store.makeDirectories("d/sub")
            let writer = try await store.openWriter("d/a.txt")
            try await writer.write(Array("abc".utf8))
            try await writer.close()
            #expect(try await store.size(of: "d/a.txt") == 3)

            let entries = try await store.list("d")
            #expect(entries == [
                RemoteFileInfo(name: "a.txt", size: 3, isDirectory: false),
                RemoteFileInfo(name: "sub", size: entries.last?.size, isDirectory: true),
            ])

            try await store.remove("d/a.txt")
            #expect(!server.existsOnDisk("d/a.txt"))
            let missing = await #expect(throws: SSH2Error.self) { try await store.size(of: "d/a.txt") }
            #expect(missing?.kind == .sftp)
            #expect(missing?.sftpStatus == 2)
            #expect(missing?.description.contains("d/a.txt") == true)
            #expect(missing?.description.contains("127.0.0.1:\(server.port)") == true)
            await #expect(throws: SSH2Error.self) { try await store.remove("d/a.txt") }
            await store.close()
        }
    }

    @Test func renameReplacesAnExistingFile() async throws {
        try await withSSHD { server in
            let store = try await SFTPClient().open(server.configuration())
            try await store.upload(chunkStream(Array("old contents".utf8)), to: "target.csv")
            try await store.upload(chunkStream(Array("new contents".utf8)), to: "target.csv.part")
            try await store.rename("target.csv.part", to: "target.csv")
            #expect(try server.bytesOnDisk("target.csv") == Array("new contents".utf8))
            #expect(!server.existsOnDisk("target.csv.part"))

            try await store.rename("target.csv", to: "renamed.csv")
            #expect(server.existsOnDisk("renamed.csv"))
            let error = await #expect(throws: SSH2Error.self) { try await store.rename("absent", to: "renamed.csv") }
            #expect(error?.kind == .sftp)
            #expect(try server.bytesOnDisk("renamed.csv") == Array("new contents".utf8))
            await store.close()
        }
    }

    @Test func publishUploadsUnderATemporaryNameThenRenames() async throws {
        try await withSSHD { server in
            let connector: any RemoteFileStoreConnector = SFTPClient()
            let csv = Array("\"user.Email\"\r\n\"ann@example.com\"\r\n".utf8)
            let name = "export-ferry-vip-20261123T101500Z.csv"
            let (written, names) = try await connector.withConnection(server.configuration()) { store in
                let written = try await store.publish(chunkStream(csv), named: name, in: "drop/mapp")
                return (written, try await store.list("drop/mapp").map(\.name))
            }
            #expect(written == UInt64(csv.count))
            #expect(names == [name])
            #expect(try server.bytesOnDisk("drop/mapp/\(name)") == csv)
        }
    }

    @Test func operationsAfterCloseFailAsClosed() async throws {
        try await withSSHD { server in
            let store = try await SFTPClient().open(server.configuration())
            let writer = try await store.openWriter("late.bin")
            await store.close()
            let error = await #expect(throws: SSH2Error.self) { try await store.size(of: "late.bin") }
            #expect(error?.kind == .closed)
            await #expect(throws: SSH2Error.self) {
                try await writer.write([1, 2, 3])
                try await writer.close()
            }
        }
    }

    @Test func serverKilledMidUploadGivesATypedErrorNotAHang() async throws {
        try await withSSHD { server in
            let store = try await SFTPClient().open(server.configuration(operationTimeout: .seconds(5)))
            let writer = try await store.openWriter("interrupted.bin")
            let chunk = pseudoRandomBytes(count: 256 * 1024, seed: 7)
            for _ in 0..<8 { try await writer.write(chunk) }
            server.killAbruptly()
            let error = await #expect(throws: SSH2Error.self) {
                for _ in 0..<800 { try await writer.write(chunk) }
                try await writer.close()
            }
            #expect(error?.kind == .disconnected || error?.kind == .timeout, "\(String(describing: error))")
            #expect(error?.operation == "write" || error?.operation == "close")
            #expect(error?.path == "interrupted.bin")
            await store.close()
        }
    }

    @Test func aServerThatHangsMidUploadTimesOut() async throws {
        try await withSSHD { server in
            let store = try await SFTPClient().open(server.configuration(operationTimeout: .seconds(2)))
            let writer = try await store.openWriter("frozen.bin")
            let chunk = pseudoRandomBytes(count: 256 * 1024, seed: 9)
            for _ in 0..<8 { try await writer.write(chunk) }
            server.freezeSessions()
            let error = await #expect(throws: SSH2Error.self) {
                for _ in 0..<800 { try await writer.write(chunk) }
                try await writer.close()
            }
            #expect(error?.kind == .timeout, "\(String(describing: error))")
            #expect(error?.message.contains("2") == true)
            // Bounded by the 2 s operation timeout (the default is 60 s); slack for a loaded machine.
            await store.close()
        }
    }

    @Test func aServerThatNeverAnswersTimesOut() async throws {
        // A listening socket nobody serves: TCP connects, but no SSH banner ever comes.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(bound == 0 && listen(fd, 4) == 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        let configuration = FileDropConfiguration(
            host: "127.0.0.1", port: Int(UInt16(bigEndian: address.sin_port)), username: "root",
            authentication: .password("never-sent"), hostKey: .sha256("SHA256:unused"),
            connectTimeout: .seconds(2), operationTimeout: .seconds(1))
        let error = await #expect(throws: SSH2Error.self) { try await SFTPClient().open(configuration) }
        #expect(error?.kind == .timeout || error?.kind == .handshake, "\(String(describing: error))")
        // Bounded by the 1 s operation timeout (the default is 60 s); slack for a loaded machine.
    }

    @Test func nothingListeningIsAConnectError() async throws {
        let (reserved, port) = try SSHDServer.reservedPort()
        defer { close(reserved) }
        let configuration = FileDropConfiguration(
            host: "127.0.0.1", port: port, username: "root",
            authentication: .password("never-sent"), hostKey: .sha256("SHA256:unused"),
            connectTimeout: .seconds(2))
        let error = await #expect(throws: SSH2Error.self) { try await SFTPClient().open(configuration) }
        #expect(error?.kind == .connect)
        #expect(error?.description.contains("127.0.0.1:\(port)") == true)
        #expect(error?.message.lowercased().contains("refused") == true, "\(String(describing: error))")
    }

    @Test func configurationDescriptionHidesSecrets() {
        let configuration = FileDropConfiguration(
            host: "sftp.example.com", username: "ferry",
            authentication: .privateKey(path: "/keys/id", passphrase: "s3cret-phrase"),
            hostKey: .knownHosts(path: "/keys/known_hosts"), folder: "in")
        #expect(!configuration.description.contains("s3cret-phrase"))
        let withPassword = FileDropConfiguration(
            host: "sftp.example.com", username: "ferry", authentication: .password("hunter2-pw"),
            hostKey: .sha256("SHA256:abc"))
        #expect(!withPassword.description.contains("hunter2-pw"))
        #expect(configuration.remotePath("f.csv") == "in/f.csv")
        #expect(withPassword.remotePath("f.csv") == "f.csv")
    }
}
