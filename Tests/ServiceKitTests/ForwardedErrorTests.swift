import GRPCCore
import GRPCNIOTransportHTTP2
import SwiftProtobuf
import Testing

@testable import ServiceKit

/// A process that passes on another process's error (found by scripts/chaos: every RankingService call that
/// rethrew a DatasetService or AuthService error closed its caller's whole connection).
@Suite("Errors passed on between processes")
struct ForwardedErrorTests {
    /// Health.Check that asks another server the same question and rethrows whatever it answered.
    struct RelayingHealth: Grpc_Health_V1_Health.SimpleServiceProtocol {
        let upstream: Grpc_Health_V1_Health.Client<HTTP2ClientTransport.Posix>

        func check(request: Grpc_Health_V1_HealthCheckRequest, context: ServerContext) async throws
            -> Grpc_Health_V1_HealthCheckResponse
        {
            try await upstream.check(request)
        }

        func list(request: Grpc_Health_V1_HealthListRequest, context: ServerContext) async throws
            -> Grpc_Health_V1_HealthListResponse
        {
            try await upstream.list(request)
        }

        func watch(
            request: Grpc_Health_V1_HealthCheckRequest, response: RPCWriter<Grpc_Health_V1_HealthCheckResponse>,
            context: ServerContext
        ) async throws {
            throw RPCError(code: .unimplemented, message: "not relayed")
        }
    }

    @Test("the caller gets the upstream's code and message, and the connection keeps serving")
    func relayedErrorKeepsItsCode() async throws {
        let loopback = HostPort(host: "127.0.0.1", port: 0)
        let registry = HealthRegistry()
        let upstreamServer = GRPCTransports.makeHTTP2Server(
            address: loopback, tls: nil, serviceToken: nil, services: [HealthRPCService(registry: registry)])
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await upstreamServer.serve() }
            defer { upstreamServer.beginGracefulShutdown() }
            let upstreamPort = try #require(try await upstreamServer.listeningAddress?.ipv4?.port)
            let upstreamClient = try GRPCTransports.makeHTTP2Client(
                address: HostPort(host: "127.0.0.1", port: upstreamPort), tls: nil, serviceToken: nil)
            group.addTask { try await upstreamClient.runConnections() }
            defer { upstreamClient.beginGracefulShutdown() }
            let relay = GRPCTransports.makeHTTP2Server(
                address: loopback, tls: nil, serviceToken: nil,
                services: [RelayingHealth(upstream: Grpc_Health_V1_Health.Client(wrapping: upstreamClient))])
            group.addTask { try await relay.serve() }
            defer { relay.beginGracefulShutdown() }
            let relayPort = try #require(try await relay.listeningAddress?.ipv4?.port)
            let client = try GRPCTransports.makeHTTP2Client(
                address: HostPort(host: "127.0.0.1", port: relayPort), tls: nil, serviceToken: nil)
            group.addTask { try await client.runConnections() }
            defer { client.beginGracefulShutdown() }
            let health = Grpc_Health_V1_Health.Client(wrapping: client)

            for _ in 0..<3 {
                let error = await #expect(throws: RPCError.self) {
                    _ = try await health.check(.with { $0.service = "no-such-service" })
                }
                #expect(error?.code == .notFound)
                #expect(error?.message == "unknown service 'no-such-service'")
            }
            // The same connection still answers.
            _ = try await health.list(.init())
        }
    }

    @Test("only application metadata is kept")
    func transportKeysGo() {
        let error = RPCError(
            code: .notFound, message: "gone",
            metadata: [
                ":status": "200", "content-type": "application/grpc", "grpc-status": "5", "grpc-message": "gone",
                errorCodeMetadataKey: "unknown_record",
            ])
        let forwarded = error.forwardable
        #expect(forwarded.code == .notFound && forwarded.message == "gone")
        #expect(Array(forwarded.metadata.map(\.key)) == [errorCodeMetadataKey])
    }
}
