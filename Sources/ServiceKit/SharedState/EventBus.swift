public import Logging
import NIOCore
import NIOPosix
public import ServiceLifecycle
import Synchronization

/// Publish/subscribe of opaque event payloads by channel name.
///
/// Delivery is at most once and best effort: a subscriber that falls more than its buffer behind loses the oldest
/// events, and a Redis reconnect loses what was published meanwhile. Events therefore carry sequence numbers, and
/// consumers that see a gap catch up from stored state (ARCHITECTURE.md §8).
public protocol EventBus: Sendable {
    func publish(_ payload: [UInt8], to channel: String) async throws
    /// Publishes payloads in order as one step (one round trip to Redis, however many there are).
    func publish(_ payloads: [[UInt8]], to channel: String) async throws
    /// Events published after this returns are delivered to the subscription until it is dropped or its task ends.
    func subscribe(to channel: String) async throws -> EventSubscription
}

/// A stream of payloads from one channel. Iterate it in a task; cancelling that task ends the subscription.
public struct EventSubscription: AsyncSequence, Sendable {
    public typealias Element = [UInt8]
    let stream: AsyncStream<[UInt8]>

    public func makeAsyncIterator() -> AsyncStream<[UInt8]>.AsyncIterator { stream.makeAsyncIterator() }
}

/// Local fan-out shared by both implementations: subscribers per channel, each with a bounded buffer.
final class SubscriberRegistry: Sendable {
    private struct State {
        var nextID = 0
        var subscribers: [String: [Int: AsyncStream<[UInt8]>.Continuation]] = [:]
    }

    private let state = Mutex(State())  // publishers and subscribers run on any task
    let bufferSize: Int
    /// Called with a channel name when its first subscriber arrives or its last one leaves.
    private let onFirst: @Sendable (String) async throws -> Void
    private let onLast: @Sendable (String) -> Void

    init(
        bufferSize: Int,
        onFirst: @escaping @Sendable (String) async throws -> Void = { _ in },
        onLast: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.bufferSize = bufferSize
        self.onFirst = onFirst
        self.onLast = onLast
    }

    func subscribe(to channel: String) async throws -> EventSubscription {
        let (stream, continuation) = AsyncStream<[UInt8]>.makeStream(bufferingPolicy: .bufferingNewest(bufferSize))
        let (id, isFirst) = state.withLock { state in
            let id = state.nextID
            state.nextID += 1
            let isFirst = state.subscribers[channel, default: [:]].isEmpty
            state.subscribers[channel, default: [:]][id] = continuation
            return (id, isFirst)
        }
        continuation.onTermination = { [weak self] _ in self?.drop(id, from: channel) }
        if isFirst {
            do {
                try await onFirst(channel)
            } catch {
                continuation.finish()
                throw error
            }
        }
        return EventSubscription(stream: stream)
    }

    func deliver(_ payload: [UInt8], to channel: String) {
        let continuations = state.withLock { Array(($0.subscribers[channel] ?? [:]).values) }
        for continuation in continuations { continuation.yield(payload) }
    }

    var channels: [String] { state.withLock { Array($0.subscribers.keys) } }

    func finishAll() {
        let all = state.withLock { state in
            defer { state.subscribers = [:] }
            return state.subscribers.values.flatMap(\.values)
        }
        for continuation in all { continuation.finish() }
    }

    private func drop(_ id: Int, from channel: String) {
        let wasLast = state.withLock { state -> Bool in
            guard state.subscribers[channel]?.removeValue(forKey: id) != nil else { return false }
            if state.subscribers[channel]?.isEmpty == true {
                state.subscribers[channel] = nil
                return true
            }
            return false
        }
        if wasLast { onLast(channel) }
    }
}

/// In-process event bus for the embedded configuration.
public final class InProcessEventBus: EventBus {
    private let registry: SubscriberRegistry

    public init(bufferSize: Int = 1024) {
        registry = SubscriberRegistry(bufferSize: bufferSize)
    }

    public func publish(_ payload: [UInt8], to channel: String) async throws {
        registry.deliver(payload, to: channel)
    }

    public func publish(_ payloads: [[UInt8]], to channel: String) async throws {
        for payload in payloads { registry.deliver(payload, to: channel) }
    }

    public func subscribe(to channel: String) async throws -> EventSubscription {
        try await registry.subscribe(to: channel)
    }
}

/// Event bus over Redis pub/sub: PUBLISH through the shared pool, one dedicated subscriber connection per process
/// that SUBSCRIBEs to channels with local subscribers and reconnects (and resubscribes) with backoff.
public final class RedisEventBus: EventBus, Service {
    private let client: RedisClient
    private let prefix: String
    private let logger: Logger
    private let link: SubscriberLink
    private let registry: SubscriberRegistry

    public init(client: RedisClient, prefix: String = "leaderboard:events:", bufferSize: Int = 1024, logger: Logger) {
        self.client = client
        self.prefix = prefix
        self.logger = logger
        let link = SubscriberLink(timeout: client.timeout)
        self.link = link
        registry = SubscriberRegistry(
            bufferSize: bufferSize,
            onFirst: { channel in try await link.send(["SUBSCRIBE", RedisArgument(prefix + channel)]) },
            onLast: { channel in link.sendWithoutReply(["UNSUBSCRIBE", RedisArgument(prefix + channel)]) }
        )
    }

    public func publish(_ payload: [UInt8], to channel: String) async throws {
        try await client.send(["PUBLISH", RedisArgument(prefix + channel), RedisArgument(bytes: payload)])
    }

    /// One script run per 500 payloads: a board writer's batch can carry thousands of events, and one PUBLISH each
    /// would be as many round trips.
    public func publish(_ payloads: [[UInt8]], to channel: String) async throws {
        for part in payloads.chunks(of: 500) {
            try await client.evaluate(
                Self.publishScript, keys: [prefix + channel], arguments: part.map { RedisArgument(bytes: $0) })
        }
    }

    static let publishScript = RedisScript(
        """
        for i = 1, #ARGV do redis.call('PUBLISH', KEYS[1], ARGV[i]) end
        return #ARGV
        """
    )

    public func subscribe(to channel: String) async throws -> EventSubscription {
        try await registry.subscribe(to: channel)
    }

    /// Keeps the subscriber connection alive until graceful shutdown.
    public func run() async throws {
        var backoff = Duration.milliseconds(100)
        let prefix = self.prefix
        let registry = self.registry
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                let subscriber = try await RedisConnection.connect(
                    to: client.url, timeout: client.timeout, group: client.group,
                    onPush: { channel, payload in
                        guard channel.hasPrefix(prefix) else { return }
                        registry.deliver(payload, to: String(channel.dropFirst(prefix.count)))
                    })
                // One SUBSCRIBE per channel: each answers with exactly one confirmation.
                for channel in registry.channels {
                    _ = try await subscriber.send(
                        ["SUBSCRIBE", RedisArgument(prefix + channel)], timeout: client.timeout)
                }
                link.attach(subscriber)
                backoff = .milliseconds(100)
                // closeFuture ignores cancellation: close the channel on cancellation and on shutdown alike.
                try await withTaskCancellationOrGracefulShutdownHandler {
                    try await subscriber.channel.closeFuture.get()
                } onCancelOrGracefulShutdown: {
                    subscriber.channel.close(promise: nil)
                }
                link.detach()
                if !Task.isShuttingDownGracefully {
                    logger.warning("redis event subscriber disconnected; reconnecting")
                }
            } catch {
                link.detach()
                logger.warning("redis event subscriber cannot connect", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(5))
            }
        }
        registry.finishAll()
        link.close()
    }
}

/// The current subscriber connection of a ``RedisEventBus``, and callers waiting for one.
final class SubscriberLink: Sendable {
    private struct State {
        var connection: RedisConnection?
        var waiters: [CheckedContinuation<RedisConnection, any Error>] = []
        var closed = false
    }

    private let state = Mutex(State())  // subscribe calls and the reconnect loop run concurrently
    let timeout: Duration

    init(timeout: Duration) {
        self.timeout = timeout
    }

    func attach(_ connection: RedisConnection) {
        let waiters = state.withLock { state in
            state.connection = connection
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: connection) }
    }

    func detach() {
        state.withLock { $0.connection = nil }
    }

    func close() {
        let waiters = state.withLock { state in
            state.closed = true
            state.connection = nil
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(throwing: RedisClientError(.connectionClosed, "event bus stopped")) }
    }

    /// Sends on the current connection, waiting for the reconnect loop to provide one.
    func send(_ arguments: [RedisArgument]) async throws {
        let connection: RedisConnection = try await withCheckedThrowingContinuation { continuation in
            let ready = state.withLock { state -> Result<RedisConnection, any Error>? in
                if state.closed { return .failure(RedisClientError(.connectionClosed, "event bus stopped")) }
                if let connection = state.connection, connection.isActive { return .success(connection) }
                state.waiters.append(continuation)
                return nil
            }
            if let ready { continuation.resume(with: ready) }
        }
        _ = try await connection.send(arguments, timeout: timeout)
    }

    /// Sends without awaiting the confirmation (used from synchronous unsubscribe paths).
    func sendWithoutReply(_ arguments: [RedisArgument]) {
        guard let connection = state.withLock({ $0.connection }) else { return }
        _ = connection.write(arguments)  // nobody waits for an UNSUBSCRIBE confirmation
    }
}

/// The event-bus channels the services publish on; every publisher and subscriber names them from here.
public enum EventChannels {
    /// RankingService board events (JSON `BoardEvent`).
    public static let ranking = "leaderboard.ranking.events"
    /// RankingService rebuilt boards from the database (JSON `{"version": …}`, empty for all): cached boards are stale.
    public static let rankIndexRebuilt = "leaderboard.ranking.rebuilt"
    /// InteractionService reaction and comment counts of a record (JSON).
    public static let interactionCounts = "leaderboard.interaction.events"
    /// InteractionService "a machine has a new notification" wake-ups (JSON).
    public static let notifications = "leaderboard.interaction.notifications"
    /// DatasetService version changes (protobuf `DatasetEvent`).
    public static let datasets = "leaderboard.dataset.events"
}
