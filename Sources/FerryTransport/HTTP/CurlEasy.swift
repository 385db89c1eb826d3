import CCurl
import FerryCore
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Process-wide libcurl setup, done once: `curl_global_init` is not thread-safe, and a write to a
/// peer that closed must fail with EPIPE instead of killing the process.
enum CurlGlobal {
    /// The result of the one `curl_global_init`; evaluated on first use (Swift `static let` is once-only).
    static let initialized: Bool = {
        signal(SIGPIPE, SIG_IGN)
        return ccurl_global_init_default() == CURLE_OK
    }()
}

/// One libcurl easy handle with its error buffer.
///
/// `@unchecked Sendable` is safe because a handle is used by exactly one transfer at a time:
/// `CurlHandlePool` hands it out exclusively and takes it back only after `curl_easy_perform`
/// returned, so no two threads ever touch the handle or its buffer at once.
final class CurlEasy: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer
    let errorBuffer: UnsafeMutablePointer<CChar>

    init?() {
        guard CurlGlobal.initialized, let handle = curl_easy_init() else { return nil }
        self.handle = handle
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
    }

    deinit {
        curl_easy_cleanup(handle)
        errorBuffer.deallocate()
    }

    /// Clears the options of the last transfer but keeps its live connections (keep-alive) and DNS cache.
    func reset() {
        curl_easy_reset(handle)
        errorBuffer[0] = 0
        // reset() clears the error-buffer option too.
        _ = ccurl_easy_setopt_pointer(handle, CURLOPT_ERRORBUFFER, errorBuffer)
    }

    var errorMessage: String { String(cString: errorBuffer) }
}

/// Idle easy handles per host, so consecutive calls to one host reuse its open connection.
///
/// `@unchecked Sendable`: `idle` is only read or written with `lock` held.
final class CurlHandlePool: @unchecked Sendable {
    private let lock = NSLock()
    private var idle: [String: [CurlEasy]] = [:]
    private let maxIdlePerHost: Int

    init(maxIdlePerHost: Int) {
        self.maxIdlePerHost = maxIdlePerHost
    }

    /// An idle handle for `host`, or a new one.
    func take(host: String) -> CurlEasy? {
        if let handle = lock.withLock({ idle[host]?.popLast() }) { return handle }
        return CurlEasy()
    }

    /// Returns a handle after its transfer; beyond the limit it is closed.
    func give(_ handle: CurlEasy, host: String) {
        lock.withLock {
            if idle[host, default: []].count < maxIdlePerHost { idle[host, default: []].append(handle) }
        }
    }
}

/// The per-transfer state curl's C callbacks reach through their `void *` argument.
///
/// `@unchecked Sendable`: the callbacks run on the transfer's thread; the only field touched from
/// elsewhere, `isCancelled`, is guarded by `lock`.
final class CurlTransfer: @unchecked Sendable {
    enum Sink {
        case memory
        /// The download's file, and who sees each chunk written to it.
        case file(FileHandle, (any DownloadObserver)?)
    }

    let sink: Sink
    let maxBytes: Int
    var body = Data()
    var received = 0
    var exceededLimit = false
    var sinkFailure: String?
    var headers: [String: String] = [:]
    private let lock = NSLock()
    private var cancelled = false

    init(sink: Sink, maxBytes: Int) {
        self.sink = sink
        self.maxBytes = maxBytes
    }

    var isCancelled: Bool {
        get { lock.withLock { cancelled } }
        set { lock.withLock { cancelled = newValue } }
    }

    /// Accepts a body chunk; returning less than `count` makes curl abort with CURLE_WRITE_ERROR.
    func write(_ bytes: UnsafeRawBufferPointer) -> Int {
        received += bytes.count
        if received > maxBytes {
            exceededLimit = true
            return 0
        }
        switch sink {
        case .memory:
            body.append(contentsOf: bytes)
        case .file(let handle, let observer):
            do { try handle.write(contentsOf: bytes) } catch {
                sinkFailure = "\(error)"
                return 0
            }
            observer?.consume(bytes)
        }
        return bytes.count
    }

    /// Records one header line; a new status line (redirect, 100 Continue) starts a fresh set.
    func header(_ line: String) {
        if line.hasPrefix("HTTP/") {
            headers = [:]
            return
        }
        guard let colon = line.firstIndex(of: ":") else { return }
        let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
        let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
        headers[name] = value
    }
}

/// Sets the options of one transfer, keeping the first failure so setup is checked once, before performing.
///
/// A class so the C callbacks' setup lines can share it; used by one thread for one transfer.
final class CurlSetup {
    let handle: UnsafeMutableRawPointer
    /// The first option that failed to set, or `CURLE_OK`.
    private(set) var failure: CURLcode = CURLE_OK

    init(_ easy: CurlEasy) { handle = easy.handle }

    func check(_ code: CURLcode) { if code != CURLE_OK, failure == CURLE_OK { failure = code } }
    func long(_ option: CURLoption, _ value: Int) { check(ccurl_easy_setopt_long(handle, option, value)) }
    func string(_ option: CURLoption, _ value: String) { check(ccurl_easy_setopt_string(handle, option, value)) }

    /// Peer and host verification always on (a private CA through `caFile`), and both time limits.
    func verifiedTLS(caFile: String?, connectTimeout: Duration, totalTimeout: Duration) {
        long(CURLOPT_SSL_VERIFYPEER, 1)
        long(CURLOPT_SSL_VERIFYHOST, 2)
        if let caFile { string(CURLOPT_CAINFO, caFile) }
        long(CURLOPT_CONNECTTIMEOUT_MS, Int(connectTimeout.milliseconds))
        long(CURLOPT_TIMEOUT_MS, Int(totalTimeout.milliseconds))
    }
}
