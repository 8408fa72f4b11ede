public import LeaderboardAPI
public import ServiceKit

/// The AuthService client the gateway's routes and middleware call.
typealias AuthClient = any Leaderboard_Auth_V1_AuthService.ClientProtocol

/// The gateway's clients of the services behind it, whichever transport reaches them.
public struct GatewayServices: Sendable {
    public let auth: any Leaderboard_Auth_V1_AuthService.ClientProtocol

    public init(auth: any Leaderboard_Auth_V1_AuthService.ClientProtocol) {
        self.auth = auth
    }

    /// Wraps each service's channel in its generated client.
    public init(channels: (Target) throws -> ServiceChannel) throws {
        switch try channels(.auth) {
        case .inProcess(let client): auth = Leaderboard_Auth_V1_AuthService.Client(wrapping: client)
        case .http2(let client): auth = Leaderboard_Auth_V1_AuthService.Client(wrapping: client)
        }
    }
}
