public import LeaderboardAPI
public import ServiceKit

/// The AuthService client the gateway's routes and middleware call.
typealias AuthClient = any Leaderboard_Auth_V1_AuthService.ClientProtocol

/// The gateway's clients of the services behind it, whichever transport reaches them.
public struct GatewayServices: Sendable {
    public let auth: any Leaderboard_Auth_V1_AuthService.ClientProtocol
    public let datasets: any Leaderboard_Dataset_V1_DatasetService.ClientProtocol
    public let ranking: any Leaderboard_Ranking_V1_RankingService.ClientProtocol
    public let interactions: any Leaderboard_Interaction_V1_InteractionService.ClientProtocol

    public init(
        auth: any Leaderboard_Auth_V1_AuthService.ClientProtocol,
        datasets: any Leaderboard_Dataset_V1_DatasetService.ClientProtocol,
        ranking: any Leaderboard_Ranking_V1_RankingService.ClientProtocol,
        interactions: any Leaderboard_Interaction_V1_InteractionService.ClientProtocol
    ) {
        self.auth = auth
        self.datasets = datasets
        self.ranking = ranking
        self.interactions = interactions
    }

    /// Wraps each service's channel in its generated client.
    public init(channels: (Target) throws -> ServiceChannel) throws {
        switch try channels(.auth) {
        case .inProcess(let client): auth = Leaderboard_Auth_V1_AuthService.Client(wrapping: client)
        case .http2(let client): auth = Leaderboard_Auth_V1_AuthService.Client(wrapping: client)
        }
        switch try channels(.dataset) {
        case .inProcess(let client): datasets = Leaderboard_Dataset_V1_DatasetService.Client(wrapping: client)
        case .http2(let client): datasets = Leaderboard_Dataset_V1_DatasetService.Client(wrapping: client)
        }
        switch try channels(.ranking) {
        case .inProcess(let client): ranking = Leaderboard_Ranking_V1_RankingService.Client(wrapping: client)
        case .http2(let client): ranking = Leaderboard_Ranking_V1_RankingService.Client(wrapping: client)
        }
        switch try channels(.interaction) {
        case .inProcess(let client):
            interactions = Leaderboard_Interaction_V1_InteractionService.Client(wrapping: client)
        case .http2(let client): interactions = Leaderboard_Interaction_V1_InteractionService.Client(wrapping: client)
        }
    }
}
