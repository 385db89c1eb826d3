import Foundation
import Synchronization
@testable import FerryCore

/// A wall clock that moves only when the test says so, so scheduler tests do not depend on machine speed.
final class ManualWallClock: WallClock, Sendable {
    private struct State {
        var now: Date
        var sleepers: [(id: UUID, until: Date, continuation: CheckedContinuation<Void, any Error>)] = []
    }
    private let state: Mutex<State>

    init(_ start: Date) { state = Mutex(State(now: start)) }

    func now() -> Date { state.withLock { $0.now } }

    /// How many tasks are asleep on the clock (the scheduler sleeps between checks).
    var sleeperCount: Int { state.withLock { $0.sleepers.count } }

    func sleep(until instant: Date) async throws {
        let id = UUID()
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let resumeNow = state.withLock { s -> Bool in
                    if s.now >= instant || Task.isCancelled { return true }
                    s.sleepers.append((id, instant, continuation))
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let sleeper = state.withLock { s in s.sleepers.firstIndex { $0.id == id }.map { s.sleepers.remove(at: $0) } }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
        try Task.checkCancellation()
    }

    /// Moves the clock to `instant` and wakes every sleeper due by then.
    func advance(to instant: Date) {
        let due = state.withLock { s -> [CheckedContinuation<Void, any Error>] in
            s.now = instant
            let ready = s.sleepers.filter { $0.until <= instant }
            s.sleepers.removeAll { $0.until <= instant }
            return ready.map(\.continuation)
        }
        for continuation in due { continuation.resume() }
    }
}

/// Waits (polling, generously bounded) until `condition` holds; false if it never did.
func eventually(timeout: Duration = .seconds(20), _ condition: () throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return try condition()
}
