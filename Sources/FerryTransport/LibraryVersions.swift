import CCurl
import CSSH2

/// The versions of the C libraries this process is linked against, for `ferry --version` and bug reports.
public enum LibraryVersions {
    /// libcurl's version string, as `curl_version_info` reports it.
    public static var curl: String {
        guard let info = ccurl_version_info_now(), let version = info.pointee.version else { return "unknown" }
        return String(cString: version)
    }

    /// libssh2's version string, as `libssh2_version` reports it.
    public static var ssh2: String {
        guard let version = cssh2_version() else { return "unknown" }
        return String(cString: version)
    }
}
