import Foundation
import GRPCCore
import LeaderboardAPI
import ServiceKit
import SwiftProtobuf

/// `leaderboard.auth.v1.AuthService`: maps protobuf messages to the domain and back; the rules live in
/// ``DeviceAuthority`` and ``APIKeyAuthority``.
struct AuthRPCService: Leaderboard_Auth_V1_AuthService.SimpleServiceProtocol {
    let devices: DeviceAuthority
    let keys: APIKeyAuthority
    let clientKeys: ClientKeyAuthority

    func registerDevice(request: Leaderboard_Auth_V1_RegisterDeviceRequest, context: ServerContext) async throws
        -> Leaderboard_Auth_V1_RegisterDeviceResponse
    {
        let registration = try await devices.register(
            hardwareHash: request.hardwareHash, gpuHash: request.gpuHash, hardwareInfo: request.hardwareInfoJson,
            gpuInfo: request.gpuInfoJson, challengeID: request.challengeID, solution: request.powSolution)
        return .with {
            $0.machineID = registration.machineID
            $0.registrationCode = registration.code
            $0.expiresAt = .init(microsecondsSinceEpoch: registration.expiresAt)
        }
    }

    func getChallenge(request: Leaderboard_Auth_V1_GetChallengeRequest, context: ServerContext) async throws
        -> Leaderboard_Auth_V1_Challenge
    {
        let challenge = devices.challenge()
        return .with {
            $0.challengeID = challenge.id
            $0.challenge = challenge.bytes.base64URLEncoded
            $0.difficultyBits = Int32(challenge.difficulty)
            $0.expiresAt = .init(microsecondsSinceEpoch: challenge.expiresAt)
        }
    }

    func verifyDevice(request: Leaderboard_Auth_V1_VerifyDeviceRequest, context: ServerContext) async throws
        -> Leaderboard_Auth_V1_VerifyDeviceResponse
    {
        let started = try await devices.requestVerification(
            code: request.registrationCode, email: request.email, challengeID: request.challengeID,
            solution: request.powSolution)
        return .with {
            $0.machineID = started.machineID
            $0.state = Self.state(started.state)
            $0.linkExpiresAt = .init(microsecondsSinceEpoch: started.linkExpiresAt)
        }
    }

    func confirmEmail(request: Leaderboard_Auth_V1_ConfirmEmailRequest, context: ServerContext) async throws
        -> Leaderboard_Auth_V1_ConfirmEmailResponse
    {
        let device = try await devices.confirmEmail(token: request.token)
        return .with {
            $0.machineID = device.machineID
            $0.state = Self.state(device.state)
        }
    }

    func activateDevice(request: Leaderboard_Auth_V1_ActivateDeviceRequest, context: ServerContext) async throws
        -> Leaderboard_Auth_V1_DeviceSecret
    {
        Self.secret(try await devices.activate(machineID: request.machineID, code: request.registrationCode))
    }

    func getDeviceStatus(request: Leaderboard_Auth_V1_GetDeviceStatusRequest, context: ServerContext) async throws
        -> Leaderboard_Auth_V1_Device
    {
        Self.device(try await devices.status(machineID: request.machineID))
    }

    /// Rotates the secret of the device that signed `request.signed`, which must be its own version 2 request to
    /// `POST /api/v1/devices/rotate` (so it covers the method and path, and cannot have been made for another route).
    func rotateDeviceSecret(request: Leaderboard_Auth_V1_RotateDeviceSecretRequest, context: ServerContext)
        async throws -> Leaderboard_Auth_V1_DeviceSecret
    {
        let signed = try Self.signedRequest(request.signed)
        guard signed.version == .v2 else { throw AuthError.signatureVersionRequired }
        guard signed.method.uppercased() == "POST", signed.path == Self.rotatePath else {
            throw AuthError.invalid("signature_scope", "The signature is not for POST \(Self.rotatePath).")
        }
        let device = try await devices.verify(signed)
        return Self.secret(try await devices.rotate(machineID: device.machineID))
    }

    static let rotatePath = "/api/v1/devices/rotate"

    func verifySignature(request: Leaderboard_Auth_V1_VerifySignatureRequest, context: ServerContext) async throws
        -> Leaderboard_Auth_V1_VerifySignatureResponse
    {
        let device = try await devices.verify(try Self.signedRequest(request))
        return .with { $0.device = Self.device(device) }
    }

    static func signedRequest(_ request: Leaderboard_Auth_V1_VerifySignatureRequest) throws(AuthError) -> SignedRequest
    {
        let version: SignedRequest.Version
        switch request.version {
        case .v1: version = .v1
        case .v2: version = .v2
        default:
            throw AuthError.invalid(
                "unsupported_signature_version", "X-Signature-Version must be 1 (or absent) or 2.")
        }
        return SignedRequest(
            version: version, machineID: request.machineID, requestTime: request.requestTime, nonce: request.nonce,
            signature: request.signature, method: request.method, path: request.path, query: request.query,
            body: Array(request.body), bodySHA256: Array(request.bodySha256))
    }

    func authenticateDeviceKey(request: Leaderboard_Auth_V1_AuthenticateDeviceKeyRequest, context: ServerContext)
        async throws -> Leaderboard_Auth_V1_Device
    {
        Self.device(try await devices.authenticate(apiKey: request.apiKey))
    }

    func createClientKey(request: Leaderboard_Auth_V1_CreateClientKeyRequest, context: ServerContext) async throws
        -> Leaderboard_Auth_V1_CreateClientKeyResponse
    {
        let created = try await clientKeys.create(machineID: request.machineID, name: request.name)
        return .with {
            $0.key = Self.clientKey(created.key)
            $0.apiKey = created.apiKey
        }
    }

    func listClientKeys(request: Leaderboard_Auth_V1_ListClientKeysRequest, context: ServerContext) async throws
        -> Leaderboard_Auth_V1_ListClientKeysResponse
    {
        let keys = try await clientKeys.list(machineID: request.machineID, includeRevoked: request.includeRevoked)
        return .with { $0.keys = keys.map(Self.clientKey) }
    }

    /// A device revokes its own key; without a machine id only an admin operator may revoke (any key).
    func revokeClientKey(request: Leaderboard_Auth_V1_RevokeClientKeyRequest, context: ServerContext) async throws
        -> Leaderboard_Auth_V1_ClientKey
    {
        if request.machineID.isEmpty, OperatorContext.current?.grants(.admin) != true {
            throw BoundaryError.insufficientPermission(.admin)
        }
        return Self.clientKey(
            try await clientKeys.revoke(
                keyID: request.keyID, machineID: request.machineID.isEmpty ? nil : request.machineID))
    }

    func authenticateClientKey(request: Leaderboard_Auth_V1_AuthenticateClientKeyRequest, context: ServerContext)
        async throws -> Leaderboard_Auth_V1_AuthenticateClientKeyResponse
    {
        let key = try await clientKeys.authenticate(apiKey: request.apiKey)
        return .with {
            $0.machineID = key.machineID
            $0.keyID = key.keyID
        }
    }

    static func clientKey(_ key: ClientKeyRecord) -> Leaderboard_Auth_V1_ClientKey {
        .with {
            $0.keyID = key.keyID
            $0.machineID = key.machineID
            $0.name = key.name
            $0.prefix = key.prefix
            $0.createdAt = .init(microsecondsSinceEpoch: key.createdAt)
            if let revoked = key.revokedAt { $0.revokedAt = .init(microsecondsSinceEpoch: revoked) }
            if let used = key.lastUsedAt { $0.lastUsedAt = .init(microsecondsSinceEpoch: used) }
        }
    }

    func wrapKeyForDevice(request: Leaderboard_Auth_V1_WrapKeyForDeviceRequest, context: ServerContext) async throws
        -> Leaderboard_Auth_V1_WrappedKey
    {
        let wrapped = try await devices.wrapKey(
            machineID: request.machineID, context: request.context, key: Array(request.key))
        return .with {
            $0.nonce = Data(wrapped.nonce)
            $0.ciphertext = Data(wrapped.ciphertext)
            $0.tag = Data(wrapped.tag)
            $0.hkdfSalt = Data(wrapped.salt)
            $0.context = wrapped.context
        }
    }

    func createApiKey(request: Leaderboard_Auth_V1_CreateApiKeyRequest, context: ServerContext) async throws
        -> Leaderboard_Auth_V1_CreateApiKeyResponse
    {
        var permissions = Set<Permission>()
        for permission in request.permissions {
            guard let mapped = Self.permission(permission) else {
                throw AuthError.invalid("invalid_permissions", "permissions are read, write and admin.")
            }
            permissions.insert(mapped)
        }
        let created = try await keys.create(
            name: request.name, permissions: permissions, rateLimitPerMinute: Int(request.rateLimitPerMinute),
            expiresAt: request.hasExpiresAt ? request.expiresAt.microsecondsSinceEpoch : nil)
        return .with {
            $0.key = Self.apiKey(created.key)
            $0.secret = created.secret
        }
    }

    func listApiKeys(request: Leaderboard_Auth_V1_ListApiKeysRequest, context: ServerContext) async throws
        -> Leaderboard_Auth_V1_ListApiKeysResponse
    {
        let page = try await keys.list(
            cursor: request.page.cursor, limit: Int(request.page.limit), includeRevoked: request.includeRevoked)
        return .with {
            $0.keys = page.keys.map(Self.apiKey)
            $0.page.nextCursor = page.nextCursor
        }
    }

    func revokeApiKey(request: Leaderboard_Auth_V1_RevokeApiKeyRequest, context: ServerContext) async throws
        -> Leaderboard_Auth_V1_ApiKey
    {
        Self.apiKey(try await keys.revoke(id: request.keyID))
    }

    func listAuditEntries(request: Leaderboard_Common_V1_ListAuditEntriesRequest, context: ServerContext)
        async throws -> Leaderboard_Common_V1_ListAuditEntriesResponse
    {
        let entries = try await keys.audit(after: request.afterSequence, limit: Int(request.limit))
        return .with {
            $0.entries = entries.map { entry in
                .with {
                    $0.sequence = entry.sequence
                    $0.at = .init(microsecondsSinceEpoch: entry.at)
                    $0.actor = entry.actor
                    $0.action = entry.action
                    $0.target = entry.target
                    $0.reason = entry.reason
                    $0.detailsJson = entry.details
                }
            }
        }
    }

    func authenticateApiKey(request: Leaderboard_Auth_V1_AuthenticateApiKeyRequest, context: ServerContext)
        async throws -> Leaderboard_Auth_V1_ApiKey
    {
        guard let needed = Self.permission(request.requiredPermission) else {
            throw AuthError.invalid("invalid_permissions", "required_permission must be read, write or admin.")
        }
        return Self.apiKey(try await keys.authenticate(secret: request.secret, needed: needed))
    }

    // MARK: mapping

    static func state(_ state: DeviceState) -> Leaderboard_Auth_V1_DeviceState {
        switch state {
        case .registered: .registered
        case .pendingEmail: .pendingEmail
        case .verified: .verified
        case .active: .active
        case .revoked: .revoked
        }
    }

    static func permission(_ permission: Leaderboard_Auth_V1_Permission) -> Permission? {
        switch permission {
        case .read: .read
        case .write: .write
        case .admin: .admin
        default: nil
        }
    }

    static func permission(_ permission: Permission) -> Leaderboard_Auth_V1_Permission {
        switch permission {
        case .read: .read
        case .write: .write
        case .admin: .admin
        }
    }

    static func device(_ device: DeviceRecord) -> Leaderboard_Auth_V1_Device {
        .with {
            $0.machineID = device.machineID
            $0.state = state(device.state)
            $0.hardwareHash = device.hardwareHash
            $0.gpuHash = device.gpuHash
            $0.hardwareInfoJson = device.hardwareInfo
            $0.gpuInfoJson = device.gpuInfo
            $0.registeredAt = .init(microsecondsSinceEpoch: device.registeredAt)
            if let verifiedAt = device.verifiedAt { $0.verifiedAt = .init(microsecondsSinceEpoch: verifiedAt) }
            if let rotated = device.secretRotatedAt { $0.secretRotatedAt = .init(microsecondsSinceEpoch: rotated) }
        }
    }

    static func secret(_ issued: DeviceAuthority.IssuedSecret) -> Leaderboard_Auth_V1_DeviceSecret {
        .with {
            $0.machineID = issued.machineID
            $0.secret = issued.secret
            if let until = issued.previousValidUntil { $0.previousValidUntil = .init(microsecondsSinceEpoch: until) }
        }
    }

    static func apiKey(_ key: APIKeyRecord) -> Leaderboard_Auth_V1_ApiKey {
        .with {
            $0.keyID = key.id
            $0.name = key.name
            $0.prefix = key.prefix
            $0.permissions = key.permissions.sorted().map(permission)
            $0.rateLimitPerMinute = Int32(clamping: key.rateLimitPerMinute)
            $0.createdAt = .init(microsecondsSinceEpoch: key.createdAt)
            if let expiresAt = key.expiresAt { $0.expiresAt = .init(microsecondsSinceEpoch: expiresAt) }
            if let revokedAt = key.revokedAt { $0.revokedAt = .init(microsecondsSinceEpoch: revokedAt) }
            if let lastUsedAt = key.lastUsedAt { $0.lastUsedAt = .init(microsecondsSinceEpoch: lastUsedAt) }
        }
    }
}
