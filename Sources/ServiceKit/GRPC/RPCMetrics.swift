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
    enum Side: Hashable { case server, client }

    let series: RPCMethodSeries
    let start = ContinuousClock.now
    private let finished = Atomic<Bool>(false)

    init(side: Side, descriptor: MethodDescriptor) {
        series = RPCMethodSeries.of(side, descriptor)
        series.inFlight?.increment()
    }

    func finish(_ error: (any Error)?) {
        guard !finished.exchange(true, ordering: .relaxed) else { return }
        series.inFlight?.decrement()
        series.handled(error.map(RPCStatusName.of) ?? "OK").increment()
        series.seconds.record(ContinuousClock.now - start)
    }
}

/// The series of one method on one side, made at its first call: a registry lookup checks and hashes every name and
/// label, too much to repeat several times on every call.
final class RPCMethodSeries: Sendable {
    let inFlight: MetricGauge?
    let seconds: MetricHistogram
    private let family: MetricFamily
    private let service: String
    private let method: String
    private let counters = Mutex<[String: MetricCounter]>([:])  // by status name; calls end concurrently

    private init(_ side: RPCCallMetrics.Side, _ descriptor: MethodDescriptor) {
        service = descriptor.service.fullyQualifiedService
        method = descriptor.method
        switch side {
        case .server:
            inFlight = MetricFamilies.grpcServerInFlight.gauge(service)
            seconds = MetricFamilies.grpcServerSeconds.histogram(service, method)
            family = MetricFamilies.grpcServerHandled
        case .client:
            inFlight = nil
            seconds = MetricFamilies.grpcClientSeconds.histogram(service, method)
            family = MetricFamilies.grpcClientHandled
        }
    }

    func handled(_ code: String) -> MetricCounter {
        counters.withLock { known in
            if let counter = known[code] { return counter }
            let counter = family.counter(service, method, code)
            known[code] = counter
            return counter
        }
    }

    private struct Key: Hashable {
        var side: RPCCallMetrics.Side
        var descriptor: MethodDescriptor
    }

    private static let known = Mutex<[Key: RPCMethodSeries]>([:])  // the methods of this process's services

    static func of(_ side: RPCCallMetrics.Side, _ descriptor: MethodDescriptor) -> RPCMethodSeries {
        known.withLock { known in
            let key = Key(side: side, descriptor: descriptor)
            if let series = known[key] { return series }
            let series = RPCMethodSeries(side, descriptor)
            known[key] = series
            return series
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
