import CCurl
import FerryCore
import Foundation
import Logging

/// `HTTPTransport` on libcurl: keep-alive per host, verified TLS, timeouts, streaming uploads
/// and downloads, a response size cap, typed errors and retries with backoff.
///
/// Blocking work: each transfer runs `curl_easy_perform` on a GCD worker thread (never on the
/// Swift cooperative pool, whose few threads must not block), and the calling task suspends on
/// a continuation. ferry makes few concurrent calls (one connection's goals run in sequence), so
/// a thread per in-flight transfer is cheaper to reason about than a curl multi event loop;
/// cancellation reaches the transfer through curl's progress callback.
public struct CurlHTTPClient: HTTPTransport {
    /// Timeouts, limits, TLS and retry settings.
    public struct Configuration: Sendable {
        public var connectTimeout: Duration
        /// The whole transfer, per attempt.
        public var totalTimeout: Duration
        /// Bodies of `send` larger than this fail with `.tooLarge`.
        public var maxResponseBytes: Int
        /// Downloads larger than this fail with `.tooLarge`.
        public var maxDownloadBytes: Int
        /// A PEM bundle to trust instead of the system CA bundle (TLS is verified either way).
        public var caFile: String?
        public var retry: RetryPolicy
        /// Idle connections kept open per host.
        public var maxIdleConnectionsPerHost: Int
        public var userAgent: String

        public init(connectTimeout: Duration = .seconds(10), totalTimeout: Duration = .seconds(300),
                    maxResponseBytes: Int = 32 << 20, maxDownloadBytes: Int = 1 << 30, caFile: String? = nil,
                    retry: RetryPolicy = RetryPolicy(), maxIdleConnectionsPerHost: Int = 2,
                    userAgent: String = "ferry/0.1") {
            self.connectTimeout = connectTimeout
            self.totalTimeout = totalTimeout
            self.maxResponseBytes = maxResponseBytes
            self.maxDownloadBytes = maxDownloadBytes
            self.caFile = caFile
            self.retry = retry
            self.maxIdleConnectionsPerHost = maxIdleConnectionsPerHost
            self.userAgent = userAgent
        }
    }

    public let configuration: Configuration
    private let pool: CurlHandlePool
    private let logger: Logger
    private let sleep: @Sendable (Duration) async throws -> Void
    private let now: @Sendable () -> Date
    private let random: @Sendable () -> Double

    /// `sleep`, `now` and `random` are injectable so retry tests neither wait nor flake.
    public init(configuration: Configuration = Configuration(), logger: Logger = Logger(label: "ferry.http"),
                sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) },
                now: @escaping @Sendable () -> Date = { Date() },
                random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }) {
        self.configuration = configuration
        self.pool = CurlHandlePool(maxIdlePerHost: configuration.maxIdleConnectionsPerHost)
        self.logger = logger
        self.sleep = sleep
        self.now = now
        self.random = random
    }

    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        try await withRetries(request) {
            try await perform(request, sink: nil)
        }
    }

    public func download(_ request: HTTPRequest, to file: URL, observer: (any DownloadObserver)?) async throws -> HTTPResponse {
        let partial = file.appendingPathExtension("part")
        defer { try? FileManager.default.removeItem(at: partial) }
        let response = try await withRetries(request) {
            try await perform(request, sink: partial, observer: observer)
        }
        do {
            _ = try? FileManager.default.removeItem(at: file)
            try FileManager.default.moveItem(at: partial, to: file)
        } catch {
            throw HTTPError(kind: .local, url: redactor(request).redact(request.url), method: request.method,
                            detail: "cannot move download into \(file.path): \(error)")
        }
        return response
    }

    // MARK: - Retries

    private func withRetries(_ request: HTTPRequest,
                             _ attempt: () async throws -> HTTPResponse) async throws -> HTTPResponse {
        let policy = configuration.retry
        var waited = Duration.zero
        var number = 1
        while true {
            do {
                return try await attempt()
            } catch var error as HTTPError {
                error.attempts = number
                guard error.isRetryable, number < policy.maxAttempts else { throw error }
                let delay = policy.delay(attempt: number, status: error.status, headers: error.headers,
                                         now: now(), random: random())
                guard waited + delay <= policy.maxTotalWait else {
                    logger.warning("giving up: waiting \(delay) would exceed the retry budget", metadata: ["error": "\(error)"])
                    throw error
                }
                logger.info("retrying in \(delay)", metadata: ["error": "\(error)", "attempt": "\(number)"])
                try await sleep(delay)
                waited += delay
                number += 1
            }
        }
    }

    // MARK: - One transfer

    private func redactor(_ request: HTTPRequest) -> Redactor { Redactor(secrets: request.secrets) }

    private func perform(_ request: HTTPRequest, sink downloadFile: URL?, observer: (any DownloadObserver)? = nil) async throws -> HTTPResponse {
        let safeURL = redactor(request).redact(request.url)
        func failure(_ kind: HTTPError.Kind, _ detail: String, code: Int? = nil) -> HTTPError {
            HTTPError(kind: kind, url: safeURL, method: request.method, curlCode: code,
                      detail: redactor(request).redact(detail))
        }
        guard let components = URLComponents(string: request.url), let host = components.host,
              let scheme = components.scheme, ["http", "https"].contains(scheme.lowercased()) else {
            throw failure(.local, "not an http(s) URL")
        }
        for case .file(let path, _, _) in request.body.multipartContents where !FileManager.default.isReadableFile(atPath: path) {
            throw failure(.local, "upload file \(path) is not readable")
        }
        let sink: CurlTransfer.Sink
        if let downloadFile {
            guard FileManager.default.createFile(atPath: downloadFile.path, contents: nil),
                  let handle = try? FileHandle(forWritingTo: downloadFile) else {
                throw failure(.local, "cannot create \(downloadFile.path)")
            }
            observer?.restart()
            sink = .file(handle, observer)
        } else {
            sink = .memory
        }
        let limit = request.maxResponseBytes
            ?? (downloadFile == nil ? configuration.maxResponseBytes : configuration.maxDownloadBytes)
        let transfer = CurlTransfer(sink: sink, maxBytes: limit)
        let poolKey = "\(scheme.lowercased())://\(host):\(components.port ?? 0)"
        guard let easy = pool.take(host: poolKey) else { throw failure(.local, "curl_easy_init failed") }

        let outcome: (code: CURLcode, status: Int) = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                DispatchQueue.global().async {
                    let result = Self.run(easy, request: request, transfer: transfer, configuration: configuration)
                    continuation.resume(returning: result)
                }
            }
        } onCancel: {
            transfer.isCancelled = true
        }
        if case .file(let handle, _) = sink { try? handle.close() }
        let message = easy.errorMessage
        pool.give(easy, host: poolKey)

        let code = Int(outcome.code.rawValue)
        if outcome.code != CURLE_OK {
            if transfer.isCancelled { throw CancellationError() }
            if transfer.exceededLimit || outcome.code == CURLE_FILESIZE_EXCEEDED {
                throw failure(.tooLarge, "response exceeds \(limit) bytes", code: code)
            }
            if let sinkFailure = transfer.sinkFailure { throw failure(.local, "cannot write download: \(sinkFailure)", code: code) }
            let detail = message.isEmpty ? String(cString: curl_easy_strerror(outcome.code)) : message
            throw failure(Self.kind(of: outcome.code), detail, code: code)
        }
        var body = transfer.body
        if let downloadFile, !(200..<300).contains(outcome.status) {
            body = (try? FileHandle(forReadingFrom: downloadFile).read(upToCount: 65536)) ?? Data()
        }
        guard (200..<300).contains(outcome.status) else {
            throw HTTPError(kind: .status, url: safeURL, method: request.method, status: outcome.status,
                            headers: transfer.headers,
                            body: redactor(request).redact(String(decoding: body.prefix(65536), as: UTF8.self)),
                            detail: "")
        }
        return HTTPResponse(status: outcome.status, headers: transfer.headers, body: body)
    }

    /// Runs one blocking transfer; called on a GCD thread.
    private static func run(_ easy: CurlEasy, request: HTTPRequest, transfer: CurlTransfer,
                            configuration: Configuration) -> (code: CURLcode, status: Int) {
        easy.reset()
        let h = easy.handle
        let setup = CurlSetup(easy)

        setup.string(CURLOPT_URL, request.url)
        setup.long(CURLOPT_NOSIGNAL, 1)  // no SIGALRM for DNS timeouts: signals and threads do not mix
        setup.string(CURLOPT_PROTOCOLS_STR, "http,https")
        setup.long(CURLOPT_FOLLOWLOCATION, 1)
        setup.long(CURLOPT_MAXREDIRS, 5)
        setup.string(CURLOPT_REDIR_PROTOCOLS_STR, "http,https")
        setup.verifiedTLS(caFile: configuration.caFile, connectTimeout: configuration.connectTimeout,
                          totalTimeout: configuration.totalTimeout)
        setup.long(CURLOPT_TCP_KEEPALIVE, 1)
        setup.check(ccurl_easy_setopt_off_t(h, CURLOPT_MAXFILESIZE_LARGE, curl_off_t(transfer.maxBytes)))
        setup.string(CURLOPT_USERAGENT, configuration.userAgent)
        setup.string(CURLOPT_ACCEPT_ENCODING, "")  // every encoding curl was built with

        let context = Unmanaged.passUnretained(transfer).toOpaque()
        setup.check(ccurl_easy_setopt_write_function(h, CURLOPT_WRITEFUNCTION) { data, size, count, context in
            guard let data, let context else { return 0 }
            let transfer = Unmanaged<CurlTransfer>.fromOpaque(context).takeUnretainedValue()
            return transfer.write(UnsafeRawBufferPointer(start: data, count: size * count))
        })
        setup.check(ccurl_easy_setopt_pointer(h, CURLOPT_WRITEDATA, context))
        setup.check(ccurl_easy_setopt_write_function(h, CURLOPT_HEADERFUNCTION) { data, size, count, context in
            guard let data, let context else { return 0 }
            let transfer = Unmanaged<CurlTransfer>.fromOpaque(context).takeUnretainedValue()
            let bytes = UnsafeRawBufferPointer(start: data, count: size * count)
            transfer.header(String(decoding: bytes, as: UTF8.self))
            return size * count
        })
        setup.check(ccurl_easy_setopt_pointer(h, CURLOPT_HEADERDATA, context))
        setup.long(CURLOPT_NOPROGRESS, 0)
        setup.check(ccurl_easy_setopt_xferinfo_function(h) { context, _, _, _, _ in
            guard let context else { return 0 }
            return Unmanaged<CurlTransfer>.fromOpaque(context).takeUnretainedValue().isCancelled ? 1 : 0
        })
        setup.check(ccurl_easy_setopt_pointer(h, CURLOPT_XFERINFODATA, context))

        // An empty Expect stops curl waiting for a `100 Continue` that simple servers never send.
        var headerLines = request.headers.map { "\($0.name): \($0.value)" } + ["Expect:"]
        var mime: OpaquePointer?
        switch request.body {
        case .empty:
            switch request.method {
            case .get: setup.long(CURLOPT_HTTPGET, 1)
            case .post:
                setup.long(CURLOPT_POST, 1)
                setup.long(CURLOPT_POSTFIELDSIZE, 0)
            default: setup.string(CURLOPT_CUSTOMREQUEST, request.method.rawValue)
            }
        case .bytes(let data, let contentType):
            headerLines.append("Content-Type: \(contentType)")
            setup.check(ccurl_easy_setopt_off_t(h, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(data.count)))
            data.withUnsafeBytes { bytes in
                // COPYPOSTFIELDS copies, so the buffer need not outlive this closure.
                setup.check(ccurl_easy_setopt_pointer(h, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!)))
            }
            if request.method != .post { setup.string(CURLOPT_CUSTOMREQUEST, request.method.rawValue) }
        case .multipart(let parts):
            mime = curl_mime_init(h)
            for part in parts {
                let mimePart = curl_mime_addpart(mime)
                setup.check(curl_mime_name(mimePart, part.name))
                switch part.content {
                case .text(let value):
                    let bytes = Array(value.utf8)
                    setup.check(bytes.withUnsafeBufferPointer { buffer in
                        buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: max(bytes.count, 1)) {
                            curl_mime_data(mimePart, $0, bytes.count)
                        }
                    })
                case .file(let path, let filename, let contentType):
                    setup.check(curl_mime_filedata(mimePart, path))  // streamed from disk during the transfer
                    setup.check(curl_mime_filename(mimePart, filename))
                    setup.check(curl_mime_type(mimePart, contentType))
                }
            }
            setup.check(ccurl_easy_setopt_pointer(h, CURLOPT_MIMEPOST, UnsafeMutableRawPointer(mime)))
            if request.method != .post { setup.string(CURLOPT_CUSTOMREQUEST, request.method.rawValue) }
        }
        var list: UnsafeMutablePointer<curl_slist>?
        for line in headerLines { list = curl_slist_append(list, line) }
        setup.check(ccurl_easy_setopt_pointer(h, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(list)))
        defer {
            curl_slist_free_all(list)
            curl_mime_free(mime)
        }
        guard setup.failure == CURLE_OK else { return (setup.failure, 0) }

        let code = curl_easy_perform(h)
        var status = 0
        _ = ccurl_easy_getinfo_long(h, CURLINFO_RESPONSE_CODE, &status)
        // Options point at `list`, `mime` and `transfer`, which die with this call.
        _ = ccurl_easy_setopt_pointer(h, CURLOPT_HTTPHEADER, nil)
        _ = ccurl_easy_setopt_pointer(h, CURLOPT_MIMEPOST, nil)
        return (code, status)
    }

    /// Classifies a failed transfer for retries and messages.
    static func kind(of code: CURLcode) -> HTTPError.Kind {
        switch code {
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY: .dns
        case CURLE_COULDNT_CONNECT: .connect
        case CURLE_OPERATION_TIMEDOUT: .timeout
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER,
             CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH,
             CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_CRL_BADFILE, CURLE_SSL_ENGINE_NOTFOUND,
             CURLE_SSL_ENGINE_SETFAILED, CURLE_SSL_SHUTDOWN_FAILED, CURLE_USE_SSL_FAILED: .tls
        case CURLE_FILESIZE_EXCEEDED: .tooLarge
        case CURLE_ABORTED_BY_CALLBACK: .cancelled
        case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL, CURLE_READ_ERROR, CURLE_FILE_COULDNT_READ_FILE,
             CURLE_OUT_OF_MEMORY, CURLE_BAD_FUNCTION_ARGUMENT: .local
        default: .network  // GOT_NOTHING, RECV_ERROR, SEND_ERROR, PARTIAL_FILE, HTTP2 stream errors, …
        }
    }
}

extension HTTPBody {
    /// The parts of a multipart body; empty otherwise.
    var multipartContents: [MultipartPart.Content] {
        if case .multipart(let parts) = self { return parts.map(\.content) }
        return []
    }
}

extension Duration {
    /// Whole milliseconds (rounded down), for curl's `_MS` options.
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
