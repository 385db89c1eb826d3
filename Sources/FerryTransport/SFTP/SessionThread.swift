import Foundation

/// The one OS thread that runs every blocking libssh2 call of one SFTP session.
///
/// Why a dedicated thread instead of non-blocking libssh2 plus poll: libssh2's blocking mode already
/// waits on its socket with poll() and gives up after `libssh2_session_set_timeout`, and a libssh2
/// session must never be used from two threads at once. One thread per session gives both for free:
/// calls are serialised in submission order, and the blocking waits happen off Swift's cooperative
/// pool (two threads on this machine), so a slow server never starves other tasks. A run opens a
/// handful of sessions at most, so a thread each costs nothing that matters.
final class SessionThread: @unchecked Sendable {
    // @unchecked Sendable: `jobs` and `isStopping` are only read or written while holding `condition`.
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var isStopping = false

    init(name: String) {
        let thread = Thread { [self] in self.runJobs() }
        thread.name = name
        thread.start()
    }

    private func runJobs() {
        while true {
            condition.lock()
            while jobs.isEmpty && !isStopping { condition.wait() }
            if jobs.isEmpty {
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job()
        }
    }

    /// Queues `job`; false once `stop()` was called.
    @discardableResult
    func submit(_ job: @escaping @Sendable () -> Void) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard !isStopping else { return false }
        jobs.append(job)
        condition.signal()
        return true
    }

    /// Runs `body` on the thread and returns its result; throws `stoppedError` if the thread was stopped.
    func run<T: Sendable>(
        stoppedError: @autoclosure () -> any Error,
        _ body: @escaping @Sendable () throws -> T
    ) async throws -> T {
        try await start(stoppedError: stoppedError(), body).value()
    }

    /// True while jobs wait behind the running one: a streaming upload keeps its pipeline full instead of
    /// draining it when more data is already queued.
    var hasQueuedJobs: Bool {
        condition.lock()
        defer { condition.unlock() }
        return !jobs.isEmpty
    }

    /// Queues `body` now (so jobs keep the order of these calls) and returns a handle to await its result later.
    func start<T: Sendable>(
        stoppedError: @autoclosure () -> any Error,
        _ body: @escaping @Sendable () throws -> T
    ) -> PendingJob<T> {
        let pending = PendingJob<T>()
        if !submit({ pending.complete(Result { try body() }) }) { pending.complete(.failure(stoppedError())) }
        return pending
    }

    /// Lets queued jobs finish, then ends the thread.
    func stop() {
        condition.lock()
        isStopping = true
        condition.broadcast()
        condition.unlock()
    }
}

/// The result of a job queued with `SessionThread.start`, awaited once, later.
final class PendingJob<T: Sendable>: @unchecked Sendable {
    // @unchecked Sendable: `result` and `waiter` are only read or written while holding `lock`.
    private let lock = NSLock()
    private var result: Result<T, any Error>?
    private var waiter: CheckedContinuation<T, any Error>?

    func complete(_ outcome: Result<T, any Error>) {
        lock.lock()
        if let waiter {
            self.waiter = nil
            lock.unlock()
            waiter.resume(with: outcome)
        } else {
            result = outcome
            lock.unlock()
        }
    }

    /// The outcome if the job has finished, without waiting.
    var finished: Result<T, any Error>? {
        lock.lock()
        defer { lock.unlock() }
        return result
    }

    /// Waits for the job and returns its result or rethrows its error.
    func value() async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            lock.lock()
            if let result {
                lock.unlock()
                continuation.resume(with: result)
            } else {
                waiter = continuation
                lock.unlock()
            }
        }
    }
}
