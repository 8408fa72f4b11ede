import ServiceKit
import TestSupport
import Testing

@Suite("RateLimiter contract (GCRA)", .timeLimit(.minutes(3)))
struct RateLimiterContractTests {
    let policy = RateLimitPolicy(name: "test", limit: 5, period: .seconds(10))  // T = 2 s, burst 5
    let start: Int64 = 1_700_000_000_000_000

    func make(_ backend: SharedBackend) throws -> (any RateLimiter, RedisClient?) {
        switch backend {
        case .inProcess: return (InMemoryGCRARateLimiter(), nil)
        case .redis:
            let client = try TestEnvironment.redisClient()
            return (RedisGCRARateLimiter(client: client, prefix: TestEnvironment.uniquePrefix("rl")), client)
        }
    }

    @Test("a full bucket allows the burst, then denies with the exact wait", arguments: SharedBackend.available)
    func burstThenDeny(backend: SharedBackend) async throws {
        let (limiter, client) = try make(backend)
        var remaining: [Int] = []
        for _ in 0..<5 {
            let decision = try await limiter.acquire(key: "ip1", policy: policy, cost: 1, now: start)
            #expect(decision.allowed)
            remaining.append(decision.remaining)
        }
        #expect(remaining == [4, 3, 2, 1, 0])
        let denied = try await limiter.acquire(key: "ip1", policy: policy, cost: 1, now: start)
        #expect(!denied.allowed)
        #expect(denied.retryAfter == 2_000_000)
        #expect(denied.remaining == 0)
        #expect(denied.resetAfter == 10_000_000)
        // One emission interval later exactly one more request fits.
        let later = start + 2_000_000
        #expect(try await limiter.acquire(key: "ip1", policy: policy, cost: 1, now: later).allowed)
        #expect(try await limiter.acquire(key: "ip1", policy: policy, cost: 1, now: later).allowed == false)
        await client?.close()
    }

    @Test("keys and policies are independent", arguments: SharedBackend.available)
    func independentKeys(backend: SharedBackend) async throws {
        let (limiter, client) = try make(backend)
        let strict = RateLimitPolicy(name: "strict", limit: 1, period: .seconds(60))
        #expect(try await limiter.acquire(key: "a", policy: strict, cost: 1, now: start).allowed)
        #expect(try await limiter.acquire(key: "a", policy: strict, cost: 1, now: start).allowed == false)
        #expect(try await limiter.acquire(key: "b", policy: strict, cost: 1, now: start).allowed)
        #expect(try await limiter.acquire(key: "a", policy: policy, cost: 1, now: start).allowed)
        await client?.close()
    }

    @Test("a cost larger than the remaining budget is denied without consuming", arguments: SharedBackend.available)
    func cost(backend: SharedBackend) async throws {
        let (limiter, client) = try make(backend)
        #expect(try await limiter.acquire(key: "bytes", policy: policy, cost: 4, now: start).remaining == 1)
        let denied = try await limiter.acquire(key: "bytes", policy: policy, cost: 2, now: start)
        #expect(!denied.allowed)
        #expect(denied.retryAfter == 2_000_000)
        #expect(try await limiter.acquire(key: "bytes", policy: policy, cost: 1, now: start).allowed)
        await client?.close()
    }

    @Test(
        "Redis and in-process decide identically over a random request stream", .enabled(if: TestEnvironment.hasRedis))
    func differential() async throws {
        let client = try TestEnvironment.redisClient()
        let redis = RedisGCRARateLimiter(client: client, prefix: TestEnvironment.uniquePrefix("rl-diff"))
        let local = InMemoryGCRARateLimiter()
        var generator = SeededGenerator(seed: 42)
        var now = start
        let policies = [policy, RateLimitPolicy(name: "burst", limit: 60, period: .seconds(60), burst: 3)]
        for _ in 0..<400 {
            now += Int64.random(in: 0...1_500_000, using: &generator)
            let key = ["x", "y", "z"].randomElement(using: &generator)!
            let chosen = policies.randomElement(using: &generator)!
            let cost = Int.random(in: 1...3, using: &generator)
            let expected = try await local.acquire(key: key, policy: chosen, cost: cost, now: now)
            let actual = try await redis.acquire(key: key, policy: chosen, cost: cost, now: now)
            #expect(actual == expected)
        }
        await client.close()
    }
}

/// Deterministic randomness for differential tests (SplitMix64).
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
