import CompressNIO
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOPosix
import ServiceKit
import Synchronization

/// CORS for the configured origins (`--cors-origins`): preflights are answered here, before routing; other
/// responses to an allowed origin name it. Requests from other origins get no CORS headers (the browser then keeps
/// the answer from the page); nothing is refused server-side, since CORS protects browsers, not the API.
struct CORSPolicyMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    let origins: [String]

    static let allowedHeaders = [
        "Content-Type", "Authorization", "If-None-Match", "Idempotency-Key", "X-Request-ID", "X-Device-ID",
        "X-Request-Time", "X-Nonce", "X-Signature", "X-Signature-Version",
    ].joined(separator: ", ")
    static let exposedHeaders = [
        "ETag", "X-Request-ID", "Retry-After", "RateLimit", "RateLimit-Policy", "Idempotent-Replayed", "X-Cache",
        "Content-Range",
    ].joined(separator: ", ")

    func handle(
        _ request: Request,
        context: GatewayRequestContext,
        next: (Request, GatewayRequestContext) async throws -> Response
    ) async throws -> Response {
        guard !origins.isEmpty, let origin = request.headers[.origin], allows(origin) else {
            return try await next(request, context)
        }
        var headers: HTTPFields = [.accessControlAllowOrigin: origins == ["*"] ? "*" : origin]
        headers[.vary] = "Origin"
        if request.method == .options, request.headers[.accessControlRequestMethod] != nil {
            headers[.accessControlAllowMethods] = "GET, HEAD, POST, PUT, DELETE, OPTIONS"
            headers[.accessControlAllowHeaders] = Self.allowedHeaders
            headers[.accessControlMaxAge] = "600"
            return Response(status: .noContent, headers: headers)
        }
        var response = try await next(request, context)
        headers[.accessControlExposeHeaders] = Self.exposedHeaders
        // The answer's own `Vary` (Accept-Encoding on cached and compressed answers) stays, with Origin added.
        if let vary = response.headers[.vary] { headers[.vary] = vary + ", Origin" }
        for field in headers { response.headers[field.name] = field.value }
        return response
    }

    private func allows(_ origin: String) -> Bool { origins.contains("*") || origins.contains(origin) }
}

/// gzip for JSON and CSV bodies of a known length of at least 1 KiB, when the client accepts it. Streamed bodies
/// (exports, downloads) pass unchanged: they are either already compact or ciphertext, which does not compress.
struct CompressionMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    static let smallest = 1024
    static let largest = 8 << 20

    func handle(
        _ request: Request,
        context: GatewayRequestContext,
        next: (Request, GatewayRequestContext) async throws -> Response
    ) async throws -> Response {
        var response = try await next(request, context)
        guard Self.accepts(request.headers[.acceptEncoding]), response.headers[.contentEncoding] == nil,
            let length = response.body.contentLength, (Self.smallest...Self.largest).contains(length),
            let type = response.headers[.contentType], Self.compressible(type)
        else { return response }
        var plain = ByteBuffer(bytes: try await response.body.collect(upTo: length))
        let compressed = try plain.compress(with: .gzip())
        response.headers[.contentEncoding] = "gzip"
        response.headers[.contentLength] = "\(compressed.readableBytes)"
        if let vary = response.headers[.vary], !vary.localizedCaseInsensitiveContains("accept-encoding") {
            response.headers[.vary] = vary + ", Accept-Encoding"
        } else if response.headers[.vary] == nil {
            response.headers[.vary] = "Accept-Encoding"
        }
        response.body = ResponseBody(byteBuffer: compressed)
        return response
    }

    static func compressible(_ contentType: String) -> Bool {
        let type = contentType.lowercased()
        return type.hasPrefix("application/json") || type.hasPrefix("application/problem+json")
            || type.hasPrefix("text/")
    }

    /// Whether `Accept-Encoding` lists gzip (or `*`) without `q=0`.
    static func accepts(_ header: String?) -> Bool {
        guard let header else { return false }
        return header.split(separator: ",").contains { item in
            let parts = item.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard let coding = parts.first, coding == "gzip" || coding == "*" else { return false }
            return !parts.dropFirst().contains { $0 == "q=0" || $0 == "q=0.0" || $0 == "q=0.00" || $0 == "q=0.000" }
        }
    }
}

/// Refuses a URL whose path or query holds an encoded NUL (`%00`) with 400 `invalid_character`: no identifier,
/// version or filter can contain one, and PostgreSQL cannot store or compare it in text, which would otherwise surface
/// as a 500 from whichever service the value reached (found by the schemathesis run).
struct NULCharacterMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    func handle(
        _ request: Request, context: GatewayRequestContext,
        next: (Request, GatewayRequestContext) async throws -> Response
    ) async throws -> Response {
        if request.uri.description.range(of: "%00", options: .caseInsensitive) != nil {
            throw Problem(.badRequest, code: "invalid_character", detail: "The URL must not contain a NUL (%00).")
        }
        return try await next(request, context)
    }
}

/// Gives each request `timeout` to produce its response head: the deadline travels with every gRPC call made for
/// it (`grpc-timeout`, so services stop working for nobody), and when it passes the request is cancelled and answered
/// 504 `deadline_exceeded`. Streamed bodies (downloads, exports) run past it once their first bytes are ready.
///
/// The request runs in one task of its own, and the deadline is a timer on an event loop that cancels it: no second
/// task sleeping beside every request (that race cost about 12 % of a trivial request's time, docs/PERFORMANCE-NOTES
/// "P1"). The answer waits for the request's task to end, as before: a handler that ignores cancellation finishes
/// its work first, and what it then produces (a write that committed) is its answer.
struct DeadlineMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    let timeout: Duration

    /// Set by the timer when it fires.
    private final class Expiry: Sendable {
        let passed = Atomic<Bool>(false)
    }

    func handle(
        _ request: Request,
        context: GatewayRequestContext,
        next: (Request, GatewayRequestContext) async throws -> Response
    ) async throws -> Response {
        let deadline = ContinuousClock.now + timeout
        let timeout = timeout
        return try await RequestDeadline.$current.withValue(deadline) {
            try await withoutActuallyEscaping(next) { next in
                // The task is awaited before this returns, so `next` never outlives this call.
                nonisolated(unsafe) let next = next
                let work = Task { try await next(request, context) }
                let expiry = Expiry()
                let timer = NIOSingletons.posixEventLoopGroup.any().scheduleTask(
                    in: .microseconds(timeout.microseconds)
                ) {
                    expiry.passed.store(true, ordering: .relaxed)
                    work.cancel()
                }
                defer { timer.cancel() }
                do {
                    return try await withTaskCancellationHandler {
                        try await work.value
                    } onCancel: {
                        work.cancel()
                    }
                } catch  where expiry.passed.load(ordering: .relaxed) {
                    throw Problem(
                        .gatewayTimeout, code: "deadline_exceeded",
                        detail: "The request took longer than \(timeout.milliseconds) ms; try again.")
                }
            }
        }
    }
}
