import Foundation
import GRPCCore
import GRPCInProcessTransport
import Gateway
import Hummingbird
import HummingbirdTesting
import ServiceKit
import Testing

@Suite("Gateway operations routes and errors")
struct GatewayRouterTests {
    /// A router whose readiness asks a real in-process health service backed by `registry`.
    func withRouter(
        registry: HealthRegistry,
        targets: Set<Target>,
        _ body: (Router<GatewayRequestContext>) async throws -> Void
    ) async throws {
        let transport = InProcessTransport()
        let server = GRPCServer(transport: transport.server, services: [HealthRPCService(registry: registry)])
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await server.serve() }
            try await withGRPCClient(transport: transport.client) { client in
                var channels: [Target: ServiceChannel] = [:]
                for target in targets { channels[target] = .inProcess(client) }
                let router = buildGatewayRouter(
                    GatewayDependencies(
                        // A loaded test machine may take more than a probe's usual 2 s to answer in process.
                        readiness: ReadinessProbe(
                            targets: targets, channels: channels, redis: nil, timeout: .seconds(60))))
                try await body(router)
            }
            server.beginGracefulShutdown()
        }
    }

    func json(_ buffer: ByteBuffer) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any])
    }

    @Test("live is always 200; ready is 200 only while every service it depends on is SERVING")
    func readiness() async throws {
        let registry = HealthRegistry()
        registry.set(.auth, .serving)
        registry.set(.ranking, .serving)
        try await withRouter(registry: registry, targets: [.auth, .ranking]) { router in
            let app = Application(router: router)
            try await app.test(.router) { client in
                try await client.execute(uri: "/health/live", method: .get) { response in
                    #expect(response.status == .ok)
                }
                try await client.execute(uri: "/health/ready", method: .get) { response in
                    #expect(response.status == .ok)
                    let body = try json(response.body)
                    #expect(body["status"] as? String == "ready")
                }
                registry.set(.ranking, .notServing)
                try await client.execute(uri: "/health/ready", method: .get) { response in
                    #expect(response.status == .serviceUnavailable)
                    let checks = try #require(try json(response.body)["checks"] as? [String: String])
                    #expect(checks == ["auth": "SERVING", "ranking": "NOT_SERVING"])
                }
            }
        }
    }

    @Test("a service that cannot be reached makes the gateway not ready, without internal details")
    func unreachable() async throws {
        // dataset is named but no channel exists for it: it is skipped; an unknown service name is NOT_FOUND.
        let registry = HealthRegistry()
        try await withRouter(registry: registry, targets: [.interaction]) { router in
            try await Application(router: router).test(.router) { client in
                try await client.execute(uri: "/health/ready", method: .get) { response in
                    #expect(response.status == .serviceUnavailable)
                    let body = try json(response.body)
                    #expect(body["checks"] as? [String: String] == ["interaction": "unreachable"])
                }
            }
        }
    }

    @Test("an unknown route is a problem+json 404 carrying the client's request id")
    func notFound() async throws {
        try await withRouter(registry: HealthRegistry(), targets: []) { router in
            try await Application(router: router).test(.router) { client in
                try await client.execute(uri: "/api/v1/nope", method: .get, headers: [.init("X-Request-ID")!: "req-42"])
                {
                    response in
                    #expect(response.status == .notFound)
                    #expect(response.headers[.contentType] == "application/problem+json")
                    #expect(response.headers[.init("X-Request-ID")!] == "req-42")
                    let body = try json(response.body)
                    #expect(body["code"] as? String == "not_found")
                    #expect(body["request_id"] as? String == "req-42")
                    #expect(body["status"] as? Int == 404)
                    #expect(body["instance"] as? String == "/api/v1/nope")
                }
            }
        }
    }

    @Test(
        "an unusable request id is replaced by a generated one",
        arguments: ["has space", String(repeating: "a", count: 200), "<script>"])
    func requestIDSanitised(candidate: String) async throws {
        try await withRouter(registry: HealthRegistry(), targets: []) { router in
            try await Application(router: router).test(.router) { client in
                try await client.execute(
                    uri: "/health/live", method: .get, headers: [.init("X-Request-ID")!: candidate]
                ) {
                    response in
                    let id = try #require(response.headers[.init("X-Request-ID")!])
                    #expect(id != candidate)
                    #expect(id.count == 32 && id.allSatisfy(\.isHexDigit))
                }
            }
        }
    }

    @Test("a 5xx never carries internal details, and a service's error code reaches the client")
    func errorsThroughRoutes() async throws {
        try await withRouter(registry: HealthRegistry(), targets: []) { router in
            router.get("/boom") { _, _ -> Response in
                throw RPCError(code: .internalError, message: "password=hunter2 at db.internal")
            }
            router.get("/taken") { _, _ -> Response in
                throw RPCError(
                    code: .alreadyExists, message: "That code was already used.",
                    metadata: [errorCodeMetadataKey: "registration_code_used"])
            }
            router.get("/mail") { _, _ -> Response in
                throw RPCError(
                    code: .unavailable, message: "The verification email could not be sent; try again later.",
                    metadata: [errorCodeMetadataKey: "email_unavailable"])
            }
            router.get("/down") { _, _ -> Response in
                throw RPCError(code: .unavailable, message: "connection refused to 10.0.0.7:9090")
            }
            router.get("/plain") { _, _ -> Response in
                struct Oops: Error {}
                throw Oops()
            }
            router.get("/redis") { _, _ -> Response in
                // What a service answers when its Redis is restarting, as the client side of gRPC sees it.
                let failure = RedisClientError(.connectionFailed, "cannot connect to redis:6379")
                throw RPCError(
                    code: failure.rpcErrorCode, message: failure.rpcErrorMessage, metadata: failure.rpcErrorMetadata)
            }
            try await Application(router: router).test(.router) { client in
                try await client.execute(uri: "/boom", method: .get) { response in
                    #expect(response.status == .internalServerError)
                    let text = String(buffer: response.body)
                    #expect(!text.contains("hunter2"))
                    let body = try json(response.body)
                    #expect(body["code"] as? String == "internal_error")
                }
                try await client.execute(uri: "/taken", method: .get) { response in
                    #expect(response.status == .conflict)
                    let body = try json(response.body)
                    #expect(body["code"] as? String == "registration_code_used")
                    #expect(body["detail"] as? String == "That code was already used.")
                }
                try await client.execute(uri: "/mail", method: .get) { response in
                    #expect(response.status == .serviceUnavailable)
                    let body = try json(response.body)
                    #expect(body["code"] as? String == "email_unavailable")
                }
                try await client.execute(uri: "/down", method: .get) { response in
                    #expect(response.status == .serviceUnavailable)
                    #expect(!String(buffer: response.body).contains("10.0.0.7"))
                    let body = try json(response.body)
                    #expect(body["code"] as? String == "service_unavailable")
                    #expect(response.headers[.retryAfter] == "5")
                }
                try await client.execute(uri: "/plain", method: .get) { response in
                    #expect(response.status == .internalServerError)
                }
                try await client.execute(uri: "/redis", method: .get) { response in
                    #expect(response.status == .serviceUnavailable)
                    #expect(response.headers[.retryAfter] == "5")
                    #expect(!String(buffer: response.body).contains("6379"))
                    let body = try json(response.body)
                    #expect(body["code"] as? String == "shared_state_unavailable")
                }
            }
        }
    }

    @Test("metrics are served in the Prometheus text format")
    func metrics() async throws {
        try await withRouter(registry: HealthRegistry(), targets: []) { router in
            try await Application(router: router).test(.router) { client in
                try await client.execute(uri: "/metrics", method: .get) { response in
                    #expect(response.status == .ok)
                    #expect(response.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
                }
            }
        }
    }
}

@Suite("gRPC status to HTTP status")
struct ProblemMappingTests {
    @Test(
        "every gRPC status maps as ARCHITECTURE.md §5 says",
        arguments: [
            (RPCError.Code.invalidArgument, 400), (.failedPrecondition, 400), (.outOfRange, 400),
            (.unauthenticated, 401), (.permissionDenied, 403), (.notFound, 404), (.alreadyExists, 409),
            (.aborted, 409), (.resourceExhausted, 429), (.unimplemented, 501), (.unavailable, 503),
            (.deadlineExceeded, 504), (.internalError, 500), (.unknown, 500), (.dataLoss, 500), (.cancelled, 500),
        ])
    func mapping(code: RPCError.Code, status: Int) {
        #expect(Problem.httpStatus(for: code).code == status)
        let problem = Problem.from(RPCError(code: code, message: "secret detail"))
        #expect(problem.status.code == status)
        #expect((problem.detail == "secret detail") == (status < 500))
    }
}
