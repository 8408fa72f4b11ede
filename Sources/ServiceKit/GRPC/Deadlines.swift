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

/// Carries the work's context on every outgoing call: the operator key being forwarded
/// (``OperatorContext/forwardedKey``, as `authorization`), the current ``RequestID`` as `x-request-id` (so the serving
/// side logs under the same id), and the current ``RequestDeadline`` as the call's `grpc-timeout`, so the serving
/// side stops working for a request nobody waits for any more (its handler is cancelled with DEADLINE_EXCEEDED). A
/// call whose deadline has already passed fails at once, without reaching the network.
public struct CallContextClientInterceptor: ClientInterceptor {
    public init() {}

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingClientRequest<Input>,
        context: ClientContext,
        next: (StreamingClientRequest<Input>, ClientContext) async throws -> StreamingClientResponse<Output>
    ) async throws -> StreamingClientResponse<Output> {
        var request = request
        if let key = OperatorContext.forwardedKey,
            request.metadata[stringValues: InternalTrust.authorizationKey].first(where: { _ in true }) == nil
        {
            request.metadata.addString("Bearer \(key)", forKey: InternalTrust.authorizationKey)
        }
        if let id = RequestID.current,
            request.metadata[stringValues: RequestID.metadataKey].first(where: { _ in true }) == nil
        {
            request.metadata.addString(id, forKey: RequestID.metadataKey)
        }
        guard let deadline = RequestDeadline.current,
            request.metadata[stringValues: "grpc-timeout"].first(where: { _ in true }) == nil
        else { return try await next(request, context) }
        let remaining = ContinuousClock.now.duration(to: deadline)
        let milliseconds =
            remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000
        guard milliseconds > 0 else {
            throw RPCError(code: .deadlineExceeded, message: "the request's deadline passed before this call")
        }
        // grpc-timeout allows at most eight digits; a longer remaining time is sent as whole seconds.
        request.metadata.addString(
            milliseconds < 100_000_000 ? "\(milliseconds)m" : "\(min(remaining.components.seconds, 99_999_999))S",
            forKey: "grpc-timeout")
        return try await next(request, context)
    }
}

/// Runs each served call under the caller's context: its request id (`x-request-id`, when sane), so every log line
/// the call writes carries it (``RequestID/metadataProvider``), and its `grpc-timeout`: when that passes, the handler's
/// task is cancelled and the caller gets DEADLINE_EXCEEDED — database queries and other awaits stop instead of working
/// for a caller who has gone. Both hold for streamed responses too.
public struct CallContextServerInterceptor: ServerInterceptor {
    public init() {}

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let sent = request.metadata[stringValues: RequestID.metadataKey].first(where: { _ in true })
        let id = sent.map(RequestID.accept)
        let deadline = request.metadata[stringValues: "grpc-timeout"].first(where: { _ in true })
            .flatMap(Self.timeout).map { ContinuousClock.now + $0 }
        guard id != nil || deadline != nil else { return try await next(request, context) }
        var response = try await RequestID.$current.withValue(id) {
            try await Self.run({ try await next(request, context) }, until: deadline)
        }
        if case .success(var contents) = response.accepted {
            let producer = contents.producer
            contents.producer = { writer in
                try await RequestID.$current.withValue(id) {
                    try await Self.run({ try await producer(writer) }, until: deadline)
                }
            }
            response.accepted = .success(contents)
        }
        return response
    }

    /// Runs `work`, cancelling it and throwing DEADLINE_EXCEEDED if `deadline` passes first.
    static func run<T: Sendable>(_ work: @Sendable () async throws -> T, until deadline: ContinuousClock.Instant?)
        async throws -> T
    {
        guard let deadline else { return try await work() }
        return try await withoutActuallyEscaping(work) { work in
            try await withThrowingTaskGroup(of: T.self) { group in
                group.addTask { try await work() }
                group.addTask {
                    try await Task.sleep(until: deadline, clock: .continuous)
                    throw RPCError(code: .deadlineExceeded, message: "the caller's deadline passed")
                }
                defer { group.cancelAll() }
                guard let first = try await group.next() else { throw CancellationError() }
                return first
            }
        }
    }

    /// Parses a `grpc-timeout` value: up to eight digits and a unit (H, M, S, m, u, n).
    static func timeout(_ text: String) -> Duration? {
        guard let unit = text.last, let amount = Int64(text.dropLast()), amount >= 0, text.count <= 9 else {
            return nil
        }
        switch unit {
        case "H": return .seconds(amount * 3600)
        case "M": return .seconds(amount * 60)
        case "S": return .seconds(amount)
        case "m": return .milliseconds(amount)
        case "u": return .microseconds(amount)
        case "n": return .nanoseconds(amount)
        default: return nil
        }
    }
}
