import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import LeaderboardAPI
import ServiceKit
import SwiftProtobuf
import TestSupport
import Testing

/// The internal gRPC boundary (docs/SECURITY.md): a service identity between processes, an operator key on operator
/// RPCs whatever the transport, and no process that listens beyond loopback without either.
@Suite("Internal trust boundary of the real binary", .serialized, .timeLimit(.minutes(3)))
struct InternalTrustTests {
    static let token = "test-service-token-" + String(repeating: "7", count: 24)

    /// Runs `body` with a plaintext HTTP/2 client to the services on `port`.
    static func withClient<T: Sendable>(
        port: Int, _ body: (GRPCClient<HTTP2ClientTransport.Posix>) async throws -> T
    ) async throws -> T {
        try await withGRPCClient(
            transport: .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext),
            handleClient: body)
    }

    /// The stable code of the RPC error `body` throws, or nil when it succeeds.
    static func code(_ body: () async throws -> Void) async -> String? {
        do {
            try await body()
            return nil
        } catch let error as RPCError {
            return error.serviceErrorCode ?? "\(error.code)"
        } catch {
            return "\(error)"
        }
    }

    @Test("without the service token a process answers health checks only; operator RPCs need an operator key too")
    func serviceTokenAndOperatorKeys() async throws {
        let directory = EndToEnd.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = try LeaderboardProcess(
            [
                "serve", "--target", "auth,dataset,ranking,interaction", "--data-dir", directory, "--service-token",
                Self.token,
            ] + ephemeral)
        let port = try await server.grpcPort()
        let withToken: Metadata = [InternalTrust.serviceTokenKey: .string(Self.token)]
        try await Self.withClient(port: port) { client in
            let auth = Leaderboard_Auth_V1_AuthService.Client(wrapping: client)
            // Probes need no token.
            #expect(try await EndToEnd.grpcHealth(port: port, service: "") == .serving)
            #expect(await Self.code { _ = try await auth.listApiKeys(.init()) } == "service_identity_required")
            #expect(
                await Self.code {
                    _ = try await auth.listApiKeys(
                        .init(), metadata: [InternalTrust.serviceTokenKey: .string(Self.token + "x")])
                } == "service_identity_invalid")
            // The token alone does not make an operator: key management, dataset uploads, reviews and rebuilds refuse.
            #expect(
                await Self.code {
                    _ = try await auth.createApiKey(
                        .with {
                            $0.name = "sneaky"
                            $0.permissions = [.admin]
                        }, metadata: withToken)
                } == "operator_key_required")
            let ranking = Leaderboard_Ranking_V1_RankingService.Client(wrapping: client)
            #expect(
                await Self.code { _ = try await ranking.decideReview(.init(), metadata: withToken) }
                    == "operator_key_required")
            #expect(
                await Self.code { _ = try await ranking.rebuildRanking(.init(), metadata: withToken) }
                    == "operator_key_required")
            let interactions = Leaderboard_Interaction_V1_InteractionService.Client(wrapping: client)
            #expect(
                await Self.code { _ = try await interactions.listFlags(.init(), metadata: withToken) }
                    == "operator_key_required")
            let datasets = Leaderboard_Dataset_V1_DatasetService.Client(wrapping: client)
            #expect(
                await Self.code {
                    _ = try await datasets.listDatasets(.with { $0.includeInactive = true }, metadata: withToken)
                } == "operator_key_required")
            // A key with too little permission is refused; an admin key works.
            let read = try await Self.key(["--data-dir", directory], permission: "read")
            #expect(
                await Self.code {
                    _ = try await auth.listApiKeys(
                        .init(), metadata: withToken.adding(InternalTrust.authorizationKey, "Bearer \(read)"))
                } == "insufficient_permission")
            #expect(
                await Self.code {
                    _ = try await auth.listApiKeys(
                        .init(), metadata: withToken.adding(InternalTrust.authorizationKey, "Bearer lbk_forged"))
                } == "invalid_api_key")
            let admin = try await EndToEnd.operatorKey(["--data-dir", directory])
            let listed = try await auth.listApiKeys(
                .init(), metadata: withToken.adding(InternalTrust.authorizationKey, "Bearer \(admin)"))
            #expect(listed.keys.count == 2)
        }

        // The admin CLI: refused without a key (nothing uploaded), and without the token; accepted with both.
        let input = directory + "/prompts.jsonl"
        try Data("{\"prompt\": \"hi\"}\n".utf8).write(to: URL(fileURLWithPath: input))
        let address = ["--grpc-address", "127.0.0.1:\(port)"]
        let admin = try await EndToEnd.operatorKey(["--data-dir", directory])
        let noKey = try LeaderboardProcess(
            ["admin", "datasets", "upload", input, "--version", "t1", "--activate", "--service-token", Self.token]
                + address)
        #expect(try await noKey.exitStatus() == 1)
        #expect(noKey.standardError.contains("operator_key_required"), "\(noKey.standardError)")
        let noToken = try LeaderboardProcess(
            ["admin", "datasets", "upload", input, "--version", "t1", "--activate", "--operator-key", admin] + address)
        #expect(try await noToken.exitStatus() == 1)
        #expect(noToken.standardError.contains("service_identity_required"), "\(noToken.standardError)")
        let listedBefore = try LeaderboardProcess(
            ["admin", "datasets", "list", "--service-token", Self.token, "--operator-key", admin] + address)
        #expect(try await listedBefore.exitStatus() == 0)
        #expect(!listedBefore.standardOutput.contains("t1"), "a refused upload stored something")
        let upload = try LeaderboardProcess(
            [
                "admin", "datasets", "upload", input, "--version", "t1", "--activate", "--service-token", Self.token,
                "--operator-key", admin,
            ] + address)
        #expect(try await upload.exitStatus() == 0, "\(upload.standardError)")
        #expect(try await server.stop() == 0)
    }

    static func key(_ storage: [String], permission: String) async throws -> String {
        let created = try LeaderboardProcess(
            ["admin", "keys", "create", "--name", "k-\(permission)", "--permission", permission, "--json"] + storage)
        try #require(try await created.exitStatus() == 0)
        let object = try JSONSerialization.jsonObject(with: Data(created.standardOutput.utf8)) as? [String: Any]
        return try #require(object?["secret"] as? String)
    }

    @Test("a gRPC listener beyond loopback needs mTLS or a service token, unless the risk is accepted explicitly")
    func listenerPolicy() async throws {
        let directory = EndToEnd.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let open = ["--http-address", "127.0.0.1:0", "--ops-address", "127.0.0.1:0", "--grpc-address", "0.0.0.0:0"]
        let refused = try LeaderboardProcess(["serve", "--target", "auth", "--data-dir", directory] + open)
        #expect(try await refused.exitStatus() == 1)
        #expect(
            refused.standardError.contains("CONFIG ERROR: --grpc-address: 0.0.0.0:0 is reachable from other machines"),
            "\(refused.standardError)")
        for accepted in [["--service-token", Self.token], ["--grpc-insecure", "true"]] {
            let server = try LeaderboardProcess(
                ["serve", "--target", "auth", "--data-dir", directory] + open + accepted)
            _ = try await server.grpcPort()
            #expect(try await server.stop() == 0)
        }
        let short = try LeaderboardProcess(
            ["serve", "--target", "auth", "--data-dir", directory, "--service-token", "short"] + ephemeral)
        #expect(try await short.exitStatus() == 1)
        #expect(short.standardError.contains("CONFIG ERROR: --service-token: must be 32 to 512 printable characters"))
    }
}

extension Metadata {
    /// A copy with one more string value.
    func adding(_ key: String, _ value: String) -> Metadata {
        var copy = self
        copy.addString(value, forKey: key)
        return copy
    }
}
