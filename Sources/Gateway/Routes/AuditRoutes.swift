import Foundation
import Hummingbird
import LeaderboardAPI
import ServiceKit
import SwiftProtobuf
import UntrustedInput

/// `GET /api/v1/admin/audit?service=auth|dataset|ranking|interaction&after=&limit=`: one service's append-only log of
/// operator actions (docs/GOVERNANCE.md), oldest first, for an admin key.
enum AuditRoutes {
    static func add(
        to router: Router<GatewayRequestContext>, dependencies: GatewayDependencies, services: GatewayServices
    ) {
        router.group("/api/v1/admin/audit")
            .add(
                middleware: APIKeyMiddleware(
                    auth: services.auth, permission: .admin, rateLimiter: dependencies.rateLimiter,
                    clock: dependencies.clock)
            )
            .get { request, _ in
                let query = try request.query(RouteQueries.audit)
                let listing = Leaderboard_Common_V1_ListAuditEntriesRequest.with {
                    $0.afterSequence = query.integer("after") ?? 0
                    $0.limit = Int32(clamping: query.integer("limit") ?? 0)
                }
                let service = query["service"] ?? "ranking"
                let reply =
                    switch service {
                    case "auth": try await services.auth.listAuditEntries(listing)
                    case "dataset": try await services.datasets.listAuditEntries(listing)
                    case "interaction": try await services.interactions.listAuditEntries(listing)
                    default: try await services.ranking.listAuditEntries(listing)
                    }
                return jsonResponse(
                    ["service": service, "entries": reply.entries.map(entryJSON)], status: .ok,
                    headers: ResponseHeaders.noStore)
            }
    }

    static func entryJSON(_ entry: Leaderboard_Common_V1_AuditEntry) -> [String: Any] {
        let details =
            entry.detailsJson.isEmpty ? nil : try? JSONSerialization.jsonObject(with: Data(entry.detailsJson.utf8))
        return [
            "sequence": Int(entry.sequence), "at": jsonValue(entry.at.rfc3339), "actor": entry.actor,
            "action": entry.action, "target": entry.target, "reason": entry.reason, "details": details ?? NSNull(),
        ]
    }
}
