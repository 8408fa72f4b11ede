import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import LeaderboardAPI
import Logging
import ServiceKit
import SwiftProtobuf

extension HTTPField.Name {
    static let deviceID = Self("X-Device-ID")!
    static let requestTime = Self("X-Request-Time")!
    static let nonce = Self("X-Nonce")!
    static let signature = Self("X-Signature")!
    static let signatureVersion = Self("X-Signature-Version")!
}

/// Applied to every route marked signed: collects the body, has AuthService verify the signature (v1 or v2, see
/// docs/SIGNING.md) and consume the nonce, spends one unit of the device's `signed` budget, and puts the device on
/// the context. The body stays readable for the route.
struct DeviceSignatureMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    let auth: AuthClient
    let policy: RateLimitPolicy
    let rateLimiter: any RateLimiter
    let clock: any WallClock
    let maximumBodySize: Int

    init(auth: AuthClient, dependencies: GatewayDependencies, maximumBodySize: Int = 1 << 20) {
        self.auth = auth
        self.policy = dependencies.policies.signed
        self.rateLimiter = dependencies.rateLimiter
        self.clock = dependencies.clock
        self.maximumBodySize = maximumBodySize
    }

    func handle(
        _ request: Request,
        context: GatewayRequestContext,
        next: (Request, GatewayRequestContext) async throws -> Response
    ) async throws -> Response {
        var request = request
        let limit = maximumBodySize
        let machineID = try await verifyDeviceSignature(
            request, auth: auth,
            missing: "This route needs a signed request: X-Device-ID, X-Request-Time, X-Nonce and X-Signature."
        ) { try await collectBody(&request, limit: limit) }
        try await rateLimiter.enforce(
            policy, key: "device:\(machineID)", clock: clock,
            detail: "This device is over its limit of \(policy.limit) signed requests per \(policy.periodText).")
        var context = context
        context.device = AuthenticatedDevice(machineID: machineID)
        context.logger[metadataKey: "machine_id"] = "\(machineID)"
        return try await next(request, context)
    }
}

/// Has AuthService verify the signature headers of `request` over its body (v1 or v2, docs/SIGNING.md) and consume
/// the nonce; returns the verified device's machine id. Missing headers are a 401 saying `missing`; the body is read
/// (by `body`) only once the headers are complete.
func verifyDeviceSignature(
    _ request: Request, auth: AuthClient, missing: String, body readBody: () async throws -> ByteBuffer
) async throws -> String {
    let headers = request.headers
    guard let deviceID = headers[.deviceID], let time = headers[.requestTime], let nonce = headers[.nonce],
        let signature = headers[.signature]
    else {
        throw Problem(.unauthorized, code: "missing_signature", detail: missing)
    }
    let version: Leaderboard_Auth_V1_SignatureVersion
    switch headers[.signatureVersion] {
    case nil, "1": version = .v1
    case "2": version = .v2
    default:
        throw Problem(
            .badRequest, code: "unsupported_signature_version", detail: "X-Signature-Version must be 1 or 2.")
    }
    let body = try await readBody()
    let (path, query) = splitTarget(request.head.path ?? "/")
    let response = try await auth.verifySignature(
        .with {
            $0.version = version
            $0.machineID = deviceID
            $0.requestTime = time
            $0.nonce = nonce
            $0.signature = signature
            $0.method = request.method.rawValue
            $0.path = path
            $0.query = query
            if version == .v1 {
                $0.body = Data(body.readableBytesView)
            } else {
                $0.bodySha256 = Data(SHA256.hash(data: body.readableBytesView))
            }
        })
    return response.device.machineID
}

/// Splits a request target into its path and query exactly as sent (no decoding), the query without its `?`.
func splitTarget(_ target: String) -> (path: String, query: String) {
    guard let mark = target.firstIndex(of: "?") else { return (target, "") }
    return (String(target[..<mark]), String(target[target.index(after: mark)...]))
}

/// Reads the whole body, keeping it on the request; too large is a 413 problem (at once when `Content-Length`
/// says so, before anything is read).
func collectBody(_ request: inout Request, limit: Int) async throws -> ByteBuffer {
    if let declared = request.headers[.contentLength].flatMap(Int.init), declared > limit {
        throw Problem(.contentTooLarge, code: "payload_too_large", detail: "The body is larger than \(limit) bytes.")
    }
    do {
        return try await request.collectBody(upTo: limit)
    } catch let error as HTTPError where error.status == .contentTooLarge {
        throw Problem(.contentTooLarge, code: "payload_too_large", detail: "The body is larger than \(limit) bytes.")
    }
}
