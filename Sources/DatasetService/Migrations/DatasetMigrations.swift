public import ServiceKit

/// The Dataset schema, one versioned step at a time (PostgreSQL schema `dataset`, SQLite file `dataset.sqlite`).
/// Times are BIGINT microseconds since the Unix epoch; flags BIGINT 0/1, on both backends.
public enum DatasetMigrations {
    public static let all: [Migration] = [
        Migration(
            version: 1, name: "dataset versions",
            postgres: statements(binary: "BYTEA"), sqlite: statements(binary: "BLOB")),
        AuditTrail.migration(version: 2),
    ]

    private static func statements(binary: String) -> [String] {
        [
            """
            CREATE TABLE dataset_versions (
                version TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                description TEXT NOT NULL,
                active BIGINT NOT NULL,
                created_at BIGINT NOT NULL,
                activated_at BIGINT,
                min_duration_seconds BIGINT NOT NULL,
                blob_prefix TEXT NOT NULL UNIQUE,
                content_key_sealed \(binary) NOT NULL,
                manifest TEXT NOT NULL
            )
            """,
            "CREATE INDEX dataset_versions_active ON dataset_versions (active, activated_at)",
            "CREATE TABLE dataset_metadata (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
        ]
    }
}
