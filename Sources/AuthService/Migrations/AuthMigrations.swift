public import ServiceKit

/// The Auth schema, one versioned step at a time (PostgreSQL schema `auth`, SQLite file `auth.sqlite`).
/// Times are BIGINT microseconds since the Unix epoch on both backends.
public enum AuthMigrations {
    public static let all: [Migration] = [
        Migration(
            version: 1, name: "devices, codes, email verifications, api keys",
            postgres: statements(binary: "BYTEA"), sqlite: statements(binary: "BLOB")),
        Migration(
            version: 2, name: "verification mails per recipient",
            postgres: verificationMails, sqlite: verificationMails),
        AuditTrail.migration(version: 3),
        Migration(version: 4, name: "client API keys", postgres: clientKeys, sqlite: clientKeys),
    ]

    /// DeepStressModel API keys of devices (docs/DEEPSTRESSMODEL.md): the SHA-256 of each key, never the key.
    private static let clientKeys = [
        """
        CREATE TABLE client_keys (
            key_id TEXT PRIMARY KEY,
            machine_id TEXT NOT NULL,
            name TEXT NOT NULL,
            prefix TEXT NOT NULL,
            key_hash TEXT NOT NULL UNIQUE,
            created_at BIGINT NOT NULL,
            revoked_at BIGINT,
            last_used_at BIGINT
        )
        """,
        "CREATE INDEX client_keys_device ON client_keys (machine_id, created_at)",
    ]

    /// One row per verification mail sent, for the daily limit per recipient (SHA-256 of the mailbox, never the
    /// address); rows older than a day are purged.
    private static let verificationMails = [
        """
        CREATE TABLE verification_mails (
            recipient TEXT NOT NULL,
            machine_id TEXT NOT NULL,
            sent_at BIGINT NOT NULL
        )
        """,
        "CREATE INDEX verification_mails_recipient ON verification_mails (recipient, sent_at)",
        "CREATE INDEX verification_mails_sent ON verification_mails (sent_at)",
    ]

    private static func statements(binary: String) -> [String] {
        [
            """
            CREATE TABLE devices (
                machine_id TEXT PRIMARY KEY,
                hardware_hash TEXT NOT NULL,
                gpu_hash TEXT NOT NULL,
                hardware_info TEXT NOT NULL,
                gpu_info TEXT NOT NULL,
                state TEXT NOT NULL,
                email TEXT,
                registered_at BIGINT NOT NULL,
                verified_at BIGINT,
                activated_at BIGINT,
                secret_rotated_at BIGINT,
                secret_sealed \(binary),
                secret_hash TEXT UNIQUE,
                previous_secret_sealed \(binary),
                previous_secret_hash TEXT,
                previous_valid_until BIGINT
            )
            """,
            "CREATE INDEX devices_previous_secret_hash ON devices (previous_secret_hash)",
            "CREATE INDEX devices_unverified ON devices (state, registered_at)",
            """
            CREATE TABLE registration_codes (
                code TEXT PRIMARY KEY,
                machine_id TEXT NOT NULL REFERENCES devices (machine_id) ON DELETE CASCADE,
                created_at BIGINT NOT NULL,
                expires_at BIGINT NOT NULL,
                used_at BIGINT
            )
            """,
            "CREATE INDEX registration_codes_machine ON registration_codes (machine_id)",
            "CREATE INDEX registration_codes_expiry ON registration_codes (expires_at)",
            """
            CREATE TABLE email_verifications (
                token_hash TEXT PRIMARY KEY,
                machine_id TEXT NOT NULL REFERENCES devices (machine_id) ON DELETE CASCADE,
                email TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                expires_at BIGINT NOT NULL,
                confirmed_at BIGINT
            )
            """,
            "CREATE INDEX email_verifications_machine ON email_verifications (machine_id, created_at)",
            "CREATE INDEX email_verifications_expiry ON email_verifications (expires_at)",
            """
            CREATE TABLE api_keys (
                key_id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                prefix TEXT NOT NULL,
                secret_hash TEXT NOT NULL UNIQUE,
                permissions TEXT NOT NULL,
                rate_limit_per_minute BIGINT NOT NULL,
                created_at BIGINT NOT NULL,
                expires_at BIGINT,
                revoked_at BIGINT,
                last_used_at BIGINT
            )
            """,
            "CREATE TABLE auth_metadata (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
        ]
    }
}
