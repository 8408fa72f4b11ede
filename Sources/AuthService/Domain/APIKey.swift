public import ServiceKit

/// What an operator API key may do (the one definition, in ServiceKit, which guards operator RPCs with it).
public typealias Permission = OperatorPermission

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
