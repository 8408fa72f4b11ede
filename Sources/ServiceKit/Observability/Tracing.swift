public import GRPCCore
public import Logging
import OTel
public import ServiceLifecycle
import Synchronization
public import Tracing

/// Tracing settings (docs/OPERATIONS.md, "Traces"). Off unless an OTLP endpoint is set.
public enum TracingSettings {
    public static let endpoint = Setting(
        "otlp-endpoint",
        help: "OTLP/gRPC collector (http://host:4317) that receives this process's traces. Empty: no tracing.")
    public static let sampleRatio = Setting(
        "trace-sample-ratio", default: "1",
        help: "Share of new traces recorded (0 to 1); a call inside a trace follows its caller's decision.")
    public static let serviceName = Setting(
        "trace-service-name",
        help: "service.name of this process's spans. Empty: leaderboard, or leaderboard-<target> for one target.")

    public static let all = [endpoint, sampleRatio, serviceName]
}

/// Starts the OpenTelemetry tracer when an endpoint is configured: spans for every HTTP request (the gateway's
/// tracing middleware), every gRPC call on both sides (``RPCTracingClientInterceptor``,
/// ``RPCTracingServerInterceptor``, W3C `traceparent` in the metadata), and every SQL statement and Redis command
/// made inside a trace. Returns the exporter's service, to run first and stop last; nil when tracing is off.
public enum TracingSetup {
    /// True once a tracer is bootstrapped: until then the gateway adds no tracing middleware and the interceptors
    /// pass calls through, so a process without tracing pays nothing for it.
    public static var isEnabled: Bool { enabled.load(ordering: .relaxed) }
    private static let enabled = Atomic<Bool>(false)

    public static func bootstrap(_ configuration: LeaderboardConfiguration, version: String, logger: Logger) throws
        -> (any Service)?
    {
        guard let endpoint = configuration.otlpEndpoint else { return nil }
        var otel = OTel.Configuration.default
        otel.serviceName = configuration.traceServiceName
        otel.resourceAttributes = ["service.version": version]
        otel.diagnosticLogger = .custom(logger.with("component", "otel"))
        otel.propagators = [.traceContext]
        otel.metrics.enabled = false
        otel.logs.enabled = false
        otel.traces.enabled = true
        otel.traces.exporter = .otlp
        otel.traces.otlpExporter.protocol = .grpc
        otel.traces.otlpExporter.endpoint = endpoint
        otel.traces.sampler =
            .parentBasedTraceIDRatio(ratio: configuration.traceSampleRatio) ?? .parentBasedAlwaysOn
        // Spans leave within a second: a trace is visible while its request is still remembered.
        otel.traces.batchSpanProcessor.scheduleDelay = .seconds(1)
        let service = try OTel.bootstrap(configuration: otel)
        enabled.store(true, ordering: .relaxed)
        return service
    }

    /// Runs `body` in a client span named `name` when the current task is inside a trace; otherwise just runs it,
    /// so background work (index checks, retention) does not start a trace of its own for every statement, and
    /// nothing about the span (its name, its attributes) is computed.
    @inlinable
    public static func withChildSpan<T>(
        _ name: @autoclosure () -> String, attributes: (inout SpanAttributes) -> Void, _ body: () async throws -> T
    ) async rethrows -> T {
        guard isEnabled, ServiceContext.current != nil else { return try await body() }
        return try await withSpan(name(), ofKind: .client) { span in
            span.updateAttributes(attributes)
            return try await body()
        }
    }
}

/// gRPC metadata as a carrier of W3C trace context.
struct MetadataInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout Metadata) {
        carrier.replaceOrAddString(value, forKey: key)
    }
}

struct MetadataExtractor: Extractor {
    func extract(key: String, from carrier: Metadata) -> String? {
        carrier[stringValues: key].first(where: { _ in true })
    }
}

/// Ends a span once, however many ways a call finishes.
final class SpanEnding: Sendable {
    let span: any Span
    private let ended = Atomic<Bool>(false)

    init(_ span: any Span) { self.span = span }

    func end(_ error: (any Error)?) {
        guard !ended.exchange(true, ordering: .relaxed) else { return }
        if let error {
            span.attributes["rpc.grpc.status_code"] = RPCStatusName.of(error)
            span.recordError(error)
            span.setStatus(SpanStatus(code: .error))
        } else {
            span.attributes["rpc.grpc.status_code"] = "OK"
        }
        span.end()
    }

    static func start(_ descriptor: MethodDescriptor, context: ServiceContext, kind: SpanKind) -> SpanEnding {
        let span = InstrumentationSystem.tracer.startSpan(
            "\(descriptor.service.fullyQualifiedService)/\(descriptor.method)", context: context, ofKind: kind)
        span.attributes["rpc.system"] = "grpc"
        span.attributes["rpc.service"] = descriptor.service.fullyQualifiedService
        span.attributes["rpc.method"] = descriptor.method
        return SpanEnding(span)
    }
}

/// A client span per outgoing call, its context sent as `traceparent`; ended with the call's last message.
public struct RPCTracingClientInterceptor: ClientInterceptor {
    public init() {}

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingClientRequest<Input>,
        context: ClientContext,
        next: (StreamingClientRequest<Input>, ClientContext) async throws -> StreamingClientResponse<Output>
    ) async throws -> StreamingClientResponse<Output> {
        guard TracingSetup.isEnabled, let parent = ServiceContext.current else {
            return try await next(request, context)
        }
        let call = SpanEnding.start(context.descriptor, context: parent, kind: .client)
        var request = request
        InstrumentationSystem.instrument.inject(call.span.context, into: &request.metadata, using: MetadataInjector())
        return try await CallObservation.call(
            request: request, context: context, next: next, scope: call.span.context, finish: call.end)
    }
}

/// A server span per served call, a child of the caller's span when the call carries `traceparent`; the handler
/// runs inside it, so its SQL statements, Redis commands and onward calls join the trace.
public struct RPCTracingServerInterceptor: ServerInterceptor {
    public init() {}

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        guard TracingSetup.isEnabled else { return try await next(request, context) }
        var parent = ServiceContext.current ?? .topLevel
        InstrumentationSystem.instrument.extract(request.metadata, into: &parent, using: MetadataExtractor())
        let call = SpanEnding.start(context.descriptor, context: parent, kind: .server)
        return try await CallObservation.serve(
            request: request, context: context, next: next, scope: call.span.context, finish: call.end)
    }
}
