import ServiceKit
import TestSupport
import Testing

@Suite("Cache contract", .timeLimit(.minutes(1)))
struct CacheContractTests {
    func make(_ backend: SharedBackend) throws -> (any Cache, RedisClient?) {
        switch backend {
        case .inProcess: return (InMemoryCache(), nil)
        case .redis:
            let client = try TestEnvironment.redisClient()
            return (RedisCache(client: client, prefix: TestEnvironment.uniquePrefix("cache")), client)
        }
    }

    @Test("a stored value reads back byte for byte, including zero bytes", arguments: SharedBackend.available)
    func roundTrip(backend: SharedBackend) async throws {
        let (cache, client) = try make(backend)
        let value: [UInt8] = [0, 1, 2, 255, 0, 10, 13]
        try await cache.set("k", value: value, ttl: .seconds(30))
        #expect(try await cache.get("k") == value)
        #expect(try await cache.get("missing") == nil)
        await client?.close()
    }

    @Test("setting again replaces and delete removes", arguments: SharedBackend.available)
    func replaceAndDelete(backend: SharedBackend) async throws {
        let (cache, client) = try make(backend)
        try await cache.set("a", value: [1], ttl: .seconds(30))
        try await cache.set("a", value: [2], ttl: .seconds(30))
        try await cache.set("b", value: [3], ttl: .seconds(30))
        #expect(try await cache.get("a") == [2])
        try await cache.delete(["a", "b", "never-set"])
        #expect(try await cache.get("a") == nil)
        #expect(try await cache.get("b") == nil)
        await client?.close()
    }

    @Test("an entry expires after its time to live", arguments: SharedBackend.available)
    func expiry(backend: SharedBackend) async throws {
        let (cache, client) = try make(backend)
        // Real time for Redis, so no read races a short TTL: the short entry is only watched going, and a long one
        // beside it shows that entries live until their own TTL.
        try await cache.set("long", value: [7], ttl: .seconds(600))
        try await cache.set("short", value: [9], ttl: .seconds(1))
        #expect(try await eventually(within: .seconds(15)) { try await cache.get("short") == nil })
        #expect(try await cache.get("long") == [7])
        await client?.close()
    }

    @Test("the in-process cache evicts the entries expiring soonest when full")
    func boundedInProcess() async throws {
        let clock = ManualWallClock()
        let cache = InMemoryCache(maximumEntries: 2, clock: clock)
        try await cache.set("soon", value: [1], ttl: .seconds(1))
        try await cache.set("late", value: [2], ttl: .seconds(100))
        try await cache.set("new", value: [3], ttl: .seconds(50))
        #expect(try await cache.get("soon") == nil)
        #expect(try await cache.get("late") == [2])
        #expect(try await cache.get("new") == [3])
        clock.advance(by: .seconds(60))
        #expect(try await cache.get("new") == nil)
    }
}

@Suite("NonceStore contract", .timeLimit(.minutes(1)))
struct NonceStoreContractTests {
    func make(_ backend: SharedBackend) throws -> (any NonceStore, RedisClient?) {
        switch backend {
        case .inProcess: return (InMemoryNonceStore(), nil)
        case .redis:
            let client = try TestEnvironment.redisClient()
            return (RedisNonceStore(client: client, prefix: TestEnvironment.uniquePrefix("nonce")), client)
        }
    }

    @Test("a nonce is accepted once per scope", arguments: SharedBackend.available)
    func once(backend: SharedBackend) async throws {
        let (store, client) = try make(backend)
        #expect(try await store.claim("n1", scope: "device-a", ttl: .seconds(60)))
        #expect(try await store.claim("n1", scope: "device-a", ttl: .seconds(60)) == false)
        #expect(try await store.claim("n1", scope: "device-b", ttl: .seconds(60)))
        // The scope length is part of the key: ("a:b", "c") and ("a", "b:c") are different claims.
        #expect(try await store.claim("c", scope: "a:b", ttl: .seconds(60)))
        #expect(try await store.claim("b:c", scope: "a", ttl: .seconds(60)))
        await client?.close()
    }

    @Test("concurrent claims of one nonce: exactly one wins", arguments: SharedBackend.available)
    func concurrent(backend: SharedBackend) async throws {
        let (store, client) = try make(backend)
        let wins = try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<50 { group.addTask { try await store.claim("race", scope: "d", ttl: .seconds(60)) } }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(wins == 1)
        await client?.close()
    }

    @Test("a nonce can be used again after it expires", arguments: SharedBackend.available)
    func expiry(backend: SharedBackend) async throws {
        let (store, client) = try make(backend)
        #expect(try await store.claim("n", scope: "d", ttl: .milliseconds(150)))
        #expect(try await eventually { try await store.claim("n", scope: "d", ttl: .milliseconds(150)) })
        await client?.close()
    }
}
