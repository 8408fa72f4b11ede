import ServiceKit

/// The Auth tables, through one SQL executor (a transaction or a plain connection). The same statements run on
/// PostgreSQL and SQLite; the shared storage contract suite runs them on both.
struct AuthRepository: Sendable {
    let sql: any SQLExecutor

    init(_ sql: any SQLExecutor) {
        self.sql = sql
    }

    // MARK: devices

    static let deviceColumns = """
        machine_id, hardware_hash, gpu_hash, hardware_info, gpu_info, state, email, registered_at, verified_at, \
        activated_at, secret_rotated_at, secret_sealed, secret_hash, previous_secret_sealed, previous_secret_hash, \
        previous_valid_until
        """

    /// The device, locked for the rest of the transaction when `lock` is set (PostgreSQL).
    func device(_ machineID: String, lock: Bool = false) async throws -> DeviceRecord? {
        try await sql.first(
            "SELECT \(Self.deviceColumns) FROM devices WHERE machine_id = $1" + (lock ? sql.forUpdate : ""),
            [.text(machineID)]
        ).map(Self.device)
    }

    /// The device whose current secret, or previous secret still in its overlap, has this lookup hash.
    func device(secretHash: String, now: Int64) async throws -> DeviceRecord? {
        try await sql.first(
            """
            SELECT \(Self.deviceColumns) FROM devices
            WHERE secret_hash = $1 OR (previous_secret_hash = $1 AND previous_valid_until > $2)
            """,
            [.text(secretHash), .integer(now)]
        ).map(Self.device)
    }

    /// Inserts the device, or replaces every column of the existing row.
    func save(_ device: DeviceRecord) async throws {
        try await sql.execute(
            """
            INSERT INTO devices (\(Self.deviceColumns))
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
            ON CONFLICT (machine_id) DO UPDATE SET
                hardware_hash = excluded.hardware_hash, gpu_hash = excluded.gpu_hash,
                hardware_info = excluded.hardware_info, gpu_info = excluded.gpu_info, state = excluded.state,
                email = excluded.email, registered_at = excluded.registered_at, verified_at = excluded.verified_at,
                activated_at = excluded.activated_at, secret_rotated_at = excluded.secret_rotated_at,
                secret_sealed = excluded.secret_sealed, secret_hash = excluded.secret_hash,
                previous_secret_sealed = excluded.previous_secret_sealed,
                previous_secret_hash = excluded.previous_secret_hash,
                previous_valid_until = excluded.previous_valid_until
            """,
            [
                .text(device.machineID), .text(device.hardwareHash), .text(device.gpuHash), .text(device.hardwareInfo),
                .text(device.gpuInfo), .text(device.state.rawValue), SQLValue(device.email),
                .integer(device.registeredAt), SQLValue(device.verifiedAt), SQLValue(device.activatedAt),
                SQLValue(device.secretRotatedAt), SQLValue(device.secret?.sealed), SQLValue(device.secret?.hash),
                SQLValue(device.previousSecret?.sealed), SQLValue(device.previousSecret?.hash),
                SQLValue(device.previousValidUntil),
            ])
    }

    static func device(_ row: SQLRow) throws -> DeviceRecord {
        let stateText = try row.string("state")
        guard let state = DeviceState(rawValue: stateText) else {
            throw StorageError("unknown device state '\(stateText)'")
        }
        func secret(_ sealed: String, _ hash: String) throws -> StoredSecret? {
            guard let bytes = try row.optionalBytes(sealed), let hash = try row.optionalString(hash) else { return nil }
            return StoredSecret(sealed: bytes, hash: hash)
        }
        return DeviceRecord(
            machineID: try row.string("machine_id"), hardwareHash: try row.string("hardware_hash"),
            gpuHash: try row.string("gpu_hash"), hardwareInfo: try row.string("hardware_info"),
            gpuInfo: try row.string("gpu_info"), state: state, email: try row.optionalString("email"),
            registeredAt: try row.integer("registered_at"), verifiedAt: try row.optionalInteger("verified_at"),
            activatedAt: try row.optionalInteger("activated_at"),
            secretRotatedAt: try row.optionalInteger("secret_rotated_at"),
            secret: try secret("secret_sealed", "secret_hash"),
            previousSecret: try secret("previous_secret_sealed", "previous_secret_hash"),
            previousValidUntil: try row.optionalInteger("previous_valid_until"))
    }

    // MARK: registration codes

    func insert(_ code: RegistrationCodeRecord) async throws {
        try await sql.execute(
            "INSERT INTO registration_codes (code, machine_id, created_at, expires_at, used_at) VALUES ($1, $2, $3, $4, $5)",
            [
                .text(code.code), .text(code.machineID), .integer(code.createdAt), .integer(code.expiresAt),
                SQLValue(code.usedAt),
            ])
    }

    func code(_ code: String) async throws -> RegistrationCodeRecord? {
        try await sql.first(
            "SELECT code, machine_id, created_at, expires_at, used_at FROM registration_codes WHERE code = $1",
            [.text(code)]
        ).map { row in
            RegistrationCodeRecord(
                code: try row.string("code"), machineID: try row.string("machine_id"),
                createdAt: try row.integer("created_at"), expiresAt: try row.integer("expires_at"),
                usedAt: try row.optionalInteger("used_at"))
        }
    }

    func markUsed(code: String, at time: Int64) async throws {
        try await sql.execute(
            "UPDATE registration_codes SET used_at = $1 WHERE code = $2", [.integer(time), .text(code)])
    }

    /// Forgets the device's unused codes (a new registration supersedes them).
    func deleteUnusedCodes(machineID: String) async throws {
        try await sql.execute(
            "DELETE FROM registration_codes WHERE machine_id = $1 AND used_at IS NULL", [.text(machineID)])
    }

    // MARK: email verifications

    func insert(_ verification: EmailVerificationRecord) async throws {
        try await sql.execute(
            """
            INSERT INTO email_verifications (token_hash, machine_id, email, created_at, expires_at, confirmed_at)
            VALUES ($1, $2, $3, $4, $5, $6)
            """,
            [
                .text(verification.tokenHash), .text(verification.machineID), .text(verification.email),
                .integer(verification.createdAt), .integer(verification.expiresAt), SQLValue(verification.confirmedAt),
            ])
    }

    func verification(tokenHash: String) async throws -> EmailVerificationRecord? {
        try await sql.first(
            """
            SELECT token_hash, machine_id, email, created_at, expires_at, confirmed_at
            FROM email_verifications WHERE token_hash = $1
            """,
            [.text(tokenHash)]
        ).map { row in
            EmailVerificationRecord(
                tokenHash: try row.string("token_hash"), machineID: try row.string("machine_id"),
                email: try row.string("email"), createdAt: try row.integer("created_at"),
                expiresAt: try row.integer("expires_at"), confirmedAt: try row.optionalInteger("confirmed_at"))
        }
    }

    func confirm(tokenHash: String, at time: Int64) async throws {
        try await sql.execute(
            "UPDATE email_verifications SET confirmed_at = $1 WHERE token_hash = $2",
            [.integer(time), .text(tokenHash)])
    }

    func deleteVerification(tokenHash: String) async throws {
        try await sql.execute("DELETE FROM email_verifications WHERE token_hash = $1", [.text(tokenHash)])
    }

    func deleteUnconfirmedVerifications(machineID: String) async throws {
        try await sql.execute(
            "DELETE FROM email_verifications WHERE machine_id = $1 AND confirmed_at IS NULL", [.text(machineID)])
    }

    func verificationCount(machineID: String, since time: Int64) async throws -> Int {
        let row = try await sql.first(
            "SELECT COUNT(*) AS n FROM email_verifications WHERE machine_id = $1 AND created_at >= $2",
            [.text(machineID), .integer(time)])
        return Int(try row?.integer("n") ?? 0)
    }

    /// Verification mails sent to a recipient (``EmailAddress/mailboxKey(_:)``) since `time`.
    func mailCount(recipient: String, since time: Int64) async throws -> Int {
        let row = try await sql.first(
            "SELECT COUNT(*) AS n FROM verification_mails WHERE recipient = $1 AND sent_at >= $2",
            [.text(recipient), .integer(time)])
        return Int(try row?.integer("n") ?? 0)
    }

    /// Forgets a mail that could not be sent after all.
    func deleteMail(machineID: String, at time: Int64) async throws {
        try await sql.execute(
            "DELETE FROM verification_mails WHERE machine_id = $1 AND sent_at = $2", [.text(machineID), .integer(time)])
    }

    func recordMail(recipient: String, machineID: String, at time: Int64) async throws {
        try await sql.execute(
            "INSERT INTO verification_mails (recipient, machine_id, sent_at) VALUES ($1, $2, $3)",
            [.text(recipient), .text(machineID), .integer(time)])
    }

    // MARK: API keys

    static let keyColumns = """
        key_id, name, prefix, secret_hash, permissions, rate_limit_per_minute, created_at, expires_at, revoked_at, \
        last_used_at
        """

    func insert(_ key: APIKeyRecord) async throws {
        try await sql.execute(
            "INSERT INTO api_keys (\(Self.keyColumns)) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            [
                .text(key.id), .text(key.name), .text(key.prefix), .text(key.secretHash),
                .text(key.permissions.sorted().map(\.rawValue).joined(separator: ",")),
                .integer(Int64(key.rateLimitPerMinute)), .integer(key.createdAt), SQLValue(key.expiresAt),
                SQLValue(key.revokedAt), SQLValue(key.lastUsedAt),
            ])
    }

    func apiKey(id: String, lock: Bool = false) async throws -> APIKeyRecord? {
        try await sql.first(
            "SELECT \(Self.keyColumns) FROM api_keys WHERE key_id = $1" + (lock ? sql.forUpdate : ""), [.text(id)]
        ).map(Self.apiKey)
    }

    func apiKey(secretHash: String) async throws -> APIKeyRecord? {
        try await sql.first("SELECT \(Self.keyColumns) FROM api_keys WHERE secret_hash = $1", [.text(secretHash)])
            .map(Self.apiKey)
    }

    /// Keys ordered by id, after `cursor` (an id), at most `limit`.
    func apiKeys(after cursor: String, limit: Int, includeRevoked: Bool) async throws -> [APIKeyRecord] {
        try await sql.query(
            """
            SELECT \(Self.keyColumns) FROM api_keys
            WHERE key_id > $1 AND ($2 = 1 OR revoked_at IS NULL)
            ORDER BY key_id LIMIT $3
            """,
            [.text(cursor), .integer(includeRevoked ? 1 : 0), .integer(Int64(limit))]
        ).map(Self.apiKey)
    }

    func revokeAPIKey(id: String, at time: Int64) async throws {
        try await sql.execute(
            "UPDATE api_keys SET revoked_at = $1 WHERE key_id = $2 AND revoked_at IS NULL", [.integer(time), .text(id)])
    }

    func touchAPIKey(id: String, at time: Int64) async throws {
        try await sql.execute("UPDATE api_keys SET last_used_at = $1 WHERE key_id = $2", [.integer(time), .text(id)])
    }

    static func apiKey(_ row: SQLRow) throws -> APIKeyRecord {
        let permissions = try row.string("permissions").split(separator: ",").compactMap {
            Permission(rawValue: String($0))
        }
        return APIKeyRecord(
            id: try row.string("key_id"), name: try row.string("name"), prefix: try row.string("prefix"),
            secretHash: try row.string("secret_hash"), permissions: Set(permissions),
            rateLimitPerMinute: Int(try row.integer("rate_limit_per_minute")), createdAt: try row.integer("created_at"),
            expiresAt: try row.optionalInteger("expires_at"), revokedAt: try row.optionalInteger("revoked_at"),
            lastUsedAt: try row.optionalInteger("last_used_at"))
    }

    // MARK: metadata and housekeeping

    /// What one housekeeping pass removed.
    struct PurgeCounts: Sendable, Equatable {
        var codes = 0
        var verifications = 0
        var mails = 0
        var previousSecrets = 0
        var abandonedDevices = 0
    }

    /// Removes codes and links expired before `expiredBefore`, previous secrets whose overlap ended before `now`,
    /// and devices that never verified, registered before `abandonedBefore` and with no code left.
    func purge(now: Int64, expiredBefore: Int64, abandonedBefore: Int64) async throws -> PurgeCounts {
        var counts = PurgeCounts()
        counts.codes = try await sql.query(
            "DELETE FROM registration_codes WHERE expires_at < $1 RETURNING code", [.integer(expiredBefore)]
        ).count
        counts.verifications = try await sql.query(
            "DELETE FROM email_verifications WHERE expires_at < $1 RETURNING token_hash", [.integer(expiredBefore)]
        ).count
        counts.mails = try await sql.query(
            "DELETE FROM verification_mails WHERE sent_at < $1 RETURNING recipient", [.integer(now - 86_400_000_000)]
        ).count
        counts.previousSecrets = try await sql.query(
            """
            UPDATE devices SET previous_secret_sealed = NULL, previous_secret_hash = NULL, previous_valid_until = NULL
            WHERE previous_valid_until IS NOT NULL AND previous_valid_until <= $1 RETURNING machine_id
            """,
            [.integer(now)]
        ).count
        counts.abandonedDevices = try await sql.query(
            """
            DELETE FROM devices
            WHERE state IN ('registered', 'pending_email') AND registered_at < $1
              AND NOT EXISTS (SELECT 1 FROM registration_codes c WHERE c.machine_id = devices.machine_id)
            RETURNING machine_id
            """,
            [.integer(abandonedBefore)]
        ).count
        return counts
    }
}
