import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import LeaderboardAPI
import Logging
import ServiceKit
import SwiftProtobuf
import UntrustedInput

extension HTTPField.Name {
    static let deviceID = Self("X-Device-ID")!
    static let requestTime = Self("X-Request-Time")!
    static let nonce = Self("X-Nonce")!
    static let signature = Self("X-Signature")!
    static let signatureVersion = Self("X-Signature-Version")!
}

/// Applied to every route marked signed: checks the signature headers' form and time, collects the body, has
/// AuthService verify the signature (v1 or v2, see docs/SIGNING.md) and consume the nonce, spends one unit of the device's `signed` budget, and puts the device on
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
        let machineID = try await verifyDeviceSignature(request, auth: auth, clock: clock) {
            try await collectBody(&request, limit: limit)
        }
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
/// the nonce; returns the verified device's machine id. The headers' form and the request time are checked here
/// first, so a request that cannot be valid is refused before its body is read (by `body`) or a service is asked.
func verifyDeviceSignature(
    _ request: Request, auth: AuthClient, clock: any WallClock, body readBody: () async throws -> ByteBuffer
) async throws -> String {
    let signed = try await signedRequest(request, clock: clock, body: readBody)
    return try await auth.verifySignature(signed).device.machineID
}

/// The signed request as AuthService verifies it: headers checked for form and time first (before `body` reads
/// anything), then the body's bytes (v1) or SHA-256 (v2). `requireVersion2` refuses a v1 signature at once.
func signedRequest(
    _ request: Request, clock: any WallClock, requireVersion2: Bool = false,
    body readBody: () async throws -> ByteBuffer
) async throws -> Leaderboard_Auth_V1_VerifySignatureRequest {
    let headers = request.headers
    let signed = try SignatureHeaders.parse(
        deviceID: headers[.deviceID], requestTime: headers[.requestTime], nonce: headers[.nonce],
        signature: headers[.signature], versionHeader: headers[.signatureVersion],
        now: clock.microsecondsSinceEpoch() / 1_000_000)
    if requireVersion2, signed.version != .v2 {
        throw Problem(
            .badRequest, code: "signature_version_required",
            detail:
                "Changing a credential needs a version 2 signature (X-Signature-Version: 2), which covers the method "
                + "and path.")
    }
    let body = try await readBody()
    let (path, query) = splitTarget(request.head.path ?? "/")
    return .with {
        $0.version = signed.version == .v2 ? .v2 : .v1
        $0.machineID = signed.deviceID
        $0.requestTime = signed.requestTime
        $0.nonce = signed.nonce
        $0.signature = headers[.signature] ?? ""
        $0.method = request.method.rawValue
        $0.path = path
        $0.query = query
        if signed.version == .v1 {
            $0.body = Data(body.readableBytesView)
        } else {
            $0.bodySha256 = Data(SHA256.hash(data: body.readableBytesView))
        }
    }
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
