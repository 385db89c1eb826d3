import Foundation

/// Runs a blocking call (a child process) off the cooperative pool, so waiting never holds a pool
/// thread other tests' async work needs (on 2 cores the pool has only 2). Calls go through one serial
/// queue: Foundation's `Process` on Linux can miss a child's exit when many are spawned and awaited
/// from several threads at once, which hung a whole test run.
func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        childProcessQueue.async { continuation.resume(with: Result { try body() }) }
    }
}

/// The one queue integration tests start and await child processes on.
let childProcessQueue = DispatchQueue(label: "ferry.integration-tests.child-processes")

/// Waits up to ten seconds for a terminated child, then kills it: Foundation's `waitUntilExit` on Linux can
/// miss an exit when many children run at once, and a test run must never hang on that.
func stopWaiting(for process: Process) {
    let deadline = Date().addingTimeInterval(10)
    while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
}
