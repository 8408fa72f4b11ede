public import GRPCCore

/// The deadline of the work in progress (e.g. one REST request at the gateway), carried as a task-local so every
/// gRPC call made on its behalf inherits it without each call site passing options.
public enum RequestDeadline {
    @TaskLocal public static var current: ContinuousClock.Instant?

    /// Runs `body` without a deadline: for work that outlives the request's head, such as a streamed body.
    public static func lifted<T: Sendable>(_ body: () async throws -> T) async rethrows -> T {
        try await $current.withValue(nil) { try await body() }
    }
}

/// Sends the current ``RequestDeadline`` as the call's `grpc-timeout`, so the serving side stops working for a
/// request nobody waits for any more (its handler is cancelled with DEADLINE_EXCEEDED). A call whose deadline has
/// already passed fails at once, without reaching the network.
public struct DeadlinePropagationInterceptor: ClientInterceptor {
    public init() {}

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingClientRequest<Input>,
        context: ClientContext,
        next: (StreamingClientRequest<Input>, ClientContext) async throws -> StreamingClientResponse<Output>
    ) async throws -> StreamingClientResponse<Output> {
        guard let deadline = RequestDeadline.current,
            request.metadata[stringValues: "grpc-timeout"].first(where: { _ in true }) == nil
        else { return try await next(request, context) }
        let remaining = ContinuousClock.now.duration(to: deadline)
        let milliseconds =
            remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000
        guard milliseconds > 0 else {
            throw RPCError(code: .deadlineExceeded, message: "the request's deadline passed before this call")
        }
        var request = request
        // grpc-timeout allows at most eight digits; a longer remaining time is sent as whole seconds.
        request.metadata.addString(
            milliseconds < 100_000_000 ? "\(milliseconds)m" : "\(min(remaining.components.seconds, 99_999_999))S",
            forKey: "grpc-timeout")
        return try await next(request, context)
    }
}
