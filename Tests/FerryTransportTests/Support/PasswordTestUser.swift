import FerryTestSupport
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A local account for the password-auth test.
///
/// Why an account of its own: with `UsePAM no`, sshd checks a password against the user's hash in
/// `/etc/shadow`, and a test must not change root's password. So when the tests run as root and
/// `useradd` exists (CI and the dev machines), they create `ferry-sftp-test` (no home, shell
/// `/usr/sbin/nologin`, which internal-sftp never runs), give it a fresh random password for the
/// test, and lock the password again afterwards. Anywhere else the password test is skipped with
/// the reason printed.
enum PasswordTestUser {
    static let name = "ferry-sftp-test"

    /// Why the password test cannot run here, or nil when it can.
    static var unavailableReason: String? {
        if getuid() != 0 { return "not running as root, so no test account can be created" }
        for tool in ["/usr/sbin/useradd", "/usr/sbin/chpasswd", "/usr/sbin/usermod"]
        where !FileManager.default.isExecutableFile(atPath: tool) {
            return "\(tool) is missing"
        }
        return nil
    }

    /// Creates the account if needed, sets a new random password and returns it; `directory` becomes the user's.
    static func prepare(owning directory: URL) throws -> String {
        if getpwnam(name) == nil {
            try runTool("/usr/sbin/useradd", ["--system", "--no-create-home", "--home-dir", "/nonexistent",
                                              "--shell", "/usr/sbin/nologin", name])
        }
        let password = "pw-" + UUID().uuidString
        try runTool("/usr/sbin/chpasswd", [], input: "\(name):\(password)\n")
        guard let entry = getpwnam(name) else { throw SSHDSetupError(description: "\(name) was not created") }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        guard chown(directory.path, entry.pointee.pw_uid, entry.pointee.pw_gid) == 0 else {
            throw SSHDSetupError(description: "chown \(directory.path) failed: \(errno)")
        }
        return password
    }

    /// Locks the account's password so it is not left usable between test runs.
    static func lock() {
        _ = try? runTool("/usr/sbin/usermod", ["-p", "!", name])
    }
}
