import Foundation
public import GRPCCore
public import Logging

/// One operator action as the audit log keeps it.
public struct AuditEntry: Sendable, Equatable {
    /// Increasing, without reuse, per service.
    public var sequence: Int64
    /// Microseconds since the Unix epoch.
    public var at: Int64
    /// Who: `operator:<key id>` for a call made with an operator key, else `system`.
    public var actor: String
    /// What, e.g. `record.hide`, `review.approve`, `flag.resolve`.
    public var action: String
    /// On what: the id of the record, review, comment, flag, key or dataset version.
    public var target: String
    /// Why, as the operator wrote it ("" when the action takes no reason).
    public var reason: String
    /// Compact JSON of what else matters (the state before, the outcome); "" for nothing.
    public var details: String

    public init(
        sequence: Int64 = 0, at: Int64, actor: String, action: String, target: String, reason: String,
        details: String = ""
    ) {
        self.sequence = sequence
        self.at = at
        self.actor = actor
        self.action = action
        self.target = target
        self.reason = reason
        self.details = details
    }
}

/// The append-only audit log of operator actions (docs/GOVERNANCE.md). Each service keeps its own, in its own
/// database, and writes an entry in the same transaction as the action it records, so there is no action without
/// its entry and no entry for an action that was undone. The database refuses to change or delete an entry
/// (triggers on both backends); nothing in the code tries.
public enum AuditTrail {
    /// The table and its guards, as a migration step of the service's own schema.
    public static func migration(version: Int) -> Migration {
        Migration(
            version: version, name: "append-only audit log",
            postgres: [
                """
                CREATE TABLE audit_log (
                    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    at BIGINT NOT NULL,
                    actor TEXT NOT NULL,
                    action TEXT NOT NULL,
                    target TEXT NOT NULL,
                    reason TEXT NOT NULL,
                    details TEXT NOT NULL
                )
                """,
                """
                CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    RAISE EXCEPTION 'audit_log is append-only';
                END
                $$
                """,
                """
                CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
                    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()
                """,
                "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log EXECUTE FUNCTION audit_log_append_only()",
            ],
            sqlite: [
                """
                CREATE TABLE audit_log (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    at BIGINT NOT NULL,
                    actor TEXT NOT NULL,
                    action TEXT NOT NULL,
                    target TEXT NOT NULL,
                    reason TEXT NOT NULL,
                    details TEXT NOT NULL
                )
                """,
                """
                CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
                BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END
                """,
                """
                CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
                BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END
                """,
            ])
    }

    /// Who is acting: the operator key of the call being served, or the system.
    public static var actor: String { OperatorContext.current.map { "operator:\($0.keyID)" } ?? "system" }

    /// Records one action; call it inside the transaction that performs it.
    public static func append(
        _ sql: any SQLExecutor, at: Int64, action: String, target: String, reason: String, details: String = ""
    ) async throws {
        try await sql.execute(
            "INSERT INTO audit_log (at, actor, action, target, reason, details) VALUES ($1, $2, $3, $4, $5, $6)",
            [.integer(at), .text(actor), .text(action), .text(target), .text(reason), .text(details)])
    }

    /// Entries after `sequence`, oldest first.
    public static func entries(_ sql: any SQLExecutor, after sequence: Int64, limit: Int) async throws -> [AuditEntry] {
        try await sql.execute(
            """
            SELECT seq, at, actor, action, target, reason, details FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2
            """, [.integer(sequence), .integer(Int64(limit))]
        ).map { row in
            AuditEntry(
                sequence: try row.integer("seq"), at: try row.integer("at"), actor: try row.string("actor"),
                action: try row.string("action"), target: try row.string("target"), reason: try row.string("reason"),
                details: try row.string("details"))
        }
    }

    /// A page of the log for an operator: entries after `sequence`, oldest first; `limit` 1–500, 0 for 100.
    public static func read(_ database: ServiceDatabase, logger: Logger, after sequence: Int64, limit: Int)
        async throws -> [AuditEntry]
    {
        let limit = limit == 0 ? 100 : limit
        guard (1...500).contains(limit), sequence >= 0 else { throw AuditQueryError() }
        return try await database.withExecutor(logger: logger) { try await entries($0, after: sequence, limit: limit) }
    }

    /// A reason an operator gives: 1–2000 characters after trimming.
    public static func validReason(_ text: String) -> String? {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return (1...2000).contains(trimmed.count) ? trimmed : nil
    }
}

/// A page of the audit log asked for with a bad limit or sequence.
public struct AuditQueryError: CodedServiceError, Sendable {
    public let code = "invalid_limit"
    public let detail = "limit must be 1 to 500 (0: 100) and after_sequence at least 0."
    public let status = RPCError.Code.invalidArgument
}
