public import Logging
import Synchronization

/// A rate-limit policy: `limit` requests per `period`, with bursts of up to `burst` at once.
public struct RateLimitPolicy: Sendable, Hashable {
    /// Names the policy in keys and in the `RateLimit-Policy` header, e.g. `register`.
    public let name: String
    public let limit: Int
    public let period: Duration
    public let burst: Int

    public init(name: String, limit: Int, period: Duration, burst: Int? = nil) {
        precondition(limit > 0 && period > .zero, "a rate limit needs a positive limit and period")
        self.name = name
        self.limit = limit
        self.period = period
        self.burst = max(1, burst ?? limit)
    }

    /// Microseconds between two requests at the sustained rate (GCRA's emission interval T).
    var emissionInterval: Int64 { max(1, period.microseconds / Int64(limit)) }
}

/// The outcome of one rate-limit check, with what the `RateLimit` and `Retry-After` headers need.
public struct RateLimitDecision: Sendable, Hashable {
    public let allowed: Bool
    /// Requests still allowed right now.
    public let remaining: Int
    /// When denied: microseconds until the request would be allowed.
    public let retryAfter: Int64
    /// Microseconds until the bucket is completely full again.
    public let resetAfter: Int64
}

/// Generic cell rate algorithm (GCRA): state is one "theoretical arrival time" per key.
///
/// Pure, in integer microseconds, so the in-process limiter and the Redis Lua script compute identical decisions.
public enum GCRA {
    /// - Returns: the decision and the new TAT to store (nil when denied: state is unchanged).
    public static func evaluate(
        storedTAT: Int64?,
        now: Int64,
        policy: RateLimitPolicy,
        cost: Int
    ) -> (decision: RateLimitDecision, newTAT: Int64?) {
        let interval = policy.emissionInterval
        let tolerance = interval * Int64(policy.burst)
        let tat = max(storedTAT ?? now, now)
        let newTAT = tat + interval * Int64(cost)
        let allowAt = newTAT - tolerance
        if now < allowAt {
            let remaining = max(0, Int((now - (tat - tolerance)) / interval))
            return (
                RateLimitDecision(
                    allowed: false, remaining: remaining, retryAfter: allowAt - now, resetAfter: tat - now),
                nil
            )
        }
        let remaining = max(0, Int((now - allowAt) / interval))
        return (RateLimitDecision(allowed: true, remaining: remaining, retryAfter: 0, resetAfter: newTAT - now), newTAT)
    }
}

/// Checks and consumes rate-limit budget atomically.
public protocol RateLimiter: Sendable {
    /// `now` is passed in (from the caller's injected clock) so every replica and the tests agree on time.
    func acquire(key: String, policy: RateLimitPolicy, cost: Int, now: Int64) async throws -> RateLimitDecision

    /// ``acquire(key:policy:cost:now:)`` answered without suspending, by a limiter that can (a process-local one);
    /// nil from one that must ask elsewhere, and then nothing was consumed.
    func acquireImmediately(key: String, policy: RateLimitPolicy, cost: Int, now: Int64) -> RateLimitDecision?
}

extension RateLimiter {
    public func acquireImmediately(key: String, policy: RateLimitPolicy, cost: Int, now: Int64) -> RateLimitDecision? {
        nil
    }
}

/// Process-local GCRA limiter.
public final class InMemoryGCRARateLimiter: RateLimiter {
    private struct State {
        var tats: [String: Int64] = [:]
        var nextPurge: Int64 = 0
    }

    private let state = Mutex(State())  // every request of the process checks here

    public init() {}

    public func acquire(key: String, policy: RateLimitPolicy, cost: Int, now: Int64) async throws -> RateLimitDecision {
        decide(key: key, policy: policy, cost: cost, now: now)
    }

    public func acquireImmediately(key: String, policy: RateLimitPolicy, cost: Int, now: Int64) -> RateLimitDecision? {
        decide(key: key, policy: policy, cost: cost, now: now)
    }

    private func decide(key: String, policy: RateLimitPolicy, cost: Int, now: Int64) -> RateLimitDecision {
        let fullKey = policy.name + "\u{0}" + key
        return state.withLock { state in
            if now >= state.nextPurge {
                state.tats = state.tats.filter { $0.value > now }  // a TAT in the past is a full bucket
                state.nextPurge = now + 60_000_000
            }
            let (decision, newTAT) = GCRA.evaluate(
                storedTAT: state.tats[fullKey], now: now, policy: policy, cost: cost)
            if let newTAT { state.tats[fullKey] = newTAT }
            return decision
        }
    }
}

/// GCRA in one Lua script, so the read-modify-write is atomic across gateway replicas.
public struct RedisGCRARateLimiter: RateLimiter {
    let client: RedisClient
    let prefix: String

    /// Mirrors ``GCRA/evaluate(storedTAT:now:policy:cost:)`` exactly; numbers are integer microseconds, which Lua's
    /// doubles hold exactly, and are returned as strings because Redis truncates Lua numbers.
    ///
    /// A key outlives its TAT by a minute: Redis expires it on its own clock while decisions use the caller's `now`,
    /// so a replica whose clock trails Redis's (or a caller whose `now` runs slower than real time) would otherwise
    /// find the key gone early and grant a fresh burst. A TAT in the past decides exactly like a missing key, so the
    /// margin changes no decision; it only keeps idle keys a minute longer.
    static let script = RedisScript(
        """
        local now = tonumber(ARGV[1])
        local interval = tonumber(ARGV[2])
        local tolerance = tonumber(ARGV[3])
        local cost = tonumber(ARGV[4])
        local stored = redis.call('GET', KEYS[1])
        local tat = now
        if stored then tat = math.max(tonumber(stored), now) end
        local new_tat = tat + interval * cost
        local allow_at = new_tat - tolerance
        if now < allow_at then
          local remaining = math.max(0, math.floor((now - (tat - tolerance)) / interval))
          return {'0', tostring(remaining), string.format('%d', allow_at - now), string.format('%d', tat - now)}
        end
        redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 60000)
        local remaining = math.max(0, math.floor((now - allow_at) / interval))
        return {'1', tostring(remaining), '0', string.format('%d', new_tat - now)}
        """
    )

    public init(client: RedisClient, prefix: String = "leaderboard:ratelimit:") {
        self.client = client
        self.prefix = prefix
    }

    public func acquire(key: String, policy: RateLimitPolicy, cost: Int, now: Int64) async throws -> RateLimitDecision {
        let interval = policy.emissionInterval
        let reply = try await client.evaluate(
            Self.script,
            keys: ["\(prefix)\(policy.name):\(key)"],
            arguments: [
                RedisArgument(now), RedisArgument(interval), RedisArgument(interval * Int64(policy.burst)),
                RedisArgument(cost),
            ]
        )
        guard let parts = reply.array?.compactMap(\.integer), parts.count == 4 else {
            throw RedisClientError(.unexpectedReply, "rate-limit script returned an unexpected reply")
        }
        return RateLimitDecision(
            allowed: parts[0] == 1, remaining: Int(parts[1]), retryAfter: parts[2], resetAfter: parts[3])
    }
}

/// A shared limiter that keeps limiting when its store fails: decisions come from a process-local limiter until the
/// primary answers again. The switch both ways is logged once, not per request.
public final class FallbackRateLimiter: RateLimiter {
    private let primary: any RateLimiter
    private let fallback: any RateLimiter
    private let logger: Logger
    private let degraded = Mutex(false)

    public init(primary: any RateLimiter, fallback: any RateLimiter = InMemoryGCRARateLimiter(), logger: Logger) {
        self.primary = primary
        self.fallback = fallback
        self.logger = logger
    }

    public func acquire(key: String, policy: RateLimitPolicy, cost: Int, now: Int64) async throws -> RateLimitDecision {
        do {
            let decision = try await primary.acquire(key: key, policy: policy, cost: cost, now: now)
            if degraded.withLock({ state in
                defer { state = false }; return state
            }) {
                logger.notice("shared rate limiter answers again; limits are shared across replicas once more")
            }
            return decision
        } catch {
            if !degraded.withLock({ state in
                defer { state = true }; return state
            }) {
                logger.error(
                    "shared rate limiter failed; limiting per process until it answers",
                    metadata: ["error": "\(error)"])
            }
            return try await fallback.acquire(key: key, policy: policy, cost: cost, now: now)
        }
    }
}
