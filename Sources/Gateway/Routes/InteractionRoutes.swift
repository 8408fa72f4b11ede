import Foundation
import GRPCCore
import HTTPTypes
import Hummingbird
import LeaderboardAPI
import Logging
import ServiceKit
import SwiftProtobuf
import UntrustedInput

/// The InteractionService client the routes call.
typealias InteractionClient = any Leaderboard_Interaction_V1_InteractionService.ClientProtocol

/// Reactions, comments, flags (`/api/v1/benchmarks/{id}/…`), notifications (`/api/v1/notifications`) and their
/// operator routes (`/api/v1/admin/comments|flags`). Formats and codes: docs/INTERACTIONS.md.
enum InteractionRoutes {
    static func add(
        to router: Router<GatewayRequestContext>, dependencies: GatewayDependencies, auth: AuthClient,
        interactions: InteractionClient
    ) {
        let signed = DeviceSignatureMiddleware(auth: auth, dependencies: dependencies)
        let writing = ClientRateLimitMiddleware(
            policy: dependencies.policies.comments, rateLimiter: dependencies.rateLimiter, clock: dependencies.clock)
        let changesCounts = CacheInvalidationMiddleware(cache: dependencies.cache, scopes: [.ranking])
        let changesComments = CacheInvalidationMiddleware(cache: dependencies.cache, scopes: [.ranking, .comments])
        let benchmarks = router.group("/api/v1/benchmarks")
        for (action, kind) in [("like", Leaderboard_Interaction_V1_ReactionKind.like), ("dislike", .dislike)] {
            benchmarks.group("/{id}/\(action)").add(middleware: changesCounts).add(middleware: signed).post {
                _, context in
                let machineID = try context.requireDevice().machineID
                let counts = try await interactions.setReaction(
                    .with {
                        $0.recordID = context.parameters.get("id") ?? ""
                        $0.machineID = machineID
                        $0.kind = kind
                    })
                return jsonResponse(countsJSON(counts), status: .ok, headers: ResponseHeaders.noStore)
            }
        }
        benchmarks.group("/{id}/reaction").add(middleware: changesCounts).add(middleware: signed).delete { _, context in
            let machineID = try context.requireDevice().machineID
            let counts = try await interactions.removeReaction(
                .with {
                    $0.recordID = context.parameters.get("id") ?? ""
                    $0.machineID = machineID
                })
            return jsonResponse(countsJSON(counts), status: .ok, headers: ResponseHeaders.noStore)
        }
        benchmarks.group("/{id}/comments").add(
            middleware: ResponseCacheMiddleware(
                dependencies: dependencies, scope: .comments, query: RouteQueries.pageOnly)
        ).get { request, context in
            let query = try request.query(RouteQueries.pageOnly)
            let page = try await interactions.listComments(
                .with {
                    $0.recordID = context.parameters.get("id") ?? ""
                    $0.page = query.page
                })
            return jsonResponse(
                [
                    "comments": page.comments.map(commentJSON),
                    "next_cursor": page.page.nextCursorJSON,
                ], status: .ok, headers: RankingRoutes.publicCache)
        }
        // Anonymous, or signed by a device (then the comment is the device's and it may delete it).
        benchmarks.group("/{id}/comments").add(middleware: writing).add(middleware: changesComments).add(
            middleware: OptionalSignatureMiddleware(signed: signed)
        )
        .post {
            request, context in
            var request = request
            let body = try await JSONBody.read(&request, limit: 16 << 10)
            let comment = try await interactions.addComment(
                .with {
                    $0.recordID = context.parameters.get("id") ?? ""
                    $0.content = try body.string("content")
                    $0.authorName = try body.optionalString("author_name") ?? ""
                    $0.caller = caller(context)
                })
            return jsonResponse(commentJSON(comment), status: .created, headers: ResponseHeaders.noStore)
        }
        benchmarks.group("/{id}/comments/{comment}").add(middleware: changesComments).add(middleware: signed).delete {
            _, context in
            _ = try await interactions.deleteComment(
                .with {
                    $0.commentID = context.parameters.get("comment") ?? ""
                    $0.caller = caller(context)
                })
            return Response(status: .noContent, headers: ResponseHeaders.noStore)
        }
        benchmarks.group("/{id}/flag").add(middleware: writing).add(
            middleware: OptionalSignatureMiddleware(signed: signed)
        )
        .post {
            request, context in
            var request = request
            let body = try await JSONBody.read(&request, limit: 4 << 10)
            let commentID = try body.optionalString("comment_id")
            let flag = try await interactions.flagContent(
                .with {
                    $0.target = commentID == nil ? .record : .comment
                    $0.targetID = commentID ?? context.parameters.get("id") ?? ""
                    $0.reason = try body.string("reason")
                    $0.caller = caller(context)
                })
            return jsonResponse(flagJSON(flag), status: .created, headers: ResponseHeaders.noStore)
        }

        let notifications = router.group("/api/v1/notifications").add(middleware: signed)
        notifications.get { request, context in
            let query = try request.query(RouteQueries.notifications)
            let machineID = try context.requireDevice().machineID
            let page = try await interactions.listNotifications(
                .with {
                    $0.machineID = machineID
                    $0.since = UInt64(query.integer("since") ?? 0)
                    $0.limit = Int32(clamping: query.integer("limit") ?? 0)
                    $0.unreadOnly = query.flag("unread_only") ?? false
                })
            return jsonResponse(
                [
                    "notifications": page.notifications.map(notificationJSON),
                    "latest_sequence": Int(page.latestSequence),
                ], status: .ok, headers: ResponseHeaders.noStore)
        }
        notifications.post("/read") { request, context in
            var request = request
            let body = try await JSONBody.read(&request)
            let machineID = try context.requireDevice().machineID
            guard let upTo = try body.optionalInt64("up_to_sequence"), upTo >= 0 else {
                throw Problem(.badRequest, code: "missing_field", detail: "up_to_sequence (≥ 0) is required.")
            }
            let reply = try await interactions.markNotificationsRead(
                .with {
                    $0.machineID = machineID
                    $0.upToSequence = UInt64(upTo)
                })
            return jsonResponse(["marked": Int(reply.marked)], status: .ok, headers: ResponseHeaders.noStore)
        }

        let admin = router.group("/api/v1/admin")
            .add(
                middleware: APIKeyMiddleware(
                    auth: auth, permission: .admin, rateLimiter: dependencies.rateLimiter, clock: dependencies.clock))
        admin.group("/comments/{comment}").add(middleware: changesComments).delete { _, context in
            let comment = try await interactions.deleteComment(
                .with {
                    $0.commentID = context.parameters.get("comment") ?? ""
                    $0.caller = caller(context)
                })
            return jsonResponse(commentJSON(comment), status: .ok, headers: ResponseHeaders.noStore)
        }
        admin.group("/flags/{flag}/resolve").post { request, context in
            var request = request
            let body = try await JSONBody.read(&request)
            let flag = try await interactions.resolveFlag(
                .with {
                    $0.flagID = context.parameters.get("flag") ?? ""
                    $0.resolution = try body.string("resolution")
                    $0.note = try body.string("note")
                })
            return jsonResponse(flagJSON(flag), status: .ok, headers: ResponseHeaders.noStore)
        }
        admin.get("/flags") { request, _ in
            let query = try request.query(RouteQueries.flags)
            let page = try await interactions.listFlags(
                .with {
                    $0.page = query.page
                    $0.includeResolved = query.flag("include_resolved") ?? false
                })
            return jsonResponse(
                [
                    "flags": page.flags.map(flagJSON),
                    "next_cursor": page.page.nextCursorJSON,
                ], status: .ok, headers: ResponseHeaders.noStore)
        }
    }

    /// Who the gateway established the caller to be: device, operator key, or nobody — with the client IP.
    static func caller(_ context: GatewayRequestContext) -> Leaderboard_Common_V1_Caller {
        .with {
            if let device = context.device {
                $0.machineID = device.machineID
            } else if let key = context.apiKey {
                $0.apiKeyID = key.keyID
            }
            $0.ip = context.clientIP
            $0.requestID = context.requestID
        }
    }

    /// Counts of a page of records; a board still answers (without counts) when InteractionService does not.
    static func counts(
        of ids: [String], interactions: InteractionClient, context: GatewayRequestContext
    ) async -> [String: Leaderboard_Interaction_V1_ReactionCounts] {
        guard !ids.isEmpty else { return [:] }
        do {
            let reply = try await interactions.getReactionCounts(.with { $0.recordIds = ids })
            return Dictionary(reply.counts.map { ($0.recordID, $0) }, uniquingKeysWith: { first, _ in first })
        } catch {
            context.logger.warning("reaction counts unavailable", metadata: ["error": "\(error)"])
            return [:]
        }
    }

    static func withCounts(_ record: [String: Any], _ counts: Leaderboard_Interaction_V1_ReactionCounts?)
        -> [String: Any]
    {
        var record = record
        record["likes_count"] = counts.map { Int($0.likes) } ?? NSNull()
        record["dislikes_count"] = counts.map { Int($0.dislikes) } ?? NSNull()
        record["comments_count"] = counts.map { Int($0.comments) } ?? NSNull()
        return record
    }

    static func countsJSON(_ counts: Leaderboard_Interaction_V1_ReactionCounts) -> [String: Any] {
        [
            "record_id": counts.recordID, "likes_count": Int(counts.likes), "dislikes_count": Int(counts.dislikes),
            "comments_count": Int(counts.comments),
            "mine": jsonValue(counts.mine == .like ? "like" : counts.mine == .dislike ? "dislike" : nil),
        ]
    }

    static func commentJSON(_ comment: Leaderboard_Interaction_V1_Comment) -> [String: Any] {
        [
            // No machine id: a device is known in public by its display name only (docs/SECURITY.md).
            "comment_id": comment.commentID, "record_id": comment.recordID,
            "author_name": comment.authorName, "content": comment.content,
            "created_at": jsonValue(comment.createdAt.rfc3339), "deleted_at": jsonValue(comment.deletedAt.rfc3339),
        ]
    }

    static func flagJSON(_ flag: Leaderboard_Interaction_V1_Flag) -> [String: Any] {
        [
            "flag_id": flag.flagID, "target": flag.target == .comment ? "comment" : "record",
            "target_id": flag.targetID, "reason": flag.reason, "created_at": jsonValue(flag.createdAt.rfc3339),
            "resolved": flag.resolved,
            "resolution": jsonValue(flag.resolution.isEmpty ? nil : flag.resolution),
            "resolution_note": jsonValue(flag.resolutionNote.isEmpty ? nil : flag.resolutionNote),
            "resolved_at": jsonValue(flag.hasResolvedAt ? flag.resolvedAt.rfc3339 : nil),
        ]
    }

    static func notificationJSON(_ notification: Leaderboard_Interaction_V1_Notification) -> [String: Any] {
        let kind =
            switch notification.kind {
            case .comment: "comment"
            case .reaction: "reaction"
            case .rankChange: "rank_change"
            default: "unknown"
            }
        let payload =
            (try? JSONSerialization.jsonObject(with: Data(notification.payloadJson.utf8))) ?? [String: Any]()
        return [
            "notification_id": notification.notificationID, "sequence": Int(notification.sequence), "kind": kind,
            "record_id": notification.recordID, "summary": notification.summary, "payload": payload,
            "created_at": jsonValue(notification.createdAt.rfc3339), "read_at": jsonValue(notification.readAt.rfc3339),
        ]
    }
}

/// Verifies a signed request like ``DeviceSignatureMiddleware`` when it carries signature headers; lets an
/// unsigned one through anonymously (a bad signature is still refused, never downgraded to anonymous).
struct OptionalSignatureMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext
    let signed: DeviceSignatureMiddleware

    func handle(
        _ request: Request, context: GatewayRequestContext,
        next: (Request, GatewayRequestContext) async throws -> Response
    ) async throws -> Response {
        let headers = request.headers
        guard headers[.deviceID] != nil || headers[.signature] != nil else { return try await next(request, context) }
        return try await signed.handle(request, context: context, next: next)
    }
}
