public import ServiceKit

/// The Ranking schema, one versioned step at a time (PostgreSQL schema `ranking`, SQLite file `ranking.sqlite`).
/// Times are BIGINT microseconds since the Unix epoch; flags BIGINT 0/1; JSON documents TEXT, on both backends.
public enum RankingMigrations {
    public static let all: [Migration] = [
        Migration(
            version: 1, name: "sessions, samples, records, reviews, board events",
            postgres: statements(real: "DOUBLE PRECISION"), sqlite: statements(real: "REAL")),
        Migration(
            version: 2, name: "rule set v2: quantization, dataset challenges, catalog GPU, result fingerprints",
            postgres: antiCheat, sqlite: antiCheat),
        AuditTrail.migration(version: 3),
        Migration(
            version: 4, name: "metadata: master key fingerprint, the result encryption key",
            postgres: metadata, sqlite: metadata),
        Migration(
            version: 5, name: "pending promotions: accepted records waiting for their version's board writer",
            postgres: pendingPromotions, sqlite: pendingPromotions),
    ]

    /// A submit stores its accepted record and a row here; the version's board writer ranks pending records in
    /// batches and deletes their rows in the same transaction (docs/RANKING.md, "The board writer").
    private static let pendingPromotions = [
        """
        CREATE TABLE pending_promotions (
            record_id TEXT PRIMARY KEY,
            dataset_version TEXT NOT NULL,
            session_id TEXT NOT NULL,
            outcome TEXT NOT NULL,
            enqueued_at BIGINT NOT NULL
        )
        """,
        "CREATE INDEX pending_promotions_queue ON pending_promotions (dataset_version, enqueued_at, record_id)",
    ]

    /// Named values of the service: the master key's fingerprint and the sealed result key (docs/DEEPSTRESSMODEL.md).
    private static let metadata = ["CREATE TABLE ranking_metadata (name TEXT PRIMARY KEY, value TEXT NOT NULL)"]

    /// Columns rule set v2 judges by (docs/VALIDATION.md). Records judged before keep empty values, which v2's
    /// queries (peers by catalog GPU, identical figures) do not match.
    private static let antiCheat = [
        "ALTER TABLE sessions ADD COLUMN quantization TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE sessions ADD COLUMN challenge TEXT",
        "ALTER TABLE records ADD COLUMN quantization TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE records ADD COLUMN gpu_model TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE records ADD COLUMN gpu_count BIGINT NOT NULL DEFAULT 1",
        "ALTER TABLE records ADD COLUMN fingerprint TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE records ADD COLUMN test_started_at BIGINT NOT NULL DEFAULT 0",
        "ALTER TABLE records ADD COLUMN moderation_reason TEXT NOT NULL DEFAULT ''",
        "UPDATE records SET test_started_at = submitted_at",
        "CREATE INDEX records_fingerprint ON records (fingerprint)",
        "CREATE INDEX records_runs ON records (machine_id, submitted_at)",
        """
        CREATE INDEX records_catalog_peers ON records
            (dataset_version, framework, gpu_model, gpu_count, quantization, model_bucket, ranked)
        """,
    ]

    private static func statements(real: String) -> [String] {
        [
            """
            CREATE TABLE sessions (
                session_id TEXT PRIMARY KEY,
                machine_id TEXT NOT NULL,
                state TEXT NOT NULL,
                dataset_version TEXT NOT NULL,
                dataset_checksum TEXT NOT NULL,
                framework TEXT NOT NULL,
                model_name TEXT NOT NULL,
                model_params \(real) NOT NULL,
                framework_config TEXT NOT NULL,
                gpu_config TEXT NOT NULL,
                concurrent_count BIGINT NOT NULL,
                display_name TEXT NOT NULL,
                hardware_hash TEXT NOT NULL,
                gpu_hash TEXT NOT NULL,
                started_at BIGINT NOT NULL,
                expires_at BIGINT NOT NULL,
                submitted_at BIGINT,
                metrics_interval BIGINT NOT NULL,
                samples BIGINT NOT NULL,
                idempotency_key TEXT,
                body_sha256 TEXT,
                outcome TEXT,
                record_id TEXT
            )
            """,
            "CREATE INDEX sessions_submitted ON sessions (machine_id, submitted_at)",
            "CREATE INDEX sessions_expiry ON sessions (state, expires_at)",
            """
            CREATE TABLE metric_samples (
                session_id TEXT NOT NULL,
                seq BIGINT NOT NULL,
                at BIGINT NOT NULL,
                sample TEXT NOT NULL,
                PRIMARY KEY (session_id, seq)
            )
            """,
            """
            CREATE TABLE records (
                record_id TEXT PRIMARY KEY,
                session_id TEXT NOT NULL UNIQUE,
                machine_id TEXT NOT NULL,
                display_name TEXT NOT NULL,
                framework TEXT NOT NULL,
                model_name TEXT NOT NULL,
                model_params \(real) NOT NULL,
                model_bucket BIGINT NOT NULL,
                gpu_name TEXT NOT NULL,
                gpu_key TEXT NOT NULL,
                gpu_config TEXT NOT NULL,
                concurrent_count BIGINT NOT NULL,
                dataset_version TEXT NOT NULL,
                results TEXT NOT NULL,
                tps \(real) NOT NULL,
                score \(real) NOT NULL,
                score_parts TEXT NOT NULL,
                rule_set_version TEXT NOT NULL,
                performance \(real) NOT NULL,
                efficiency \(real) NOT NULL,
                stability \(real) NOT NULL,
                rank_key \(real) NOT NULL,
                submitted_at BIGINT NOT NULL,
                status TEXT NOT NULL,
                published BIGINT NOT NULL,
                ranked BIGINT NOT NULL
            )
            """,
            "CREATE INDEX records_board ON records (dataset_version, ranked, rank_key DESC, record_id DESC)",
            "CREATE INDEX records_owner ON records (machine_id, framework, dataset_version)",
            "CREATE INDEX records_peers ON records (dataset_version, framework, gpu_key, model_bucket, ranked)",
            """
            CREATE TABLE reviews (
                review_id TEXT PRIMARY KEY,
                session_id TEXT NOT NULL,
                record_id TEXT NOT NULL,
                machine_id TEXT NOT NULL,
                reasons TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                decision TEXT NOT NULL,
                note TEXT NOT NULL,
                decided_at BIGINT
            )
            """,
            "CREATE INDEX reviews_queue ON reviews (decision, created_at, review_id)",
            "CREATE TABLE boards (board TEXT PRIMARY KEY, sequence BIGINT NOT NULL)",
            """
            CREATE TABLE board_events (
                board TEXT NOT NULL,
                sequence BIGINT NOT NULL,
                at BIGINT NOT NULL,
                event TEXT NOT NULL,
                PRIMARY KEY (board, sequence)
            )
            """,
            """
            CREATE TABLE score_references (
                dataset_version TEXT PRIMARY KEY,
                tps \(real) NOT NULL,
                latency \(real) NOT NULL,
                tokens_per_joule \(real) NOT NULL,
                created_at BIGINT NOT NULL
            )
            """,
        ]
    }
}
