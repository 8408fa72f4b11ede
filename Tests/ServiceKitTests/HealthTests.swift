import GRPCCore
import GRPCInProcessTransport
import Logging
import ServiceKit
import ServiceLifecycle
import ServiceLifecycleTestKit
import SwiftProtobuf
import Synchronization
import Testing

@Suite("grpc.health.v1", .timeLimit(.minutes(1)))
struct HealthTests {
    /// Serves the registry in-process (still serialising every message) and hands a client to `body`.
    func withHealth(
        _ registry: HealthRegistry,
        _ body: (Grpc_Health_V1_Health.Client<InProcessTransport.Client>) async throws -> Void
    ) async throws {
        let transport = InProcessTransport()
        let server = GRPCServer(transport: transport.server, services: [HealthRPCService(registry: registry)])
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await server.serve() }
            try await withGRPCClient(transport: transport.client) { client in
                try await body(Grpc_Health_V1_Health.Client(wrapping: client))
            }
            server.beginGracefulShutdown()
        }
    }

    @Test("a request deadline travels as grpc-timeout: the serving side ends a call nobody waits for any more")
    func deadlinePropagation() async throws {
        let registry = HealthRegistry()
        registry.set(.dataset, .serving)
        let transport = InProcessTransport()
        let server = GRPCServer(
            transport: transport.server, services: [HealthRPCService(registry: registry)],
            interceptors: [CallContextServerInterceptor()])
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await server.serve() }
            try await withGRPCClient(transport: transport.client, interceptors: [CallContextClientInterceptor()]) {
                client in
                let health = Grpc_Health_V1_Health.Client(wrapping: client)
                let start = ContinuousClock.now
                // Watch streams until cancelled; only the propagated deadline can end it.
                let expired = await #expect(throws: RPCError.self) {
                    try await RequestDeadline.$current.withValue(.now + .milliseconds(300)) {
                        try await health.watch(.with { $0.service = "leaderboard.dataset.v1.DatasetService" }) {
                            response in
                            for try await _ in response.messages {}
                        }
                    }
                }
                #expect(expired?.code == .deadlineExceeded)
                let elapsed = ContinuousClock.now - start
                // Without propagation the watch would run until the suite's time limit.
                #expect(elapsed >= .milliseconds(250) && elapsed < .seconds(30))
                // A deadline already past fails before the call is made; without one, calls are untouched.
                let late = await #expect(throws: RPCError.self) {
                    try await RequestDeadline.$current.withValue(.now - .seconds(1)) {
                        try await health.check(.with { $0.service = "" })
                    }
                }
                #expect(late?.code == .deadlineExceeded)
                let untouched = try await health.check(.with { $0.service = "" })
                #expect(untouched.status == .serving)
            }
            server.beginGracefulShutdown()
        }
    }

    @Test("the caller's request id reaches the serving side's task (and its log lines) through x-request-id")
    func requestIDPropagation() async throws {
        let registry = HealthRegistry()
        let probe = RequestIDProbe()
        let transport = InProcessTransport()
        let server = GRPCServer(
            transport: transport.server, services: [HealthRPCService(registry: registry)],
            interceptors: [CallContextServerInterceptor(), probe])
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await server.serve() }
            try await withGRPCClient(transport: transport.client, interceptors: [CallContextClientInterceptor()]) {
                client in
                let health = Grpc_Health_V1_Health.Client(wrapping: client)
                _ = try await RequestID.$current.withValue("req-42") {
                    try await health.check(.with { $0.service = "" })
                }
                _ = try await health.check(.with { $0.service = "" })
                // A hostile id is replaced, never logged as sent.
                _ = try await RequestID.$current.withValue("bad id\n") {
                    try await health.check(.with { $0.service = "" })
                }
            }
            server.beginGracefulShutdown()
        }
        let seen = probe.seen
        #expect(seen.count == 3)
        #expect(seen.first == "req-42")
        #expect(seen.dropFirst().first == Optional<String>.none)
        #expect(seen.last??.count == 32)
        let lines = RequestID.$current.withValue("req-7") { RequestID.metadataProvider.get() }
        #expect(lines["request_id"] == "req-7")
        #expect(RequestID.metadataProvider.get().isEmpty)
    }

    @Test("Check answers per service and for the whole process; unknown services are NOT_FOUND")
    func check() async throws {
        let registry = HealthRegistry()
        registry.set(.auth, .serving)
        registry.set(.ranking, .notServing)
        try await withHealth(registry) { health in
            let auth = try await health.check(.with { $0.service = "leaderboard.auth.v1.AuthService" })
            #expect(auth.status == .serving)
            #expect(try await health.check(.with { $0.service = "" }).status == .notServing)
            await #expect(throws: RPCError.self) { try await health.check(.with { $0.service = "nope" }) }
            registry.set(.ranking, .serving)
            #expect(try await health.check(.with { $0.service = "" }).status == .serving)
            let all = try await health.list(.init()).statuses
            #expect(Set(all.keys) == ["", "leaderboard.auth.v1.AuthService", "leaderboard.ranking.v1.RankingService"])
        }
    }

    @Test("Watch sends the current status, then each change, and ends at shutdown with NOT_SERVING")
    func watch() async throws {
        let registry = HealthRegistry()
        registry.set(.dataset, .serving)
        try await withHealth(registry) { health in
            try await testGracefulShutdown { trigger in
                try await withThrowingDiscardingTaskGroup { group in
                    group.addTask { try await registry.run() }
                    try await health.watch(.with { $0.service = "leaderboard.dataset.v1.DatasetService" }) { response in
                        var seen: [Grpc_Health_V1_HealthCheckResponse.ServingStatus] = []
                        for try await message in response.messages {
                            seen.append(message.status)
                            if seen.count == 1 { registry.set(.dataset, .notServing) }
                            if seen.count == 2 { registry.set(.dataset, .serving) }
                            if seen.count == 3 { trigger.triggerGracefulShutdown() }
                        }
                        #expect(seen == [.serving, .notServing, .serving, .notServing])
                    }
                }
            }
        }
    }
}

/// Records the request id each served call runs under.
final class RequestIDProbe: ServerInterceptor, Sendable {
    private let recorded = Mutex<[String?]>([])
    var seen: [String?] { recorded.withLock { $0 } }

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        recorded.withLock { $0.append(RequestID.current) }
        return try await next(request, context)
    }
}
