import Foundation
import Synchronization

/// Wall-clock time in whole microseconds since the Unix epoch.
///
/// Not `any Clock<Duration>`: expiries and GCRA state are absolute times that are stored and sent to Redis
/// scripts, which a monotonic instant cannot be. Injected everywhere so tests control time exactly.
public protocol WallClock: Sendable {
    func microsecondsSinceEpoch() -> Int64
}

extension WallClock {
    public func secondsSinceEpoch() -> Double { Double(microsecondsSinceEpoch()) / 1_000_000 }
}

/// The system clock.
public struct SystemWallClock: WallClock {
    public init() {}

    public func microsecondsSinceEpoch() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1_000_000).rounded())
    }
}

/// A clock that moves only when told to; for tests.
public final class ManualWallClock: WallClock {
    // Shared between the test and the code under test, which may run on other threads.
    private let now: Mutex<Int64>

    public init(microsecondsSinceEpoch: Int64 = 1_700_000_000_000_000) {
        now = Mutex(microsecondsSinceEpoch)
    }

    public func microsecondsSinceEpoch() -> Int64 { now.withLock { $0 } }

    public func advance(by duration: Duration) {
        now.withLock { $0 += duration.microseconds }
    }
}

extension Duration {
    /// Whole microseconds, rounded down.
    public var microseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000 + attoseconds / 1_000_000_000_000
    }

    public var milliseconds: Int64 { microseconds / 1000 }
}
