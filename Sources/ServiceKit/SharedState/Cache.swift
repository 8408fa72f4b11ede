import Synchronization

/// A byte cache with expiry, shared by gateway replicas when backed by Redis.
///
/// Values are opaque bytes; callers choose keys (prefixed per use, e.g. `board:`). A miss or an expired entry reads
/// as nil. Nothing in a cache is the only copy of anything.
public protocol Cache: Sendable {
    func get(_ key: String) async throws -> [UInt8]?
    func set(_ key: String, value: [UInt8], ttl: Duration) async throws
    /// Removes the keys; missing keys are ignored.
    func delete(_ keys: [String]) async throws
}

/// Process-local cache, bounded by entry count; when full, expired entries go first, then those expiring soonest.
public final class InMemoryCache: Cache {
    private struct Entry {
        var value: [UInt8]
        var expiresAt: Int64
    }

    private let entries = Mutex<[String: Entry]>([:])  // shared by every request task of the process
    private let clock: any WallClock
    private let maximumEntries: Int

    public init(maximumEntries: Int = 10_000, clock: any WallClock = SystemWallClock()) {
        self.clock = clock
        self.maximumEntries = max(1, maximumEntries)
    }

    public func get(_ key: String) async throws -> [UInt8]? {
        let now = clock.microsecondsSinceEpoch()
        return entries.withLock { entries in
            guard let entry = entries[key] else { return nil }
            if entry.expiresAt <= now {
                entries[key] = nil
                return nil
            }
            return entry.value
        }
    }

    public func set(_ key: String, value: [UInt8], ttl: Duration) async throws {
        let now = clock.microsecondsSinceEpoch()
        guard ttl > .zero else { return try await delete([key]) }
        entries.withLock { entries in
            entries[key] = Entry(value: value, expiresAt: now + ttl.microseconds)
            guard entries.count > maximumEntries else { return }
            entries = entries.filter { $0.value.expiresAt > now }
            if entries.count > maximumEntries {
                let victims = entries.sorted { $0.value.expiresAt < $1.value.expiresAt }
                    .prefix(entries.count - maximumEntries).map(\.key)
                for victim in victims where victim != key { entries[victim] = nil }
            }
        }
    }

    public func delete(_ keys: [String]) async throws {
        entries.withLock { entries in
            for key in keys { entries[key] = nil }
        }
    }
}

/// Cache in Redis: `GET`, `SET … PX`, `DEL`, under a key prefix.
public struct RedisCache: Cache {
    let client: RedisClient
    let prefix: String

    public init(client: RedisClient, prefix: String = "leaderboard:cache:") {
        self.client = client
        self.prefix = prefix
    }

    public func get(_ key: String) async throws -> [UInt8]? {
        try await client.send(["GET", RedisArgument(prefix + key)]).bytes
    }

    public func set(_ key: String, value: [UInt8], ttl: Duration) async throws {
        guard ttl.milliseconds > 0 else { return try await delete([key]) }
        try await client.send(
            ["SET", RedisArgument(prefix + key), RedisArgument(bytes: value), "PX", RedisArgument(ttl.milliseconds)]
        ).expectOK("SET")
    }

    public func delete(_ keys: [String]) async throws {
        guard !keys.isEmpty else { return }
        try await client.send(["DEL"] + keys.map { RedisArgument(prefix + $0) })
    }
}
