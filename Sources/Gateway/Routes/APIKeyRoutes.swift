import Foundation
import Hummingbird
import LeaderboardAPI
import ServiceKit
import SwiftProtobuf
import UntrustedInput

/// `/api/v1/admin/keys`: operator API keys over REST, for holders of an admin key (`Authorization: Bearer`).
enum APIKeyRoutes {
    static func add(to router: Router<GatewayRequestContext>, dependencies: GatewayDependencies, auth: AuthClient) {
        let keys = router.group("/api/v1/admin/keys")
            .add(
                middleware: APIKeyMiddleware(
                    auth: auth, permission: .admin, rateLimiter: dependencies.rateLimiter, clock: dependencies.clock))

        keys.post { request, _ in
            var request = request
            let body = try await JSONBody.read(&request)
            let names = try body.optionalStrings("permissions") ?? ["read"]
            let permissions = try names.map { name in
                guard let permission = permission(named: name) else {
                    throw Problem(
                        .badRequest, code: "invalid_permissions",
                        detail: "Permissions are read, write and admin; \"\(name)\" is not one.")
                }
                return permission
            }
            let created = try await auth.createApiKey(
                .with {
                    $0.name = try body.string("name")
                    $0.permissions = permissions
                    $0.rateLimitPerMinute = try body.optionalInt32("rate_limit_per_minute") ?? 0
                    if let expiresAt = try body.optionalTimestamp("expires_at") { $0.expiresAt = expiresAt }
                })
            var json = keyJSON(created.key)
            json["secret"] = created.secret
            return jsonResponse(json, status: .created, headers: ResponseHeaders.noStore)
        }

        keys.get { request, _ in
            let query = try request.query(RouteQueries.apiKeys)
            let page = try await auth.listApiKeys(
                .with {
                    $0.page = query.page
                    $0.includeRevoked = query.flag("include_revoked") ?? false
                })
            return jsonResponse(
                [
                    "keys": page.keys.map(keyJSON),
                    "next_cursor": page.page.nextCursorJSON,
                ], status: .ok, headers: ResponseHeaders.noStore)
        }

        keys.delete("/{key_id}") { _, context in
            let keyID = try context.parameters.require("key_id")
            let key = try await auth.revokeApiKey(.with { $0.keyID = keyID })
            return jsonResponse(keyJSON(key), status: .ok, headers: ResponseHeaders.noStore)
        }
    }

    static func permission(named name: String) -> Leaderboard_Auth_V1_Permission? {
        switch name {
        case "read": .read
        case "write": .write
        case "admin": .admin
        default: nil
        }
    }

    static func permissionName(_ permission: Leaderboard_Auth_V1_Permission) -> String {
        switch permission {
        case .read: "read"
        case .write: "write"
        case .admin: "admin"
        case .unspecified, .UNRECOGNIZED: "unknown"
        }
    }

    static func keyJSON(_ key: Leaderboard_Auth_V1_ApiKey) -> [String: Any] {
        [
            "key_id": key.keyID,
            "name": key.name,
            "prefix": key.prefix,
            "permissions": key.permissions.map(permissionName),
            "rate_limit_per_minute": Int(key.rateLimitPerMinute),
            "created_at": jsonValue(key.createdAt.rfc3339),
            "expires_at": jsonValue(key.expiresAt.rfc3339),
            "revoked_at": jsonValue(key.revokedAt.rfc3339),
            "last_used_at": jsonValue(key.lastUsedAt.rfc3339),
        ]
    }
}
