public import GRPCCore
import ServiceLifecycle

/// Runs the body of a long server stream (a watch) until it ends by itself, the client goes away, or the server
/// shuts down gracefully — whichever comes first; the body is then cancelled.
///
/// gRPC signals a cancelled RPC through the context, not by cancelling the handler's task, and a graceful shutdown
/// waits for open RPCs: a watch that only waits for events would otherwise outlive both.
public func untilStreamEnds(
    _ context: ServerContext, _ body: @escaping @Sendable () async throws -> Void
) async throws {
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await body() }
        group.addTask { try? await context.cancellation.cancelled }
        group.addTask { try? await gracefulShutdown() }
        defer { group.cancelAll() }
        try await group.next()
    }
}

/// Streams stored items in sequence order for as long as the RPC lasts (``untilStreamEnds``).
///
/// `deliver` sends what is stored after a position and returns the new position; it runs at once, whenever a bus
/// message passes `isRelevant`, and every `poll` — the bus only wakes the stream, so a lost message costs one poll
/// and every replica sends the same sequence.
public func followStored(
    _ context: ServerContext, after start: UInt64, subscription: EventSubscription, poll: Duration,
    isRelevant: @escaping @Sendable ([UInt8]) -> Bool,
    deliver: @escaping @Sendable (_ after: UInt64) async throws -> UInt64
) async throws {
    try await untilStreamEnds(context) {
        let (wakeups, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await payload in subscription where isRelevant(payload) { wake.yield() }
            }
            group.addTask {
                while true {
                    try await Task.sleep(for: poll)
                    wake.yield()
                }
            }
            var position = start
            wake.yield()
            for await _ in wakeups { position = try await deliver(position) }
            group.cancelAll()
        }
    }
}
