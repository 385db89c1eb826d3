import Testing
@testable import FerryTransport

@Suite struct LibraryVersionsTests {
    @Test func linksLibcurlAndReportsItsVersion() {
        let version = LibraryVersions.curl
        #expect(version.split(separator: ".").count >= 2, "curl version was \(version)")
    }

    @Test func linksLibssh2AndReportsItsVersion() {
        let version = LibraryVersions.ssh2
        #expect(version.split(separator: ".").count >= 2, "libssh2 version was \(version)")
    }
}
