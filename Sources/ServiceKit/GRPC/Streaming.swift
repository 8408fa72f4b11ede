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
