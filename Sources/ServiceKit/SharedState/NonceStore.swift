import Synchronization

/// Remembers nonces so a signed request is accepted once per scope (a device) within its window.
public protocol NonceStore: Sendable {
    /// Records the nonce. Returns false when it was already recorded and has not expired: a replay.
    func claim(_ nonce: String, scope: String, ttl: Duration) async throws -> Bool
}

/// Process-local nonce store; expired nonces are purged as new ones arrive.
public final class InMemoryNonceStore: NonceStore {
    private struct State {
        var expiries: [String: Int64] = [:]
        var nextPurge: Int64 = 0
    }

    private let state = Mutex(State())  // every signed request of the process claims here
    private let clock: any WallClock

    public init(clock: any WallClock = SystemWallClock()) {
        self.clock = clock
    }

    public func claim(_ nonce: String, scope: String, ttl: Duration) async throws -> Bool {
        let now = clock.microsecondsSinceEpoch()
        let key = scope + "\u{0}" + nonce
        return state.withLock { state in
            if now >= state.nextPurge {
                state.expiries = state.expiries.filter { $0.value > now }
                state.nextPurge = now + 10_000_000
            }
            if let expiry = state.expiries[key], expiry > now { return false }
            state.expiries[key] = now + ttl.microseconds
            return true
        }
    }
}

/// Nonces in Redis: `SET key 1 NX PX ttl` is the atomic claim; Redis expires them.
public struct RedisNonceStore: NonceStore {
    let client: RedisClient
    let prefix: String

    public init(client: RedisClient, prefix: String = "leaderboard:nonce:") {
        self.client = client
        self.prefix = prefix
    }

    public func claim(_ nonce: String, scope: String, ttl: Duration) async throws -> Bool {
        let reply = try await client.send([
            // The scope length keeps (scope "a:b", nonce "c") apart from (scope "a", nonce "b:c").
            "SET", RedisArgument("\(prefix)\(scope.utf8.count):\(scope):\(nonce)"), "1", "NX", "PX",
            RedisArgument(max(1, ttl.milliseconds)),
        ])
        return !reply.isNull
    }
}
