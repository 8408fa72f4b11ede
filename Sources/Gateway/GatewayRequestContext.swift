public import Hummingbird
public import NIOCore

/// Per-request state shared by the gateway's middleware and routes.
public struct GatewayRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The request id: the client's `X-Request-ID` if sane, else generated. Echoed in the response and problems.
    public var requestID: String
    /// The client's IP address (no port): the peer's, or behind a trusted proxy the address it names
    /// (``ClientAddressMiddleware``); empty when unknown (in-process tests).
    public var clientIP: String
    /// What rate limits count the client under: the address, or for IPv6 its /64.
    public var clientKey: String
    /// Set by ``DeviceSignatureMiddleware`` once a signed request verified.
    public var device: AuthenticatedDevice?
    /// Set by ``APIKeyMiddleware`` once a Bearer key authenticated.
    public var apiKey: AuthenticatedKey?
    /// The connection, when served by a real server (nil in in-process tests): chunk files go out on it directly.
    public var channel: (any Channel)?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
        requestID = ""
        clientIP = source.channel.remoteAddress?.ipAddress ?? ""
        clientKey = "ip:\(clientIP)"
    }

    public init(source: some RequestContextSource) {
        coreContext = .init(source: source)
        requestID = ""
        clientIP = ""
        clientKey = "ip:"
    }
}

/// The device a signed request came from.
public struct AuthenticatedDevice: Sendable, Equatable {
    public let machineID: String
}

/// The operator key behind a Bearer token.
public struct AuthenticatedKey: Sendable, Equatable {
    public let keyID: String
    public let rateLimitPerMinute: Int
}
