import FerryCore
import FerryTestSupport
import FerryTransport
import Foundation
import Testing

/// TLS through libcurl against a real HTTPS server on 127.0.0.1 whose certificate is made for the test.
@Suite(.timeLimit(.minutes(2))) struct TLSTests {
    /// A Python `http.server` behind TLS, with a self-signed certificate for 127.0.0.1.
    final class HTTPSServer: @unchecked Sendable {
        let directory: URL
        let certificate: String
        let port: Int
        private let pid: pid_t

        init() throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-tls-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let d = directory.path
            certificate = "\(d)/cert.pem"
            _ = try runTool("/usr/bin/openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(d)/key.pem",
                                                 "-out", certificate, "-days", "1", "-subj", "/CN=127.0.0.1",
                                                 "-addext", "subjectAltName=IP:127.0.0.1"])
            try "hello over tls".write(toFile: "\(d)/hello.txt", atomically: true, encoding: .utf8)
            port = try SSHDServer.freePort()
            let script = """
            import http.server, ssl, functools
            handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory='\(d)')
            server = http.server.HTTPServer(('127.0.0.1', \(port)), handler)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain('\(certificate)', '\(d)/key.pem')
            server.socket = context.wrap_socket(server.socket, server_side=True)
            server.serve_forever()
            """
            try script.write(toFile: "\(d)/serve.py", atomically: true, encoding: .utf8)
            pid = try Spawn.start("/usr/bin/env", ["python3", "\(d)/serve.py"], outputPath: "\(d)/server.log")
            let deadline = Date().addingTimeInterval(15)
            while !SSHDServer.accepts(port: port), Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        }

        var url: String { "https://127.0.0.1:\(port)/hello.txt" }

        deinit {
            // SIGKILL: a child spawned from a dispatch thread inherits its blocked signals, SIGTERM included.
            kill(pid, SIGKILL)
            _ = Spawn.wait(pid)
            try? FileManager.default.removeItem(at: directory)
        }
    }

    @Test func aServerTrustedThroughCAFileIsReachedAndAnUntrustedOneIsRefused() async throws {
        let server = try HTTPSServer()
        let trusting = CurlHTTPClient(configuration: .init(caFile: server.certificate, retry: .none))
        let response = try await trusting.send(HTTPRequest(method: .get, url: server.url))
        #expect(response.status == 200)
        #expect(String(decoding: response.body, as: UTF8.self) == "hello over tls")

        // The system's CA bundle does not know this self-signed certificate: verification is never skipped.
        let error = await #expect(throws: HTTPError.self) {
            try await CurlHTTPClient(configuration: .init(retry: .none)).send(HTTPRequest(method: .get, url: server.url))
        }
        #expect(error?.kind == .tls)
    }
}
