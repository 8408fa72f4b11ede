import Foundation
import GRPCCore
import Logging
import ServiceKit
import UntrustedInput

/// A record as RankingService vouches for it: it exists, is published, and belongs to this machine.
struct RecordOwner: Sendable, Equatable {
    var recordID: String
    var ownerMachineID: String
}

/// Who is acting: a verified device, an operator, or an anonymous visitor — always with the client's IP.
struct Participant: Sendable, Equatable {
    var machineID: String?
    var isOperator = false
    var ip = ""
}

/// Reactions, comments, flags and notifications. Both the RPC service and the tests use it.
struct InteractionAuthority: Sendable {
    let database: ServiceDatabase
    let events: any EventBus
    let logger: Logger
    let clock: any WallClock
    let random: any RandomSource
    /// RankingService's `LookupRecord`; throws its not-found error for unknown or unpublished records.
    let lookup: @Sendable (_ recordID: String) async throws -> RecordOwner

    /// Count changes of records, as JSON of ``ReactionCounts`` (for caches and live boards).
    static let countsChannel = EventChannels.interactionCounts
    /// New notifications, as JSON `{"machine_id": …, "sequence": …}` (a wake-up; watchers read the stored ones).
    static let notificationChannel = EventChannels.notifications
    static let maximumPage = 200

    // MARK: retention

    /// Applies the retention windows in one transaction; returns what went, by kind.
    @discardableResult
    func housekeeping(_ retention: InteractionRetention) async throws -> [String: Int] {
        let now = clock.microsecondsSinceEpoch()
        let purged = try await database.transaction(logger: logger) { sql in
            let repository = InteractionRepository(sql)
            var purged: [String: Int] = [:]
            if let window = retention.notifications {
                purged["notifications"] = try await repository.purgeNotifications(before: window.cutoff(now: now))
            }
            if let window = retention.resolvedFlags {
                purged["resolved_flags"] = try await repository.purgeResolvedFlags(before: window.cutoff(now: now))
            }
            return purged
        }
        for (kind, count) in purged where count > 0 {
            MetricFamilies.retentionDeleted.counter("interaction", kind).increment(by: Int64(count))
        }
        if purged.values.contains(where: { $0 > 0 }) {
            logger.info("interaction retention", metadata: purged.mapValues { "\($0)" })
        }
        return purged
    }

    // MARK: reactions

    func setReaction(_ kind: ReactionKind, record id: String, machineID: String) async throws -> ReactionCounts {
        let record = try await lookup(id)
        let now = clock.microsecondsSinceEpoch()
        let (counts, notification) = try await database.transaction(logger: logger) { sql in
            let repository = InteractionRepository(sql)
            let previous = try await repository.setReaction(kind, record: id, machine: machineID, at: now)
            var notification: NotificationRecord? = nil
            if previous != kind, record.ownerMachineID != machineID {
                notification = try await repository.notify(
                    makeNotification(
                        record, kind: .reaction, source: "reaction:\(id):\(machineID)",
                        summary: kind == .like ? "Someone liked your record." : "Someone disliked your record.",
                        payload: ["reaction": kind.rawValue], at: now))
            }
            return (try await repository.counts(id, machine: machineID), notification)
        }
        await publish(counts, notification)
        return counts
    }

    func removeReaction(record id: String, machineID: String) async throws -> ReactionCounts {
        _ = try await lookup(id)
        let counts = try await database.transaction(logger: logger) { sql in
            let repository = InteractionRepository(sql)
            _ = try await repository.removeReaction(record: id, machine: machineID)
            return try await repository.counts(id, machine: machineID)
        }
        await publish(counts, nil)
        return counts
    }

    /// Counts of many records at once (a board page); unknown ids count zero.
    func counts(_ ids: [String], machineID: String?) async throws -> [ReactionCounts] {
        guard ids.count <= Self.maximumPage else {
            throw InteractionError.invalid("too_many_records", "Ask for at most \(Self.maximumPage) records at once.")
        }
        return try await database.withExecutor(logger: logger) { sql in
            var all: [ReactionCounts] = []
            for id in ids { all.append(try await InteractionRepository(sql).counts(id, machine: machineID)) }
            return all
        }
    }

    // MARK: comments

    func addComment(record id: String, content: String, authorName: String, actor: Participant) async throws
        -> CommentRecord
    {
        let content = try CommentText.validate(content)
        let name = try CommentText.authorName(authorName)
        let record = try await lookup(id)
        let now = clock.microsecondsSinceEpoch()
        let comment = CommentRecord(
            commentID: random.bytes(12).hexEncoded, recordID: id, machineID: actor.machineID, authorName: name,
            content: content, ip: actor.ip, createdAt: now)
        let (counts, notification) = try await database.transaction(logger: logger) { sql in
            let repository = InteractionRepository(sql)
            try await repository.insert(comment)
            var notification: NotificationRecord? = nil
            if record.ownerMachineID != actor.machineID {
                notification = try await repository.notify(
                    makeNotification(
                        record, kind: .comment, source: "comment:\(comment.commentID)",
                        summary: "New comment on your record from \(name).",
                        payload: ["comment_id": comment.commentID], at: now))
            }
            return (try await repository.counts(id, machine: nil), notification)
        }
        await publish(counts, notification)
        return comment
    }

    func comments(record id: String, cursor: String, limit: Int) async throws -> (
        comments: [CommentRecord], next: String
    ) {
        let limit = try pageSize(limit)
        let before = try Self.cursor(cursor)
        _ = try await lookup(id)
        let rows = try await database.withExecutor(logger: logger) {
            try await InteractionRepository($0).comments(of: id, before: before, limit: limit + 1)
        }
        let page = Array(rows.prefix(limit))
        let next = rows.count > limit ? page.last.map { Self.cursor($0.createdAt, $0.commentID) } ?? "" : ""
        return (page, next)
    }

    /// Soft delete by the author device or an operator; deleting twice is harmless.
    func deleteComment(_ id: String, actor: Participant) async throws -> CommentRecord {
        let now = clock.microsecondsSinceEpoch()
        let (comment, counts) = try await database.transaction(logger: logger) {
            sql -> (CommentRecord, ReactionCounts) in
            let repository = InteractionRepository(sql)
            guard var comment = try await repository.comment(id, lock: true) else {
                throw InteractionError.unknownComment
            }
            if !actor.isOperator {
                guard let author = comment.machineID else { throw InteractionError.anonymousComment }
                guard author == actor.machineID else { throw InteractionError.notAuthor }
            }
            if comment.deletedAt == nil {
                try await repository.markDeleted(id, at: now, by: actor.isOperator ? "operator" : actor.machineID ?? "")
                comment.deletedAt = now
                // Another's comment deleted by an operator is an operator action: audited with the deletion.
                if actor.isOperator, comment.machineID == nil || comment.machineID != actor.machineID {
                    try await AuditTrail.append(
                        sql, at: now, action: "comment.delete", target: id, reason: "",
                        details: try Self.json([
                            "record_id": comment.recordID, "author_name": comment.authorName,
                            "content": String(comment.content.prefix(500)),
                        ]))
                }
            }
            return (comment, try await repository.counts(comment.recordID, machine: nil))
        }
        await publish(counts, nil)
        logger.notice(
            "comment deleted", metadata: ["comment": "\(id)", "by": "\(actor.isOperator ? "operator" : "author")"])
        return comment
    }

    // MARK: flags

    func flag(_ target: FlagTarget, id: String, reason: String, actor: Participant) async throws -> FlagRecord {
        let reason = try CommentText.reason(reason)
        switch target {
        case .record:
            _ = try await lookup(id)
        case .comment:
            let comment = try await database.withExecutor(logger: logger) {
                try await InteractionRepository($0).comment(id)
            }
            guard comment != nil, comment?.deletedAt == nil else { throw InteractionError.unknownComment }
        }
        let flag = FlagRecord(
            flagID: random.bytes(12).hexEncoded, target: target, targetID: id, reason: reason,
            machineID: actor.machineID, ip: actor.ip, createdAt: clock.microsecondsSinceEpoch(), resolved: false)
        try await database.withExecutor(logger: logger) { try await InteractionRepository($0).insert(flag) }
        logger.notice("content flagged", metadata: ["target": "\(target.rawValue)", "id": "\(id)"])
        return flag
    }

    /// An operator closes an open flag, dismissed or actioned, with a note; audited in the same transaction.
    func resolve(flag id: String, resolution: String, note: String) async throws -> FlagRecord {
        guard ["dismissed", "actioned"].contains(resolution) else {
            throw InteractionError(
                code: "invalid_resolution", detail: "resolution must be dismissed or actioned.",
                status: .invalidArgument)
        }
        guard let note = AuditTrail.validReason(note) else {
            throw InteractionError(
                code: "invalid_note", detail: "A resolution needs a note of 1 to 2000 characters.",
                status: .invalidArgument)
        }
        let now = clock.microsecondsSinceEpoch()
        let flag = try await database.transaction(logger: logger) { sql -> FlagRecord in
            let repository = InteractionRepository(sql)
            guard let flag = try await repository.flag(id) else {
                throw InteractionError(code: "unknown_flag", detail: "No such flag.", status: .notFound)
            }
            guard try await repository.resolve(id, resolution: resolution, note: note, at: now) else {
                throw InteractionError(
                    code: "flag_resolved", detail: "This flag is already resolved.", status: .alreadyExists)
            }
            try await AuditTrail.append(
                sql, at: now, action: "flag.\(resolution == "dismissed" ? "dismiss" : "action")", target: id,
                reason: note,
                details: try Self.json([
                    "target": flag.target.rawValue, "target_id": flag.targetID, "reason": flag.reason,
                ]))
            var resolved = flag
            resolved.resolved = true
            resolved.resolution = resolution
            resolved.resolutionNote = note
            resolved.resolvedAt = now
            return resolved
        }
        logger.notice("flag resolved", metadata: ["flag": "\(id)", "resolution": "\(resolution)"])
        return flag
    }

    /// The audit log, oldest first, after `sequence`.
    func audit(after sequence: Int64, limit: Int) async throws -> [AuditEntry] {
        try await AuditTrail.read(database, logger: logger, after: sequence, limit: limit)
    }

    static func json(_ object: [String: String]) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }

    func flags(cursor: String, limit: Int, includeResolved: Bool) async throws -> (flags: [FlagRecord], next: String) {
        let limit = try pageSize(limit)
        let after = try Self.cursor(cursor)
        let rows = try await database.withExecutor(logger: logger) {
            try await InteractionRepository($0).flags(after: after, limit: limit + 1, includeResolved: includeResolved)
        }
        let page = Array(rows.prefix(limit))
        let next = rows.count > limit ? page.last.map { Self.cursor($0.createdAt, $0.flagID) } ?? "" : ""
        return (page, next)
    }

    // MARK: notifications

    func notifications(for machineID: String, since: UInt64, limit: Int, unreadOnly: Bool) async throws
        -> (notifications: [NotificationRecord], latest: UInt64)
    {
        let limit = try pageSize(limit)
        return try await database.withExecutor(logger: logger) { sql in
            let repository = InteractionRepository(sql)
            return (
                try await repository.notifications(for: machineID, since: since, limit: limit, unreadOnly: unreadOnly),
                try await repository.latestSequence(for: machineID)
            )
        }
    }

    func markRead(_ machineID: String, upTo sequence: UInt64) async throws -> Int {
        let now = clock.microsecondsSinceEpoch()
        return try await database.withExecutor(logger: logger) {
            try await InteractionRepository($0).markRead(machineID, upTo: sequence, at: now)
        }
    }

    /// A rank change on a global board (from RankingService's events) for the record's owner.
    func rankChanged(board: String, sequence: UInt64, recordID: String, oldRank: Int?, newRank: Int) async throws {
        guard let record = try? await lookup(recordID) else { return }  // deleted or unpublished since
        let now = clock.microsecondsSinceEpoch()
        let summary =
            oldRank.map { "Your record moved from #\($0) to #\(newRank)." }
            ?? "Your record entered the board at #\(newRank)."
        let notification = try await database.transaction(logger: logger) { sql in
            try await InteractionRepository(sql).notify(
                makeNotification(
                    record, kind: .rankChange, source: "rank:\(board):\(sequence)", summary: summary,
                    payload: ["old_rank": oldRank.map { "\($0)" } ?? "", "new_rank": "\(newRank)", "board": board],
                    at: now))
        }
        await publish(nil, notification)
    }

    private func makeNotification(
        _ record: RecordOwner, kind: NotificationKind, source: String, summary: String, payload: [String: String],
        at time: Int64
    ) -> NotificationRecord {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return NotificationRecord(
            machineID: record.ownerMachineID, sequence: 0, notificationID: random.bytes(12).hexEncoded, source: source,
            kind: kind, recordID: record.recordID, summary: summary,
            payloadJSON: String(decoding: (try? encoder.encode(payload)) ?? Data("{}".utf8), as: UTF8.self),
            createdAt: time)
    }

    /// After a commit: the new counts for caches and live boards, the notification for its owner's watchers.
    private func publish(_ counts: ReactionCounts?, _ notification: NotificationRecord?) async {
        if var counts {
            counts.mine = nil
            if let payload = try? JSONEncoder().encode(counts) {
                try? await events.publish(Array(payload), to: Self.countsChannel)
            }
        }
        if let notification {
            let wake = NotificationWake(machineID: notification.machineID, sequence: notification.sequence)
            if let payload = try? JSONEncoder().encode(wake) {
                try? await events.publish(Array(payload), to: Self.notificationChannel)
            }
        }
    }

    // MARK: paging

    func pageSize(_ requested: Int) throws(InteractionError) -> Int {
        if requested == 0 { return 50 }
        guard (1...Self.maximumPage).contains(requested) else { throw .invalidLimit }
        return requested
    }

    static func cursor(_ time: Int64, _ id: String) -> String { PageCursor.encode(["\(time)", id]) }

    static func cursor(_ text: String) throws(InteractionError) -> (Int64, String)? {
        guard !text.isEmpty else { return nil }
        guard let parts = PageCursor.parts(of: text, maximumLength: 256), parts.count == 2, let time = Int64(parts[0])
        else { throw .invalidCursor }
        return (time, parts[1])
    }
}

/// The bus message for a new notification.
struct NotificationWake: Sendable, Codable {
    var machineID: String
    var sequence: UInt64

    enum CodingKeys: String, CodingKey {
        case machineID = "machine_id"
        case sequence
    }
}
