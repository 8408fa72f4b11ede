import Foundation
import GRPCCore
import Logging
import ServiceKit

/// A device's DeepStressModel API key as stored (the key itself is shown once and kept only as its SHA-256).
struct ClientKeyRecord: Sendable, Equatable {
    var keyID: String
    var machineID: String
    var name: String
    var prefix: String
    var keyHash: String
    var createdAt: Int64
    var revokedAt: Int64?
    var lastUsedAt: Int64?
}

/// DeepStressModel API keys (docs/DEEPSTRESSMODEL.md): an active device makes revocable keys of its own for clients
/// that authenticate with `X-API-Key` and cannot sign requests; a result sent with one counts as that device's.
/// The device secret itself stays out of such clients.
struct ClientKeyAuthority: Sendable {
    let database: ServiceDatabase
    let logger: Logger
    let clock: any WallClock
    let random: any RandomSource

    static let prefix = "dsm_"
    /// Live keys one device may hold at once.
    static let maximumLiveKeys = 5
    /// `last_used_at` is written at most this often per key.
    static let lastUsedResolution: Int64 = 60 * 1_000_000

    /// A new key for an active device: `dsm_` and 43 base64url characters (256 random bits), 47 characters in all.
    func create(machineID: String, name: String) async throws -> (key: ClientKeyRecord, apiKey: String) {
        let name = name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard name.count <= 100, name.unicodeScalars.allSatisfy({ $0.properties.generalCategory != .control }) else {
            throw AuthError.invalid("invalid_name", "name must be at most 100 characters without control characters.")
        }
        let now = clock.microsecondsSinceEpoch()
        let apiKey = SecretToken.generate(prefix: Self.prefix, using: random)
        let key = ClientKeyRecord(
            keyID: "ck_" + random.bytes(8).hexEncoded, machineID: machineID,
            name: name.isEmpty ? "DeepStressModel" : name, prefix: String(apiKey.prefix(10)),
            keyHash: SecretToken.lookupHash(apiKey), createdAt: now)
        try await database.transaction(logger: logger) { sql in
            let repository = AuthRepository(sql)
            guard let device = try await repository.device(machineID, lock: true) else {
                throw AuthError.unknownDevice
            }
            try device.state.requireActive()
            guard try await repository.liveClientKeys(of: machineID) < Self.maximumLiveKeys else {
                throw AuthError(
                    code: "too_many_client_keys",
                    detail: "A device holds at most \(Self.maximumLiveKeys) live client keys; revoke one first.",
                    status: .failedPrecondition)
            }
            try await repository.insert(key)
        }
        logger.notice("client key created", metadata: ["machine": "\(machineID)", "key_id": "\(key.keyID)"])
        return (key, apiKey)
    }

    func list(machineID: String, includeRevoked: Bool) async throws -> [ClientKeyRecord] {
        try await database.withExecutor(logger: logger) {
            try await AuthRepository($0).clientKeys(of: machineID, includeRevoked: includeRevoked)
        }
    }

    /// Revokes a key (again: no change). With a machine id, only that device's key; without, any key — the caller
    /// has checked it is an operator, and the revocation is audited.
    func revoke(keyID: String, machineID: String?) async throws -> ClientKeyRecord {
        let now = clock.microsecondsSinceEpoch()
        let key = try await database.transaction(logger: logger) { sql -> ClientKeyRecord in
            let repository = AuthRepository(sql)
            guard var key = try await repository.clientKey(id: keyID, lock: true),
                machineID == nil || key.machineID == machineID
            else {
                throw AuthError(code: "unknown_client_key", detail: "No such client key.", status: .notFound)
            }
            if key.revokedAt == nil {
                try await repository.revokeClientKey(id: keyID, at: now)
                key.revokedAt = now
                if machineID == nil {
                    try await AuditTrail.append(
                        sql, at: now, action: "clientkey.revoke", target: keyID, reason: "",
                        details: "{\"machine_id\":\"\(key.machineID)\"}")
                }
            }
            return key
        }
        logger.notice("client key revoked", metadata: ["key_id": "\(keyID)"])
        return key
    }

    /// The active device behind a live key.
    func authenticate(apiKey: String) async throws -> ClientKeyRecord {
        guard apiKey.hasPrefix(Self.prefix), apiKey.utf8.count < 128 else { throw AuthError.invalidAPIKey }
        let now = clock.microsecondsSinceEpoch()
        let hash = SecretToken.lookupHash(apiKey)
        let (key, device) = try await database.withExecutor(logger: logger) { sql in
            let repository = AuthRepository(sql)
            guard let key = try await repository.clientKey(hash: hash), key.revokedAt == nil else {
                throw AuthError.invalidAPIKey
            }
            return (key, try await repository.device(key.machineID))
        }
        guard let device else { throw AuthError.invalidAPIKey }
        try device.state.requireActive()
        if now - (key.lastUsedAt ?? 0) >= Self.lastUsedResolution {
            let id = key.keyID
            try await database.withExecutor(logger: logger) {
                try await AuthRepository($0).touchClientKey(id: id, at: now)
            }
        }
        return key
    }
}

extension AuthRepository {
    static let clientKeyColumns =
        "key_id, machine_id, name, prefix, key_hash, created_at, revoked_at, last_used_at"

    func insert(_ key: ClientKeyRecord) async throws {
        try await sql.execute(
            "INSERT INTO client_keys (\(Self.clientKeyColumns)) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            [
                .text(key.keyID), .text(key.machineID), .text(key.name), .text(key.prefix), .text(key.keyHash),
                .integer(key.createdAt), SQLValue(key.revokedAt), SQLValue(key.lastUsedAt),
            ])
    }

    func clientKey(id: String, lock: Bool = false) async throws -> ClientKeyRecord? {
        try await sql.first(
            "SELECT \(Self.clientKeyColumns) FROM client_keys WHERE key_id = $1" + (lock ? sql.forUpdate : ""),
            [.text(id)]
        ).map(Self.clientKey)
    }

    func clientKey(hash: String) async throws -> ClientKeyRecord? {
        try await sql.first(
            "SELECT \(Self.clientKeyColumns) FROM client_keys WHERE key_hash = $1", [.text(hash)]
        ).map(Self.clientKey)
    }

    func clientKeys(of machineID: String, includeRevoked: Bool) async throws -> [ClientKeyRecord] {
        try await sql.execute(
            """
            SELECT \(Self.clientKeyColumns) FROM client_keys WHERE machine_id = $1\(includeRevoked ? "" : " AND revoked_at IS NULL")
            ORDER BY created_at, key_id
            """, [.text(machineID)]
        ).map(Self.clientKey)
    }

    func liveClientKeys(of machineID: String) async throws -> Int {
        Int(
            try await sql.first(
                "SELECT COUNT(*) AS n FROM client_keys WHERE machine_id = $1 AND revoked_at IS NULL", [.text(machineID)]
            )?.integer("n") ?? 0)
    }

    func revokeClientKey(id: String, at time: Int64) async throws {
        try await sql.execute(
            "UPDATE client_keys SET revoked_at = $1 WHERE key_id = $2 AND revoked_at IS NULL",
            [.integer(time), .text(id)])
    }

    func touchClientKey(id: String, at time: Int64) async throws {
        try await sql.execute(
            "UPDATE client_keys SET last_used_at = $1 WHERE key_id = $2", [.integer(time), .text(id)])
    }

    static func clientKey(_ row: SQLRow) throws -> ClientKeyRecord {
        ClientKeyRecord(
            keyID: try row.string("key_id"), machineID: try row.string("machine_id"), name: try row.string("name"),
            prefix: try row.string("prefix"), keyHash: try row.string("key_hash"),
            createdAt: try row.integer("created_at"), revokedAt: try row.optionalInteger("revoked_at"),
            lastUsedAt: try row.optionalInteger("last_used_at"))
    }
}
