import Foundation
import GRPCCore
import LeaderboardAPI
import ServiceKit
import SwiftProtobuf

/// `leaderboard.interaction.v1.InteractionService`: maps protobuf messages to ``InteractionAuthority`` and back.
struct InteractionRPCService: Leaderboard_Interaction_V1_InteractionService.SimpleServiceProtocol {
    let interactions: InteractionAuthority
    let events: any EventBus
    /// How often a notification watcher looks for stored notifications when no wake-up arrives.
    var watchPoll: Duration = .seconds(2)

    func setReaction(request: Leaderboard_Interaction_V1_SetReactionRequest, context: ServerContext) async throws
        -> Leaderboard_Interaction_V1_ReactionCounts
    {
        let kind: ReactionKind
        switch request.kind {
        case .like: kind = .like
        case .dislike: kind = .dislike
        default: throw InteractionError.invalid("invalid_reaction", "A reaction is like or dislike.")
        }
        try Self.requireDevice(request.machineID)
        return Self.counts(
            try await interactions.setReaction(kind, record: request.recordID, machineID: request.machineID))
    }

    func removeReaction(request: Leaderboard_Interaction_V1_RemoveReactionRequest, context: ServerContext) async throws
        -> Leaderboard_Interaction_V1_ReactionCounts
    {
        try Self.requireDevice(request.machineID)
        return Self.counts(
            try await interactions.removeReaction(record: request.recordID, machineID: request.machineID))
    }

    func getReactionCounts(request: Leaderboard_Interaction_V1_GetReactionCountsRequest, context: ServerContext)
        async throws -> Leaderboard_Interaction_V1_GetReactionCountsResponse
    {
        let counts = try await interactions.counts(
            request.recordIds, machineID: request.machineID.isEmpty ? nil : request.machineID)
        return .with { $0.counts = counts.map(Self.counts) }
    }

    func addComment(request: Leaderboard_Interaction_V1_AddCommentRequest, context: ServerContext) async throws
        -> Leaderboard_Interaction_V1_Comment
    {
        Self.comment(
            try await interactions.addComment(
                record: request.recordID, content: request.content, authorName: request.authorName,
                actor: Self.actor(request.caller)))
    }

    func listComments(request: Leaderboard_Interaction_V1_ListCommentsRequest, context: ServerContext) async throws
        -> Leaderboard_Interaction_V1_ListCommentsResponse
    {
        let page = try await interactions.comments(
            record: request.recordID, cursor: request.page.cursor, limit: Int(request.page.limit))
        return .with {
            $0.comments = page.comments.map(Self.comment)
            $0.page.nextCursor = page.next
        }
    }

    func deleteComment(request: Leaderboard_Interaction_V1_DeleteCommentRequest, context: ServerContext) async throws
        -> Leaderboard_Interaction_V1_Comment
    {
        Self.comment(try await interactions.deleteComment(request.commentID, actor: Self.actor(request.caller)))
    }

    func flagContent(request: Leaderboard_Interaction_V1_FlagContentRequest, context: ServerContext) async throws
        -> Leaderboard_Interaction_V1_Flag
    {
        let target: FlagTarget
        switch request.target {
        case .record: target = .record
        case .comment: target = .comment
        default: throw InteractionError.invalid("invalid_flag_target", "A flag is about a record or a comment.")
        }
        return Self.flag(
            try await interactions.flag(
                target, id: request.targetID, reason: request.reason, actor: Self.actor(request.caller)))
    }

    func listFlags(request: Leaderboard_Interaction_V1_ListFlagsRequest, context: ServerContext) async throws
        -> Leaderboard_Interaction_V1_ListFlagsResponse
    {
        let page = try await interactions.flags(
            cursor: request.page.cursor, limit: Int(request.page.limit), includeResolved: request.includeResolved)
        return .with {
            $0.flags = page.flags.map(Self.flag)
            $0.page.nextCursor = page.next
        }
    }

    func resolveFlag(request: Leaderboard_Interaction_V1_ResolveFlagRequest, context: ServerContext) async throws
        -> Leaderboard_Interaction_V1_Flag
    {
        Self.flag(
            try await interactions.resolve(flag: request.flagID, resolution: request.resolution, note: request.note))
    }

    func listAuditEntries(request: Leaderboard_Common_V1_ListAuditEntriesRequest, context: ServerContext)
        async throws -> Leaderboard_Common_V1_ListAuditEntriesResponse
    {
        let entries = try await interactions.audit(after: request.afterSequence, limit: Int(request.limit))
        return .with {
            $0.entries = entries.map { entry in
                .with {
                    $0.sequence = entry.sequence
                    $0.at = .init(microsecondsSinceEpoch: entry.at)
                    $0.actor = entry.actor
                    $0.action = entry.action
                    $0.target = entry.target
                    $0.reason = entry.reason
                    $0.detailsJson = entry.details
                }
            }
        }
    }

    func listNotifications(request: Leaderboard_Interaction_V1_ListNotificationsRequest, context: ServerContext)
        async throws -> Leaderboard_Interaction_V1_ListNotificationsResponse
    {
        try Self.requireDevice(request.machineID)
        let page = try await interactions.notifications(
            for: request.machineID, since: request.since, limit: Int(request.limit), unreadOnly: request.unreadOnly)
        return .with {
            $0.notifications = page.notifications.map(Self.notification)
            $0.latestSequence = page.latest
        }
    }

    func markNotificationsRead(
        request: Leaderboard_Interaction_V1_MarkNotificationsReadRequest, context: ServerContext
    ) async throws -> Leaderboard_Interaction_V1_MarkNotificationsReadResponse {
        try Self.requireDevice(request.machineID)
        let marked = try await interactions.markRead(request.machineID, upTo: request.upToSequence)
        return .with { $0.marked = Int64(marked) }
    }

    /// Notifications of one machine in sequence order: the stored ones after `since`, then new ones as they are stored
    /// (the bus only wakes the watcher).
    func watchNotifications(
        request: Leaderboard_Interaction_V1_WatchNotificationsRequest,
        response: RPCWriter<Leaderboard_Interaction_V1_Notification>, context: ServerContext
    ) async throws {
        try Self.requireDevice(request.machineID)
        let machine = request.machineID
        let subscription = try await events.subscribe(to: InteractionAuthority.notificationChannel)
        try await followStored(
            context, after: request.since, subscription: subscription, poll: watchPoll,
            isRelevant: { (try? JSONDecoder().decode(NotificationWake.self, from: Data($0)))?.machineID == machine },
            deliver: { after in
                var position = after
                let page = try await interactions.notifications(
                    for: machine, since: position, limit: InteractionAuthority.maximumPage, unreadOnly: false)
                for notification in page.notifications {
                    try await response.write(Self.notification(notification))
                    position = notification.sequence
                }
                return position
            })
    }

    /// Count changes of every record, numbered per stream.
    func watchInteractions(
        request: Leaderboard_Interaction_V1_WatchInteractionsRequest,
        response: RPCWriter<Leaderboard_Interaction_V1_InteractionEvent>, context: ServerContext
    ) async throws {
        let subscription = try await events.subscribe(to: InteractionAuthority.countsChannel)
        try await untilStreamEnds(context) {
            var sequence: UInt64 = 0
            for await payload in subscription {
                guard let counts = try? JSONDecoder().decode(ReactionCounts.self, from: Data(payload)) else { continue }
                sequence += 1
                try await response.write(
                    .with {
                        $0.sequence = sequence
                        $0.recordID = counts.recordID
                        $0.counts = Self.counts(counts)
                        $0.at = .init(microsecondsSinceEpoch: interactions.clock.microsecondsSinceEpoch())
                    })
            }
        }
    }

    // MARK: mapping

    static func requireDevice(_ machineID: String) throws(InteractionError) {
        guard !machineID.isEmpty else {
            throw InteractionError(
                code: "device_required", detail: "This needs a signed request from a device.", status: .unauthenticated)
        }
    }

    /// Who acts: the device the gateway verified, or an operator — only when the call carried a verified operator
    /// key with the admin permission (``OperatorContext``); an `api_key_id` in the request proves nothing.
    static func actor(_ caller: Leaderboard_Common_V1_Caller) -> Participant {
        let isOperator = OperatorContext.current?.grants(.admin) == true
        switch caller.identity {
        case .machineID(let id): return Participant(machineID: id, isOperator: false, ip: caller.ip)
        case .apiKeyID, nil: return Participant(machineID: nil, isOperator: isOperator, ip: caller.ip)
        }
    }

    static func counts(_ counts: ReactionCounts) -> Leaderboard_Interaction_V1_ReactionCounts {
        .with {
            $0.recordID = counts.recordID
            $0.likes = Int64(counts.likes)
            $0.dislikes = Int64(counts.dislikes)
            $0.comments = Int64(counts.comments)
            $0.mine =
                switch counts.mine {
                case .like: .like
                case .dislike: .dislike
                case nil: .unspecified
                }
        }
    }

    /// A comment as shown to anyone: never its IP.
    static func comment(_ comment: CommentRecord) -> Leaderboard_Interaction_V1_Comment {
        .with {
            $0.commentID = comment.commentID
            $0.recordID = comment.recordID
            $0.machineID = comment.machineID ?? ""
            $0.authorName = comment.authorName
            $0.content = comment.deletedAt == nil ? comment.content : ""
            $0.createdAt = .init(microsecondsSinceEpoch: comment.createdAt)
            if let deleted = comment.deletedAt { $0.deletedAt = .init(microsecondsSinceEpoch: deleted) }
        }
    }

    static func flag(_ flag: FlagRecord) -> Leaderboard_Interaction_V1_Flag {
        .with {
            $0.flagID = flag.flagID
            $0.target = flag.target == .record ? .record : .comment
            $0.targetID = flag.targetID
            $0.reason = flag.reason
            $0.createdAt = .init(microsecondsSinceEpoch: flag.createdAt)
            $0.resolved = flag.resolved
            $0.resolution = flag.resolution
            $0.resolutionNote = flag.resolutionNote
            if let resolved = flag.resolvedAt { $0.resolvedAt = .init(microsecondsSinceEpoch: resolved) }
        }
    }

    static func notification(_ notification: NotificationRecord) -> Leaderboard_Interaction_V1_Notification {
        .with {
            $0.notificationID = notification.notificationID
            $0.machineID = notification.machineID
            $0.kind =
                switch notification.kind {
                case .comment: .comment
                case .reaction: .reaction
                case .rankChange: .rankChange
                }
            $0.recordID = notification.recordID
            $0.summary = notification.summary
            $0.payloadJson = notification.payloadJSON
            $0.createdAt = .init(microsecondsSinceEpoch: notification.createdAt)
            if let read = notification.readAt { $0.readAt = .init(microsecondsSinceEpoch: read) }
            $0.sequence = notification.sequence
        }
    }
}
