public import GRPCCore
import LeaderboardAPI
public import ServiceKit
import SwiftProtobuf

/// Checks operator API keys with AuthService (`AuthenticateApiKey`, which also records the key's last use): what every
/// service process uses to guard its operator RPCs (``OperatorServerInterceptor``). Built by the executable over the
/// process's channel to AuthService, local or remote.
public struct AuthOperatorKeyVerifier: OperatorKeyVerifier {
    let channel: ServiceChannel?

    public init(channel: ServiceChannel?) { self.channel = channel }

    public func verify(key: String) async throws -> OperatorIdentity {
        guard let channel else {
            throw RPCError(code: .unavailable, message: "no AuthService to check the operator key with")
        }
        let request = Leaderboard_Auth_V1_AuthenticateApiKeyRequest.with {
            $0.secret = key
            $0.requiredPermission = .read
        }
        let key: Leaderboard_Auth_V1_ApiKey
        switch channel {
        case .inProcess(let client):
            key = try await Leaderboard_Auth_V1_AuthService.Client(wrapping: client).authenticateApiKey(request)
        case .http2(let client):
            key = try await Leaderboard_Auth_V1_AuthService.Client(wrapping: client).authenticateApiKey(request)
        }
        return OperatorIdentity(
            keyID: key.keyID, permissions: Set(key.permissions.compactMap { AuthRPCService.permission($0) }))
    }
}
