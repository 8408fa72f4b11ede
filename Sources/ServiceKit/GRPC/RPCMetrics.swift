public import GRPCCore
import Synchronization

/// Counts and times every served call by service, method and final status (`grpc_server_handled_total`,
/// `grpc_server_handling_seconds`, `grpc_server_in_flight`). A streamed response is timed until its last message.
public struct RPCMetricsServerInterceptor: ServerInterceptor {
    public init() {}

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let call = RPCCallMetrics(side: .server, descriptor: context.descriptor)
        return try await CallObservation.serve(request: request, context: context, next: next, finish: call.finish)
    }
}

/// Counts and times every outgoing call by service, method and final status (`grpc_client_handled_total`,
/// `grpc_client_handling_seconds`): the caller's view, which includes the network and the callee's queueing.
public struct RPCMetricsClientInterceptor: ClientInterceptor {
    public init() {}

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingClientRequest<Input>,
        context: ClientContext,
        next: (StreamingClientRequest<Input>, ClientContext) async throws -> StreamingClientResponse<Output>
    ) async throws -> StreamingClientResponse<Output> {
        let call = RPCCallMetrics(side: .client, descriptor: context.descriptor)
        return try await CallObservation.call(request: request, context: context, next: next, finish: call.finish)
    }
}

/// One call in progress: counted in flight from creation, finished exactly once.
final class RPCCallMetrics: Sendable {
    enum Side: String { case server, client }

    let side: Side
    let service: String
    let method: String
    let start = ContinuousClock.now
    private let finished = Atomic<Bool>(false)

    init(side: Side, descriptor: MethodDescriptor) {
        self.side = side
        service = descriptor.service.fullyQualifiedService
        method = descriptor.method
        if side == .server { MetricFamilies.grpcServerInFlight.gauge(service).increment() }
    }

    func finish(_ error: (any Error)?) {
        guard !finished.exchange(true, ordering: .relaxed) else { return }
        let code = error.map(RPCStatusName.of) ?? "OK"
        let elapsed = ContinuousClock.now - start
        switch side {
        case .server:
            MetricFamilies.grpcServerInFlight.gauge(service).decrement()
            MetricFamilies.grpcServerHandled.counter(service, method, code).increment()
            MetricFamilies.grpcServerSeconds.histogram(service, method).record(elapsed)
        case .client:
            MetricFamilies.grpcClientHandled.counter(service, method, code).increment()
            MetricFamilies.grpcClientSeconds.histogram(service, method).record(elapsed)
        }
    }
}

/// gRPC's canonical status names, for metric labels.
public enum RPCStatusName {
    /// The canonical upper-case name of the status an error ends a call with (gRPC's own for an unknown error).
    public static func of(_ error: any Error) -> String {
        let code: RPCError.Code =
            if let error = error as? RPCError {
                error.code
            } else if let error = error as? any RPCErrorConvertible {
                error.rpcErrorCode
            } else if error is CancellationError {
                .cancelled
            } else {
                .unknown
            }
        return names[code.rawValue] ?? "UNKNOWN"
    }

    static let names = [
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
        "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
        "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
    ].enumerated().reduce(into: [Int: String]()) { $0[$1.offset] = $1.element }
}
