import Foundation
import Hummingbird
import LeaderboardAPI
import ServiceKit
import SwiftProtobuf
import UntrustedInput

/// DeepStressModel API keys (docs/DEEPSTRESSMODEL.md): a signed device makes, lists and revokes its own
/// (`/api/v1/devices/client-keys`); an admin operator revokes any (`DELETE /api/v1/admin/client-keys/{id}`).
enum ClientKeyRoutes {
    static func add(to router: Router<GatewayRequestContext>, dependencies: GatewayDependencies, auth: AuthClient) {
        let own = router.group("/api/v1/devices/client-keys")
            .add(middleware: DeviceSignatureMiddleware(auth: auth, dependencies: dependencies))
        own.post { request, context in
            var request = request
            let body = try await JSONBody.read(&request)
            let machineID = try context.requireDevice().machineID
            let created = try await auth.createClientKey(
                .with {
                    $0.machineID = machineID
                    $0.name = try body.optionalString("name") ?? ""
                })
            var json = keyJSON(created.key)
            json["api_key"] = created.apiKey
            return jsonResponse(json, status: .created, headers: ResponseHeaders.noStore)
        }
        own.get { request, context in
            let query = try request.query(RouteQueries.clientKeys)
            let machineID = try context.requireDevice().machineID
            let keys = try await auth.listClientKeys(
                .with {
                    $0.machineID = machineID
                    $0.includeRevoked = query.flag("include_revoked") ?? false
                })
            return jsonResponse(["keys": keys.keys.map(keyJSON)], status: .ok, headers: ResponseHeaders.noStore)
        }
        own.delete("/{id}") { _, context in
            let machineID = try context.requireDevice().machineID
            let key = try await auth.revokeClientKey(
                .with {
                    $0.machineID = machineID
                    $0.keyID = context.parameters.get("id") ?? ""
                })
            return jsonResponse(keyJSON(key), status: .ok, headers: ResponseHeaders.noStore)
        }

        router.group("/api/v1/admin/client-keys")
            .add(
                middleware: APIKeyMiddleware(
                    auth: auth, permission: .admin, rateLimiter: dependencies.rateLimiter, clock: dependencies.clock)
            )
            .delete("/{id}") { _, context in
                let key = try await auth.revokeClientKey(.with { $0.keyID = context.parameters.get("id") ?? "" })
                return jsonResponse(keyJSON(key), status: .ok, headers: ResponseHeaders.noStore)
            }
    }

    static func keyJSON(_ key: Leaderboard_Auth_V1_ClientKey) -> [String: Any] {
        [
            "key_id": key.keyID, "name": key.name, "prefix": key.prefix,
            "created_at": jsonValue(key.createdAt.rfc3339),
            "revoked_at": jsonValue(key.hasRevokedAt ? key.revokedAt.rfc3339 : nil),
            "last_used_at": jsonValue(key.hasLastUsedAt ? key.lastUsedAt.rfc3339 : nil),
        ]
    }
}
