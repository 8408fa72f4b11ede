import Foundation
import HTTPTypes
import Hummingbird
import LeaderboardAPI
import Logging
import ServiceKit
import SwiftProtobuf

/// Operator routes: `Authorization: Bearer <api key>` must name a live key with the permission; the key's own
/// per-minute limit applies (429 with `Retry-After` past it). The key is forwarded on the calls the route makes, where
/// the services check operator RPCs again (docs/SECURITY.md).
struct APIKeyMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    let auth: AuthClient
    let permission: Leaderboard_Auth_V1_Permission
    let rateLimiter: any RateLimiter
    let clock: any WallClock

    func handle(
        _ request: Request,
        context: GatewayRequestContext,
        next: (Request, GatewayRequestContext) async throws -> Response
    ) async throws -> Response {
        guard let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") else {
            var problem = Problem(
                .unauthorized, code: "missing_api_key", detail: "This route needs Authorization: Bearer <api key>.")
            problem.headers[.wwwAuthenticate] = "Bearer"
            throw problem
        }
        let permission = permission
        let secret = String(header.dropFirst("bearer ".count)).trimmingCharacters(in: .whitespaces)
        let key = try await auth.authenticateApiKey(
            .with {
                $0.secret = secret
                $0.requiredPermission = permission
            })
        let policy = RateLimitPolicy(
            name: "api-key", limit: max(1, Int(key.rateLimitPerMinute)), period: .seconds(60))
        try await rateLimiter.enforce(
            policy, key: "api-key:\(key.keyID)", clock: clock,
            detail: "This API key is over its limit of \(policy.limit)/min.")
        var context = context
        context.apiKey = AuthenticatedKey(keyID: key.keyID, rateLimitPerMinute: Int(key.rateLimitPerMinute))
        context.logger[metadataKey: "api_key_id"] = "\(key.keyID)"
        // The services check operator calls themselves: every call made for this request carries the key.
        return try await OperatorContext.$forwardedKey.withValue(secret) { try await next(request, context) }
    }
}
