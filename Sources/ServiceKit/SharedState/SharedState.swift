public import Logging
public import ServiceLifecycle

/// The shared-state implementations of one process: Redis-backed in production, in-process when embedded.
public struct SharedState: Sendable {
    public let cache: any Cache
    public let rateLimiter: any RateLimiter
    public let nonces: any NonceStore
    public let ranks: any RankIndex
    public let events: any EventBus
    /// Set when Redis backs the state; readiness checks ping it.
    public let redis: RedisClient?
    /// Long-running parts (Redis pool, pub/sub subscriber) to run for the life of the process.
    public let services: [any Service]
    /// Where a DatasetService in this process offers its verified chunk files to a gateway in this process.
    public let localChunks = LocalChunkFiles()

    public static func inProcess(clock: any WallClock = SystemWallClock()) -> SharedState {
        SharedState(
            cache: InMemoryCache(clock: clock),
            rateLimiter: InMemoryGCRARateLimiter(),
            nonces: InMemoryNonceStore(clock: clock),
            ranks: InMemoryRankIndex(),
            events: InProcessEventBus(),
            redis: nil,
            services: []
        )
    }

    /// Redis-backed state; every key and channel starts with `keyPrefix`, so systems (or parallel tests) sharing one
    /// Redis never see each other's entries.
    public static func redis(_ client: RedisClient, keyPrefix: String = "leaderboard:", logger: Logger) -> SharedState {
        let events = RedisEventBus(client: client, prefix: keyPrefix + "events:", logger: logger)
        return SharedState(
            cache: RedisCache(client: client, prefix: keyPrefix + "cache:"),
            rateLimiter: FallbackRateLimiter(
                primary: RedisGCRARateLimiter(client: client, prefix: keyPrefix + "ratelimit:"), logger: logger),
            nonces: RedisNonceStore(client: client, prefix: keyPrefix + "nonce:"),
            ranks: RedisRankIndex(client: client, prefix: keyPrefix + "rank:"),
            events: events,
            redis: client,
            services: [client, events]
        )
    }
}
