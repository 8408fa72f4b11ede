import Foundation
import ServiceKit

/// The Interaction target's SQL, one statement set for PostgreSQL and SQLite.
struct InteractionRepository {
    let sql: any SQLExecutor

    init(_ sql: any SQLExecutor) { self.sql = sql }

    // MARK: reactions

    /// Sets (or switches) a device's reaction; returns the kind it had before.
    func setReaction(_ kind: ReactionKind, record: String, machine: String, at time: Int64) async throws
        -> ReactionKind?
    {
        let previous = try await reaction(record: record, machine: machine, lock: true)
        try await sql.execute(
            """
            INSERT INTO reactions (record_id, machine_id, kind, updated_at) VALUES ($1, $2, $3, $4)
            ON CONFLICT (record_id, machine_id) DO UPDATE SET kind = $3, updated_at = $4
            """, [.text(record), .text(machine), .text(kind.rawValue), .integer(time)])
        return previous
    }

    func removeReaction(record: String, machine: String) async throws -> Bool {
        !(try await sql.execute(
            "DELETE FROM reactions WHERE record_id = $1 AND machine_id = $2 RETURNING kind",
            [.text(record), .text(machine)]
        ).isEmpty)
    }

    func reaction(record: String, machine: String, lock: Bool = false) async throws -> ReactionKind? {
        try await sql.first(
            "SELECT kind FROM reactions WHERE record_id = $1 AND machine_id = $2\(lock ? sql.forUpdate : "")",
            [.text(record), .text(machine)]
        ).flatMap { ReactionKind(rawValue: try $0.string("kind")) }
    }

    /// Counted from the rows themselves, so concurrent reactions can never leave a counter behind.
    func counts(_ record: String, machine: String?) async throws -> ReactionCounts {
        var counts = ReactionCounts(recordID: record)
        for row in try await sql.execute(
            "SELECT kind, COUNT(*) AS n FROM reactions WHERE record_id = $1 GROUP BY kind", [.text(record)])
        {
            switch ReactionKind(rawValue: try row.string("kind")) {
            case .like: counts.likes = Int(try row.integer("n"))
            case .dislike: counts.dislikes = Int(try row.integer("n"))
            case nil: break
            }
        }
        counts.comments = Int(
            try await sql.first(
                "SELECT COUNT(*) AS n FROM comments WHERE record_id = $1 AND deleted_at IS NULL", [.text(record)]
            )?.integer("n") ?? 0)
        if let machine { counts.mine = try await reaction(record: record, machine: machine) }
        return counts
    }

    // MARK: comments

    static let commentColumns = "comment_id, record_id, machine_id, author_name, content, ip, created_at, deleted_at"

    func insert(_ comment: CommentRecord) async throws {
        try await sql.execute(
            "INSERT INTO comments (\(Self.commentColumns)) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            [
                .text(comment.commentID), .text(comment.recordID), SQLValue(comment.machineID),
                .text(comment.authorName), .text(comment.content), .text(comment.ip), .integer(comment.createdAt),
                SQLValue(comment.deletedAt),
            ])
    }

    func comment(_ id: String, lock: Bool = false) async throws -> CommentRecord? {
        try await sql.first(
            "SELECT \(Self.commentColumns) FROM comments WHERE comment_id = $1\(lock ? sql.forUpdate : "")", [.text(id)]
        ).map(Self.comment)
    }

    func markDeleted(_ id: String, at time: Int64, by who: String) async throws {
        try await sql.execute(
            "UPDATE comments SET deleted_at = $2, deleted_by = $3 WHERE comment_id = $1",
            [.text(id), .integer(time), .text(who)])
    }

    /// Visible comments of a record, newest first, after a (created_at, id) cursor.
    func comments(of record: String, before cursor: (Int64, String)?, limit: Int) async throws -> [CommentRecord] {
        let (time, id) = cursor ?? (Int64.max, "")
        let after = cursor == nil ? "" : " AND (created_at < $2 OR (created_at = $2 AND comment_id < $3))"
        let binds: [SQLValue] =
            cursor == nil
            ? [.text(record), .integer(Int64(limit))]
            : [.text(record), .integer(time), .text(id), .integer(Int64(limit))]
        return try await sql.execute(
            """
            SELECT \(Self.commentColumns) FROM comments WHERE record_id = $1 AND deleted_at IS NULL\(after)
            ORDER BY created_at DESC, comment_id DESC LIMIT $\(binds.count)
            """, binds
        ).map(Self.comment)
    }

    static func comment(_ row: SQLRow) throws -> CommentRecord {
        CommentRecord(
            commentID: try row.string("comment_id"), recordID: try row.string("record_id"),
            machineID: try row.optionalString("machine_id"), authorName: try row.string("author_name"),
            content: try row.string("content"), ip: try row.string("ip"), createdAt: try row.integer("created_at"),
            deletedAt: try row.optionalInteger("deleted_at"))
    }

    // MARK: flags

    func insert(_ flag: FlagRecord) async throws {
        try await sql.execute(
            """
            INSERT INTO flags (flag_id, target, target_id, reason, machine_id, ip, created_at, resolved)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            """,
            [
                .text(flag.flagID), .text(flag.target.rawValue), .text(flag.targetID), .text(flag.reason),
                SQLValue(flag.machineID), .text(flag.ip), .integer(flag.createdAt), .integer(flag.resolved ? 1 : 0),
            ])
    }

    /// Oldest first, after a (created_at, id) cursor.
    func flags(after cursor: (Int64, String)?, limit: Int, includeResolved: Bool) async throws -> [FlagRecord] {
        let (time, id) = cursor ?? (Int64.min, "")
        return try await sql.execute(
            """
            SELECT * FROM flags WHERE (created_at > $1 OR (created_at = $1 AND flag_id > $2))\(includeResolved ? "" : " AND resolved = 0")
            ORDER BY created_at, flag_id LIMIT $3
            """, [.integer(time), .text(id), .integer(Int64(limit))]
        ).map(Self.flag)
    }

    func flag(_ flagID: String) async throws -> FlagRecord? {
        try await sql.first("SELECT * FROM flags WHERE flag_id = $1", [.text(flagID)]).map(Self.flag)
    }

    static func flag(_ row: SQLRow) throws -> FlagRecord {
        FlagRecord(
            flagID: try row.string("flag_id"), target: FlagTarget(rawValue: try row.string("target")) ?? .record,
            targetID: try row.string("target_id"), reason: try row.string("reason"),
            machineID: try row.optionalString("machine_id"), ip: try row.string("ip"),
            createdAt: try row.integer("created_at"), resolved: try row.integer("resolved") == 1,
            resolution: try row.string("resolution"), resolutionNote: try row.string("resolution_note"),
            resolvedAt: try row.optionalInteger("resolved_at"))
    }

    /// Resolves an open flag; false when there is no such open flag.
    func resolve(_ flagID: String, resolution: String, note: String, at time: Int64) async throws -> Bool {
        !(try await sql.execute(
            """
            UPDATE flags SET resolved = 1, resolution = $2, resolution_note = $3, resolved_at = $4
            WHERE flag_id = $1 AND resolved = 0 RETURNING flag_id
            """, [.text(flagID), .text(resolution), .text(note), .integer(time)]
        ).isEmpty)
    }

    // MARK: notifications

    /// Stores a notification unless one from the same source exists; numbers it next for its machine. The
    /// machine's sequence row stays locked until the transaction ends, so numbers follow commit order.
    /// Forgets notifications created before `time`, read or not (the per-machine sequence stays, so numbering goes on).
    func purgeNotifications(before time: Int64) async throws -> Int {
        try await sql.execute(
            "DELETE FROM notifications WHERE created_at < $1 RETURNING sequence", [.integer(time)]
        ).count
    }

    /// Forgets flags resolved before `time`; open flags stay whatever their age.
    func purgeResolvedFlags(before time: Int64) async throws -> Int {
        try await sql.execute(
            "DELETE FROM flags WHERE resolved <> 0 AND COALESCE(resolved_at, created_at) < $1 RETURNING flag_id",
            [.integer(time)]
        ).count
    }

    func notify(_ notification: NotificationRecord) async throws -> NotificationRecord? {
        try await sql.execute(
            "INSERT INTO notification_sequences (machine_id, sequence) VALUES ($1, 0) ON CONFLICT (machine_id) DO NOTHING",
            [.text(notification.machineID)])
        guard
            let row = try await sql.first(
                "SELECT sequence FROM notification_sequences WHERE machine_id = $1\(sql.forUpdate)",
                [.text(notification.machineID)])
        else { return nil }
        let exists = try await sql.first(
            "SELECT sequence FROM notifications WHERE machine_id = $1 AND source = $2",
            [.text(notification.machineID), .text(notification.source)])
        guard exists == nil else { return nil }
        var numbered = notification
        numbered.sequence = UInt64(try row.integer("sequence")) + 1
        try await sql.execute(
            "UPDATE notification_sequences SET sequence = $2 WHERE machine_id = $1",
            [.text(numbered.machineID), .integer(Int64(numbered.sequence))])
        try await sql.execute(
            """
            INSERT INTO notifications (machine_id, sequence, notification_id, source, kind, record_id, summary, payload,
                created_at, read_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            """,
            [
                .text(numbered.machineID), .integer(Int64(numbered.sequence)), .text(numbered.notificationID),
                .text(numbered.source), .text(numbered.kind.rawValue), .text(numbered.recordID),
                .text(numbered.summary), .text(numbered.payloadJSON), .integer(numbered.createdAt),
                SQLValue(numbered.readAt),
            ])
        return numbered
    }

    func notifications(for machine: String, since: UInt64, limit: Int, unreadOnly: Bool) async throws
        -> [NotificationRecord]
    {
        try await sql.execute(
            """
            SELECT * FROM notifications WHERE machine_id = $1 AND sequence > $2\(unreadOnly ? " AND read_at IS NULL" : "")
            ORDER BY sequence LIMIT $3
            """, [.text(machine), .integer(Int64(since)), .integer(Int64(limit))]
        ).map {
            NotificationRecord(
                machineID: try $0.string("machine_id"), sequence: UInt64(try $0.integer("sequence")),
                notificationID: try $0.string("notification_id"), source: try $0.string("source"),
                kind: NotificationKind(rawValue: try $0.string("kind")) ?? .comment,
                recordID: try $0.string("record_id"), summary: try $0.string("summary"),
                payloadJSON: try $0.string("payload"), createdAt: try $0.integer("created_at"),
                readAt: try $0.optionalInteger("read_at"))
        }
    }

    func latestSequence(for machine: String) async throws -> UInt64 {
        UInt64(
            try await sql.first(
                "SELECT sequence FROM notification_sequences WHERE machine_id = $1", [.text(machine)]
            )?.integer("sequence") ?? 0)
    }

    func markRead(_ machine: String, upTo sequence: UInt64, at time: Int64) async throws -> Int {
        try await sql.execute(
            """
            UPDATE notifications SET read_at = $3 WHERE machine_id = $1 AND sequence <= $2 AND read_at IS NULL
            RETURNING sequence
            """, [.text(machine), .integer(Int64(sequence)), .integer(time)]
        ).count
    }
}
