import HTTPTypes
public import Hummingbird
import Logging
import ServiceKit
import UntrustedInput

extension HTTPField.Name {
    static let requestID = Self("X-Request-ID")!  // a valid token, checked by the initializer once
}

/// Gives every request an id (the client's `X-Request-ID` when sane), puts it in the logger metadata and echoes it
/// on the response. Outermost, so even error responses carry it.
public struct RequestIDMiddleware: RouterMiddleware {
    public typealias Context = GatewayRequestContext

    public init() {}

    public func handle(
        _ request: Request,
        context: GatewayRequestContext,
        next: (Request, GatewayRequestContext) async throws -> Response
    ) async throws -> Response {
        var context = context
        context.requestID = RequestID.accept(request.headers[.requestID])
        context.logger[metadataKey: "request_id"] = "\(context.requestID)"
        // Also as a task-local: gRPC calls carry it on, and service-side log lines show it.
        var response = try await RequestID.$current.withValue(context.requestID) { try await next(request, context) }
        response.headers[.requestID] = context.requestID
        return response
    }
}

/// Establishes who the client is: the peer, or — when the peer is a trusted proxy — the address its forwarding header
/// names (docs/SECURITY.md "Client addresses"); rate limits count IPv6 clients by their /64.
struct ClientAddressMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    let resolver: ClientAddressResolver

    func handle(
        _ request: Request,
        context: GatewayRequestContext,
        next: (Request, GatewayRequestContext) async throws -> Response
    ) async throws -> Response {
        guard let address = resolver.resolve(peer: context.clientIP, fields: request.headers) else {
            return try await next(request, context)
        }
        var context = context
        context.clientIP = address.description
        context.clientKey = address.limitKey
        context.logger[metadataKey: "client"] = "\(address)"
        return try await next(request, context)
    }
}

extension ClientAddressResolver {
    /// The client behind `peer`, from the forwarding header among `fields` (``resolve(peer:headerValues:)``).
    func resolve(peer: String, fields: HTTPFields) -> IPAddress? {
        let values = HTTPField.Name(header.rawValue).map { fields[values: $0] } ?? []
        return resolve(peer: peer, headerValues: values)
    }
}

/// Turns every error into `application/problem+json`; a 5xx never leaks internals, but is logged in full.
public struct ProblemMiddleware: RouterMiddleware {
    public typealias Context = GatewayRequestContext

    public init() {}

    public func handle(
        _ request: Request,
        context: GatewayRequestContext,
        next: (Request, GatewayRequestContext) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let problem = Problem.from(error)
            if problem.status.code >= 500 {
                context.logger.error("request failed", metadata: ["error": "\(String(reflecting: error))"])
            }
            return problem.response(requestID: context.requestID, instance: request.uri.path)
        }
    }
}

/// One access-log line per request: method, path, status, duration.
public struct AccessLogMiddleware: RouterMiddleware {
    public typealias Context = GatewayRequestContext

    public init() {}

    public func handle(
        _ request: Request,
        context: GatewayRequestContext,
        next: (Request, GatewayRequestContext) async throws -> Response
    ) async throws -> Response {
        let start = ContinuousClock.now
        let response = try await next(request, context)
        let elapsed = ContinuousClock.now - start
        context.logger.info(
            "access",
            metadata: [
                "method": "\(request.method)", "path": "\(request.uri.path)", "status": "\(response.status.code)",
                "duration_ms": "\(Double(elapsed.microseconds) / 1000)",
            ])
        return response
    }
}

/// Drops the trace context a public client sends (`traceparent`, `tracestate`, `baggage`): every trace starts at
/// the gateway, so nobody outside chooses what is recorded (a sampled flag on every request would record them all)
/// or attaches our spans to a trace of theirs.
public struct UntrustedTraceContextMiddleware: RouterMiddleware {
    public typealias Context = GatewayRequestContext
    static let names = ["traceparent", "tracestate", "baggage"].compactMap { HTTPField.Name($0) }

    public init() {}

    public func handle(
        _ request: Request,
        context: GatewayRequestContext,
        next: (Request, GatewayRequestContext) async throws -> Response
    ) async throws -> Response {
        guard Self.names.contains(where: { request.headers[$0] != nil }) else {
            return try await next(request, context)
        }
        var head = request.head
        for name in Self.names { head.headerFields[name] = nil }
        return try await next(Request(head: head, body: request.body), context)
    }
}
