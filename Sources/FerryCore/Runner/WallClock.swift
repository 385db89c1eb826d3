import Foundation

/// The daemon's source of wall-clock time, injected so tests run days of schedule in seconds.
public protocol WallClock: Sendable {
    /// The current wall-clock instant.
    func now() -> Date
    /// Suspends until the wall clock reads `instant` (or a little after); throws when cancelled.
    func sleep(until instant: Date) async throws
}

/// The system clock.
public struct SystemWallClock: WallClock {
    public init() {}
    public func now() -> Date { Date() }
    public func sleep(until instant: Date) async throws {
        let seconds = instant.timeIntervalSinceNow
        if seconds > 0 { try await Task.sleep(for: .milliseconds(Int64((seconds * 1000).rounded(.up)))) }
    }
}

/// A clock that starts at a chosen instant and runs `scale` times faster than real time.
///
/// `ferry daemon --clock-start … --clock-scale 600` uses it so end-to-end tests see an hour pass in six seconds.
public struct ScaledWallClock: WallClock {
    public let start: Date
    public let scale: Double
    private let origin: ContinuousClock.Instant

    public init(start: Date, scale: Double) {
        self.start = start
        self.scale = max(scale, 0.001)
        self.origin = ContinuousClock.now
    }

    public func now() -> Date {
        let elapsed = ContinuousClock.now - origin
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return start.addingTimeInterval(seconds * scale)
    }

    public func sleep(until instant: Date) async throws {
        let real = instant.timeIntervalSince(now()) / scale
        if real > 0 { try await Task.sleep(for: .milliseconds(Int64((real * 1000).rounded(.up)))) }
    }
}
