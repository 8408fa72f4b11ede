/// What an operator API key may do. `admin` implies `write`, which implies `read`.
public enum Permission: String, Sendable, Hashable, CaseIterable, Comparable {
    case read
    case write
    case admin

    var rank: Int {
        switch self {
        case .read: 0
        case .write: 1
        case .admin: 2
        }
    }

    public static func < (lhs: Permission, rhs: Permission) -> Bool { lhs.rank < rhs.rank }
}

/// An operator API key as stored (the secret itself never is; only its SHA-256).
public struct APIKeyRecord: Sendable, Equatable {
    public var id: String
    public var name: String
    /// The first characters of the secret, to recognise it in listings.
    public var prefix: String
    public var secretHash: String
    public var permissions: Set<Permission>
    /// Requests per minute the gateway allows this key.
    public var rateLimitPerMinute: Int
    public var createdAt: Int64
    public var expiresAt: Int64?
    public var revokedAt: Int64?
    public var lastUsedAt: Int64?

    /// Whether the key grants `needed` (directly or through a higher permission).
    public func grants(_ needed: Permission) -> Bool { permissions.contains { $0 >= needed } }

    /// Checks the key is usable at `now` for `needed`.
    func authorize(_ needed: Permission, now: Int64) throws(AuthError) {
        if revokedAt != nil { throw .apiKeyRevoked }
        if let expiresAt, now >= expiresAt { throw .apiKeyExpired }
        guard grants(needed) else { throw .insufficientPermission(needed.rawValue) }
    }

    static let defaultRateLimitPerMinute = 600
    static let maximumNameLength = 100
}
