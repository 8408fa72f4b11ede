import Foundation
public import Logging
public import ServiceKit

/// Operator API keys: create, list, revoke, authenticate. Used by the RPC service and by `leaderboard admin keys`,
/// which talks to the database directly so the first admin key can exist before any key does.
public struct APIKeyAuthority: Sendable {
    let database: ServiceDatabase
    let logger: Logger
    let clock: any WallClock
    let random: any RandomSource

    public init(database: ServiceDatabase, logger: Logger, clock: any WallClock, random: any RandomSource) {
        self.database = database
        self.logger = logger
        self.clock = clock
        self.random = random
    }

    static let defaultPageSize = 50
    static let maximumPageSize = 200
    /// `last_used_at` is written at most this often per key, so authentication is not a write per request.
    static let lastUsedResolution: Int64 = 60 * 1_000_000

    /// Creates a key; the secret is returned here only, and stored as its SHA-256.
    public func create(
        name: String,
        permissions: Set<Permission>,
        rateLimitPerMinute: Int,
        expiresAt: Int64?
    ) async throws -> (key: APIKeyRecord, secret: String) {
        let trimmed = name.trimmingCharacters(in: .whitespaces)
        guard (1...APIKeyRecord.maximumNameLength).contains(trimmed.count),
            trimmed.unicodeScalars.allSatisfy({ $0.properties.generalCategory != .control })
        else { throw AuthError.invalid("invalid_name", "name must be 1 to 100 characters without control characters.") }
        guard !permissions.isEmpty else {
            throw AuthError.invalid("invalid_permissions", "at least one permission (read, write, admin) is needed.")
        }
        guard (0...1_000_000).contains(rateLimitPerMinute) else {
            throw AuthError.invalid("invalid_rate_limit", "rate_limit_per_minute must be 0 (default) to 1000000.")
        }
        let now = clock.microsecondsSinceEpoch()
        if let expiresAt, expiresAt <= now {
            throw AuthError.invalid("invalid_expiry", "expires_at must be in the future.")
        }
        let secret = SecretToken.generate(prefix: SecretToken.apiKeyPrefix, using: random)
        let key = APIKeyRecord(
            id: "key_" + random.bytes(8).hexEncoded, name: trimmed, prefix: String(secret.prefix(12)),
            secretHash: SecretToken.lookupHash(secret), permissions: permissions,
            rateLimitPerMinute: rateLimitPerMinute == 0 ? APIKeyRecord.defaultRateLimitPerMinute : rateLimitPerMinute,
            createdAt: now, expiresAt: expiresAt)
        let details =
            "{\"name\":\(Self.quoted(trimmed)),\"permissions\":\"\(permissions.sorted().map(\.rawValue).joined(separator: ","))\"}"
        try await database.transaction(logger: logger) { sql in
            try await AuthRepository(sql).insert(key)
            try await AuditTrail.append(
                sql, at: now, action: "apikey.create", target: key.id, reason: "", details: details)
        }
        logger.notice(
            "api key created",
            metadata: ["key_id": "\(key.id)", "permissions": "\(key.permissions.sorted().map { $0.rawValue })"])
        return (key, secret)
    }

    /// A JSON string literal.
    static func quoted(_ text: String) -> String {
        (try? JSONSerialization.data(withJSONObject: [text])).map {
            String(decoding: $0.dropFirst().dropLast(), as: UTF8.self)
        } ?? "\"\""
    }

    /// The audit log, oldest first, after `sequence`.
    public func audit(after sequence: Int64, limit: Int) async throws -> [AuditEntry] {
        try await AuditTrail.read(database, logger: logger, after: sequence, limit: limit)
    }

    /// One page of keys ordered by id; the cursor is the last id of the previous page.
    public func list(cursor: String, limit: Int, includeRevoked: Bool) async throws -> (
        keys: [APIKeyRecord], nextCursor: String
    ) {
        guard (0...Self.maximumPageSize).contains(limit) else {
            throw AuthError.invalid("invalid_limit", "limit must be 0 (default) to \(Self.maximumPageSize).")
        }
        guard cursor.isEmpty || (cursor.hasPrefix("key_") && cursor.utf8.count <= 40) else {
            throw AuthError.invalid("invalid_cursor", "The cursor is not one this server returned.")
        }
        let size = limit == 0 ? Self.defaultPageSize : limit
        let keys = try await database.withExecutor(logger: logger) { sql in
            try await AuthRepository(sql).apiKeys(after: cursor, limit: size + 1, includeRevoked: includeRevoked)
        }
        let page = Array(keys.prefix(size))
        return (page, keys.count > size ? page.last?.id ?? "" : "")
    }

    /// Revokes the key (again: no change). Unknown ids are `unknown_api_key`.
    public func revoke(id: String) async throws -> APIKeyRecord {
        let now = clock.microsecondsSinceEpoch()
        let key = try await database.transaction(logger: logger) { sql in
            let repository = AuthRepository(sql)
            guard var key = try await repository.apiKey(id: id, lock: true) else { throw AuthError.unknownAPIKey }
            if key.revokedAt == nil {
                try await repository.revokeAPIKey(id: id, at: now)
                key.revokedAt = now
                try await AuditTrail.append(sql, at: now, action: "apikey.revoke", target: id, reason: "")
            }
            return key
        }
        logger.notice("api key revoked", metadata: ["key_id": "\(id)"])
        return key
    }

    /// The key behind a Bearer token, if it is usable for `needed`; records when it was last used.
    public func authenticate(secret: String, needed: Permission) async throws -> APIKeyRecord {
        guard secret.hasPrefix(SecretToken.apiKeyPrefix), secret.utf8.count < 128 else { throw AuthError.invalidAPIKey }
        let now = clock.microsecondsSinceEpoch()
        let hash = SecretToken.lookupHash(secret)
        let found = try await database.withExecutor(logger: logger) {
            try await AuthRepository($0).apiKey(secretHash: hash)
        }
        // The lookup is by hash, so a match is exact; compare anyway so no early exit depends on the secret.
        guard var key = found, constantTimeEqual(Array(key.secretHash.utf8), Array(hash.utf8)) else {
            throw AuthError.invalidAPIKey
        }
        try key.authorize(needed, now: now)
        if now - (key.lastUsedAt ?? 0) >= Self.lastUsedResolution {
            let id = key.id
            try await database.withExecutor(logger: logger) {
                try await AuthRepository($0).touchAPIKey(id: id, at: now)
            }
            key.lastUsedAt = now
        }
        return key
    }
}
