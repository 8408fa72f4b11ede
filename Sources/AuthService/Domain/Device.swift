/// Where a device is in its life: registered → email pending → verified → active (has a secret); revoked by an
/// operator at any point.
public enum DeviceState: String, Sendable, Hashable, CaseIterable {
    case registered
    case pendingEmail = "pending_email"
    case verified
    case active
    case revoked

    /// Registering again: unverified hardware gets a fresh code; verified or active hardware keeps its identity.
    func registeringAgain() throws(AuthError) -> DeviceState {
        switch self {
        case .registered, .pendingEmail: .registered
        case .verified, .active: throw .deviceAlreadyRegistered
        case .revoked: throw .deviceRevoked
        }
    }

    /// Asking for a verification email.
    func requestingEmail() throws(AuthError) -> DeviceState {
        switch self {
        case .registered, .pendingEmail: .pendingEmail
        case .verified, .active: throw .deviceAlreadyVerified
        case .revoked: throw .deviceRevoked
        }
    }

    /// Following the emailed link. Following it twice is harmless.
    func confirmingEmail() throws(AuthError) -> DeviceState {
        switch self {
        case .pendingEmail: .verified
        case .verified, .active: self
        case .registered: throw .invalidVerificationLink
        case .revoked: throw .deviceRevoked
        }
    }

    /// Receiving the secret, once.
    func activating() throws(AuthError) -> DeviceState {
        switch self {
        case .verified: .active
        case .active: throw .registrationCodeUsed
        case .registered, .pendingEmail: throw .deviceNotVerified
        case .revoked: throw .deviceRevoked
        }
    }

    /// Signing a request or rotating the secret needs an active device.
    func requireActive() throws(AuthError) {
        switch self {
        case .active: return
        case .revoked: throw .deviceRevoked
        case .registered, .pendingEmail: throw .deviceNotVerified
        case .verified: throw .deviceNotActive
        }
    }
}

/// A device secret as stored: sealed under the master key, plus its SHA-256 for `X-API-Key` lookups.
struct StoredSecret: Sendable, Equatable {
    var sealed: [UInt8]
    var hash: String
}

/// One device as the Auth target stores it. Times are microseconds since the Unix epoch.
struct DeviceRecord: Sendable, Equatable {
    var machineID: String
    var hardwareHash: String
    var gpuHash: String
    var hardwareInfo: String
    var gpuInfo: String
    var state: DeviceState
    var email: String?
    var registeredAt: Int64
    var verifiedAt: Int64?
    var activatedAt: Int64?
    var secretRotatedAt: Int64?
    var secret: StoredSecret?
    /// The secret before the last rotation; verifies until `previousValidUntil`.
    var previousSecret: StoredSecret?
    var previousValidUntil: Int64?

    /// The secrets that verify at `now`: the current one, then the previous one during the rotation overlap.
    func validSecrets(at now: Int64) -> [StoredSecret] {
        var secrets: [StoredSecret] = secret.map { [$0] } ?? []
        if let previousSecret, let until = previousValidUntil, now < until { secrets.append(previousSecret) }
        return secrets
    }
}

/// A registration code as stored (normalised: upper case, no separators).
struct RegistrationCodeRecord: Sendable, Equatable {
    var code: String
    var machineID: String
    var createdAt: Int64
    var expiresAt: Int64
    var usedAt: Int64?

    /// Checks the code may still be used for `machineID` at `now`.
    func check(machineID expected: String?, now: Int64) throws(AuthError) {
        if let expected, expected != machineID { throw .invalidRegistrationCode }
        if usedAt != nil { throw .registrationCodeUsed }
        if now >= expiresAt { throw .registrationCodeExpired }
    }
}

/// An emailed verification link as stored: only the SHA-256 of its token.
struct EmailVerificationRecord: Sendable, Equatable {
    var tokenHash: String
    var machineID: String
    var email: String
    var createdAt: Int64
    var expiresAt: Int64
    var confirmedAt: Int64?
}
