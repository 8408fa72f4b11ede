public import ServiceKit

/// The Interaction schema, one versioned step at a time (PostgreSQL schema `interaction`, SQLite file
/// `interaction.sqlite`). Times are BIGINT microseconds since the Unix epoch, on both backends.
public enum InteractionMigrations {
    public static let all: [Migration] = [
        Migration(
            version: 1, name: "reactions, comments, flags, notifications", postgres: statements, sqlite: statements),
        AuditTrail.migration(version: 2),
        Migration(version: 3, name: "flag resolutions", postgres: resolutions, sqlite: resolutions),
    ]

    private static let resolutions = [
        "ALTER TABLE flags ADD COLUMN resolution TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE flags ADD COLUMN resolution_note TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE flags ADD COLUMN resolved_at BIGINT",
    ]

    private static let statements = [
        """
        CREATE TABLE reactions (
            record_id TEXT NOT NULL,
            machine_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            updated_at BIGINT NOT NULL,
            PRIMARY KEY (record_id, machine_id)
        )
        """,
        "CREATE INDEX reactions_counts ON reactions (record_id, kind)",
        """
        CREATE TABLE comments (
            comment_id TEXT PRIMARY KEY,
            record_id TEXT NOT NULL,
            machine_id TEXT,
            author_name TEXT NOT NULL,
            content TEXT NOT NULL,
            ip TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            deleted_at BIGINT,
            deleted_by TEXT
        )
        """,
        "CREATE INDEX comments_record ON comments (record_id, created_at, comment_id)",
        """
        CREATE TABLE flags (
            flag_id TEXT PRIMARY KEY,
            target TEXT NOT NULL,
            target_id TEXT NOT NULL,
            reason TEXT NOT NULL,
            machine_id TEXT,
            ip TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            resolved BIGINT NOT NULL
        )
        """,
        "CREATE INDEX flags_queue ON flags (resolved, created_at, flag_id)",
        "CREATE TABLE notification_sequences (machine_id TEXT PRIMARY KEY, sequence BIGINT NOT NULL)",
        """
        CREATE TABLE notifications (
            machine_id TEXT NOT NULL,
            sequence BIGINT NOT NULL,
            notification_id TEXT NOT NULL UNIQUE,
            source TEXT NOT NULL,
            kind TEXT NOT NULL,
            record_id TEXT NOT NULL,
            summary TEXT NOT NULL,
            payload TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            read_at BIGINT,
            PRIMARY KEY (machine_id, sequence),
            UNIQUE (machine_id, source)
        )
        """,
    ]
}
