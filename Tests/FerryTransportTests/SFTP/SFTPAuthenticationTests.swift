import FerryTestSupport
import FerryCore
import Foundation
import Testing
@testable import FerryTransport

/// Host key verification and client authentication against a real sshd.
@Suite("SFTP host keys and authentication")
struct SFTPAuthenticationTests {
    @Test(arguments: KnownHostsForm.allCases)
    func acceptsTheHostKeyFromKnownHosts(_ form: KnownHostsForm) async throws {
        try await withSSHD { server in
            let path = try server.knownHostsFile(form)
            let store = try await SFTPClient().open(server.configuration(hostKey: .knownHosts(path: path)))
            try await store.makeDirectories("ok-\(form.rawValue)")
            #expect(server.existsOnDisk("ok-\(form.rawValue)", isDirectory: true))
            await store.close()
            #expect(try await server.logAfterSettling().contains("Accepted publickey for root"))
        }
    }

    @Test(arguments: [true, false])
    func acceptsAPinnedFingerprint(withPrefix: Bool) async throws {
        try await withSSHD { server in
            var pin = server.hostKey.fingerprint
            if !withPrefix { pin = String(pin.dropFirst("SHA256:".count)) }
            let store = try await SFTPClient().open(server.configuration(hostKey: .sha256(pin)))
            #expect(try await store.list("").isEmpty)
            await store.close()
        }
    }

    @Test func refusesAnUnknownHostBeforeAuthenticating() async throws {
        try await withSSHD { server in
            let path = server.directory.appendingPathComponent("known_hosts-other").path
            try "[example.invalid]:2222 \(server.hostKey.publicKey)\n".write(toFile: path, atomically: true, encoding: .utf8)
            let error = await #expect(throws: SSH2Error.self) {
                try await SFTPClient().open(server.configuration(hostKey: .knownHosts(path: path)))
            }
            #expect(error?.kind == .hostKeyUnknown)
            #expect(error?.message.contains(server.hostKey.fingerprint) == true, "\(String(describing: error))")
            #expect(error?.message.contains("127.0.0.1:\(server.port)") == true)
            let log = try await server.logAfterSettling()
            #expect(!log.contains("Accepted"), "\(log)")
            #expect(!log.contains("publickey"), "credentials reached the server: \(log)")
        }
    }

    @Test func refusesAChangedHostKey() async throws {
        try await withSSHD { server in
            let other = try SSHKeyPair.generate(at: server.directory.appendingPathComponent("other_host_key").path)
            for form in KnownHostsForm.allCases {
                let path = try server.knownHostsFile(form, key: other.publicKey, name: "changed-\(form.rawValue)")
                let error = await #expect(throws: SSH2Error.self) {
                    try await SFTPClient().open(server.configuration(hostKey: .knownHosts(path: path)))
                }
                #expect(error?.kind == .hostKeyChanged, "\(form): \(String(describing: error))")
                #expect(error?.message.contains(server.hostKey.fingerprint) == true)
            }
            let pinned = await #expect(throws: SSH2Error.self) {
                try await SFTPClient().open(server.configuration(hostKey: .sha256(other.fingerprint)))
            }
            #expect(pinned?.kind == .hostKeyChanged)
            #expect(pinned?.message.contains(server.hostKey.fingerprint) == true)
            #expect(!(try await server.logAfterSettling()).contains("Accepted"))
        }
    }

    @Test func missingKnownHostsFileIsRefused() async throws {
        try await withSSHD { server in
            let error = await #expect(throws: SSH2Error.self) {
                try await SFTPClient().open(server.configuration(hostKey: .knownHosts(path: "/nonexistent/known_hosts")))
            }
            #expect(error?.kind == .hostKeyCheck)
            #expect(error?.message.contains(server.hostKey.fingerprint) == true)
        }
    }

    @Test func keyWithPassphraseAuthenticates() async throws {
        try await withSSHD { server in
            let key = try await server.makeEncryptedClientKey()
            let store = try await SFTPClient().open(server.configuration(
                authentication: .privateKey(path: key.privateKeyPath, passphrase: server.passphrase)))
            try await store.upload(chunkStream(Array("hi".utf8)), to: "by-encrypted-key.txt")
            #expect(try server.bytesOnDisk("by-encrypted-key.txt") == Array("hi".utf8))
            await store.close()
        }
    }

    @Test func wrongPassphraseIsRefusedWithoutRevealingIt() async throws {
        try await withSSHD { server in
            let wrong = "not-the-passphrase-8d1f"
            let key = try await server.makeEncryptedClientKey()
            let error = await #expect(throws: SSH2Error.self) {
                try await SFTPClient().open(server.configuration(
                    authentication: .privateKey(path: key.privateKeyPath, passphrase: wrong)))
            }
            #expect(error?.kind == .authentication, "\(String(describing: error))")
            #expect(error?.description.contains(key.privateKeyPath) == true)
            #expect(error?.description.contains(wrong) == false)
            #expect(error?.description.contains(server.passphrase) == false)
        }
    }

    @Test func unauthorisedKeyIsRefused() async throws {
        try await withSSHD { server in
            let stranger = try SSHKeyPair.generate(at: server.directory.appendingPathComponent("stranger").path)
            let error = await #expect(throws: SSH2Error.self) {
                try await SFTPClient().open(server.configuration(
                    authentication: .privateKey(path: stranger.privateKeyPath, passphrase: nil)))
            }
            #expect(error?.kind == .authentication, "\(String(describing: error))")
            #expect(error?.description.contains("root") == true)
        }
    }

    @Test func missingKeyFileIsRefused() async throws {
        try await withSSHD { server in
            let error = await #expect(throws: SSH2Error.self) {
                try await SFTPClient().open(server.configuration(
                    authentication: .privateKey(path: "/nonexistent/id_ed25519", passphrase: nil)))
            }
            #expect(error?.kind == .authentication)
            #expect(error?.message.contains("/nonexistent/id_ed25519") == true)
        }
    }

    @Test(.enabled(if: PasswordTestUser.unavailableReason == nil,
                   "password auth needs a real account: runs only as root with useradd/chpasswd (see PasswordTestUser)"))
    func passwordAuthentication() async throws {
        try await withSSHD { server in
            let password = try PasswordTestUser.prepare(owning: server.root.appendingPathComponent("pw"))
            defer { PasswordTestUser.lock() }
            let store = try await SFTPClient().open(server.configuration(
                username: PasswordTestUser.name, authentication: .password(password)))
            try await store.upload(chunkStream(Array("by password".utf8)), to: "pw/hello.txt")
            #expect(try server.bytesOnDisk("pw/hello.txt") == Array("by password".utf8))
            await store.close()

            let wrong = "wrong-\(password)"
            let error = await #expect(throws: SSH2Error.self) {
                try await SFTPClient().open(server.configuration(
                    username: PasswordTestUser.name, authentication: .password(wrong)))
            }
            #expect(error?.kind == .authentication)
            #expect(error?.description.contains(wrong) == false)
            #expect(error?.description.contains(password) == false)
        }
    }
}
