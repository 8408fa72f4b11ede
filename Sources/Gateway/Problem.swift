import Foundation
public import GRPCCore
public import HTTPTypes
public import Hummingbird
import Logging
import NIOCore
import ServiceKit
import UntrustedInput

/// An RFC 9457 problem: what every gateway error becomes on the wire (`application/problem+json`).
public struct Problem: Error, Sendable, Equatable {
    public let status: HTTPResponse.Status
    /// Stable snake_case code clients may branch on.
    public let code: String
    /// Human readable and safe to show; never internal details for a 5xx.
    public let detail: String
    /// Extra headers (e.g. `Retry-After`).
    public var headers: HTTPFields = [:]
    /// Extra string members of the problem object (e.g. `session_id`).
    public var members: [String: String] = [:]
    /// Every individual reason, when there are several (e.g. each failed validation rule): `code`, `detail`.
    public var reasons: [[String: String]] = []

    public init(_ status: HTTPResponse.Status, code: String, detail: String) {
        self.status = status
        self.code = code
        self.detail = detail
    }

    /// The one table mapping gRPC status codes to HTTP statuses (ARCHITECTURE.md §5).
    public static func httpStatus(for code: RPCError.Code) -> HTTPResponse.Status {
        switch code {
        case .invalidArgument, .failedPrecondition, .outOfRange: .badRequest
        case .unauthenticated: .unauthorized
        case .permissionDenied: .forbidden
        case .notFound: .notFound
        case .alreadyExists, .aborted: .conflict
        case .resourceExhausted: .tooManyRequests
        case .unimplemented: .notImplemented
        case .unavailable: .serviceUnavailable
        case .deadlineExceeded: .gatewayTimeout
        default: .internalServerError
        }
    }

    /// Any error thrown while handling a request, as a problem. Unknown errors become an opaque 500.
    public static func from(_ error: any Error) -> Problem {
        switch error {
        case let problem as Problem:
            return problem
        case let input as InputError:
            return Problem(inputStatus(input.code), code: input.code, detail: input.detail)
        case let rpc as RPCError:
            let status = httpStatus(for: rpc.code)
            // A service may say why it is unavailable (e.g. email_unavailable): its coded details are client-safe.
            // Every other 5xx, and an uncoded 503 from the transport, says nothing about internals. A 503 says when
            // to come back: an outage of a service or of Redis is usually a restart, seconds long.
            if rpc.code == .unavailable {
                var problem =
                    rpc.serviceErrorCode.map { Problem(status, code: $0, detail: rpc.message) }
                    ?? serverError(status, grpcCode: rpc.code)
                problem.headers[.retryAfter] = "5"
                return problem
            }
            if status.code >= 500 { return serverError(status, grpcCode: rpc.code) }
            return Problem(status, code: rpc.serviceErrorCode ?? defaultCode(status), detail: rpc.message)
        case let http as any HTTPResponseError:
            let status = http.status
            if status.code >= 500 { return Problem(status, code: defaultCode(status), detail: status.reasonPhrase) }
            let detail = (http as? HTTPError)?.body ?? status.reasonPhrase
            return Problem(status, code: defaultCode(status), detail: detail)
        default:
            return Problem(.internalServerError, code: "internal_error", detail: "An internal error occurred.")
        }
    }

    /// The status of a request that does not parse: 400, but for the codes whose status the protocol fixes.
    static func inputStatus(_ code: String) -> HTTPResponse.Status {
        switch code {
        case "missing_signature", "request_time_stale", "request_time_future": .unauthorized
        case "invalid_range", "range_not_satisfiable": .rangeNotSatisfiable
        case "part_too_large": .contentTooLarge
        default: .badRequest
        }
    }

    private static func serverError(_ status: HTTPResponse.Status, grpcCode: RPCError.Code) -> Problem {
        switch grpcCode {
        case .unavailable: Problem(status, code: "service_unavailable", detail: "A backend service is unavailable.")
        case .deadlineExceeded: Problem(status, code: "timeout", detail: "A backend service did not answer in time.")
        case .unimplemented: Problem(status, code: "not_implemented", detail: "This operation is not implemented.")
        default: Problem(status, code: "internal_error", detail: "An internal error occurred.")
        }
    }

    static func defaultCode(_ status: HTTPResponse.Status) -> String {
        switch status.code {
        case 400: "bad_request"
        case 401: "unauthenticated"
        case 403: "forbidden"
        case 404: "not_found"
        case 405: "method_not_allowed"
        case 409: "conflict"
        case 413: "payload_too_large"
        case 429: "rate_limited"
        default: status.code >= 500 ? "internal_error" : "bad_request"
        }
    }

    /// The response: `type` is a stable URN per code, `instance` the request path.
    public func response(requestID: String, instance: String) -> Response {
        var fields = headers
        fields[.contentType] = "application/problem+json"
        return Response(
            status: status, headers: fields, body: .init(byteBuffer: body(requestID: requestID, instance: instance)))
    }

    /// The problem+json document of ``response(requestID:instance:)``, for answers written below Hummingbird.
    func body(requestID: String, instance: String) -> ByteBuffer {
        var body: [String: Any] = [
            "type": "urn:leaderboard:problem:\(code)",
            "title": status.reasonPhrase,
            "status": status.code,
            "code": code,
            "detail": detail,
            "instance": instance,
            "request_id": requestID,
        ]
        for (name, value) in members { body[name] = value }
        if !reasons.isEmpty { body["reasons"] = reasons }
        return ByteBuffer(bytes: jsonData(body))
    }
}

/// A problem thrown where no ``ProblemMiddleware`` runs still goes out as problem+json with its status and headers.
extension Problem: HTTPResponseError {
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        response(requestID: "", instance: request.uri.path)
    }
}
