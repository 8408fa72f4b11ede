import Crypto
import Foundation
import GRPCCore
import GRPCInProcessTransport
import Gateway
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import HummingbirdWebSocket
import LeaderboardAPI
import Logging
import ServiceKit
import ServiceLifecycle
import Synchronization
import TestSupport
import Testing
import UntrustedInput

@testable import AuthService
@testable import DatasetService
@testable import InteractionService
@testable import RankingService

/// The gateway in front of a real AuthService and DatasetService (in-process gRPC) on one storage backend — SQLite with in-process
/// shared state, or PostgreSQL with Redis — sending its emails over SMTP to a local sink.
struct AuthGateway: Sendable {
    let client: any TestClientProtocol
    let sink: SMTPSink
    let database: ServiceDatabase
    /// RankingService's own database (tests compare its stored events with what clients saw).
    var rankingDatabase: ServiceDatabase? = nil
    /// The request ids of the answers a live gateway gave before its middleware chain (``CacheFastPath``).
    var earlyAnswers = EarlyAnswerLog()
    /// DatasetService's blob directory.
    var datasetDirectory = ""

    static let publicURL = "https://leaderboard.example"

    /// Limits high enough not to trip the life-cycle tests; the rate-limit test passes its own.
    static var lenient: GatewayPolicies {
        var policies = GatewayPolicies()
        policies.registration = RateLimitPolicy(name: "register", limit: 1000, period: .seconds(60))
        policies.verification = RateLimitPolicy(name: "verify", limit: 1000, period: .seconds(60))
        policies.challenge = RateLimitPolicy(name: "challenge", limit: 1000, period: .seconds(60))
        policies.comments = RateLimitPolicy(name: "comments", limit: 1000, period: .seconds(60))
        policies.signed = RateLimitPolicy(name: "signed", limit: 1000, period: .seconds(60))
        policies.verificationMails = RateLimitPolicy(name: "verify-daily", limit: 100_000, period: .seconds(86_400))
        policies.publicReads = RateLimitPolicy(name: "public-read", limit: 100_000, period: .seconds(60))
        policies.exports = RateLimitPolicy(name: "export", limit: 100_000, period: .seconds(60))
        policies.webSockets = RateLimitPolicy(name: "websocket", limit: 100_000, period: .seconds(60))
        return policies
    }

    static func with(
        _ backend: StorageBackend,
        policies: GatewayPolicies = lenient,
        live: Bool = false,
        localChunks: Bool = true,
        rateLimiter: (any RateLimiter)? = nil,
        configure: @Sendable (inout GatewayConfiguration) -> Void = { _ in },
        extend: @Sendable (Router<GatewayRequestContext>) -> Void = { _ in },
        _ body: @escaping @Sendable (AuthGateway) async throws -> Void
    ) async throws {
        let sink = try SMTPSink()
        defer { sink.stop() }
        let earlyAnswers = EarlyAnswerLog()
        let datasetDirectory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "gw-ds-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: datasetDirectory) }
        try await withTestDatabase(backend) { database in
            try await withTestDatabase(backend) { datasetDatabase in
                try await withTestDatabase(backend) { rankingDatabase in
                    try await withTestDatabase(backend) { interactionDatabase in
                        _ = try await MigrationRunner.apply(
                            AuthMigrations.all, to: database, logger: TestEnvironment.logger)
                        _ = try await MigrationRunner.apply(
                            RankingMigrations.all, to: rankingDatabase, logger: TestEnvironment.logger)
                        _ = try await MigrationRunner.apply(
                            InteractionMigrations.all, to: interactionDatabase, logger: TestEnvironment.logger)
                        _ = try await MigrationRunner.apply(
                            DatasetMigrations.all, to: datasetDatabase, logger: TestEnvironment.logger)
                        let redis = backend == .postgres ? try TestEnvironment.redisClient() : nil
                        // Keys of their own: tests run side by side on one Redis, and the cache keys (paths) are the same.
                        let shared =
                            redis.map {
                                SharedState.redis(
                                    $0, keyPrefix: TestEnvironment.uniquePrefix("gateway"),
                                    logger: TestEnvironment.logger)
                            } ?? .inProcess()
                        let configuration = try LeaderboardConfiguration(
                            arguments: [
                                "--public-url", publicURL, "--pow-difficulty", "8", "--smtp-url",
                                "smtp://127.0.0.1:\(sink.port)?tls=none", "--master-key",
                                Data(repeating: 6, count: 32).base64EncodedString(), "--dataset-dir",
                                datasetDirectory.path,
                                "--dataset-chunk-size", "65536", "--ranking-metrics-interval", "1",
                            ], environment: [:],
                            modules: [
                                AuthModule.definition, DatasetModule.definition, RankingModule.definition,
                                InteractionModule.definition,
                            ])
                        let readiness = ReadinessProbe(targets: [], channels: [:], redis: nil)
                        // Ranking judges the gaps between metric reports: its time moves by the step, not with
                        // the load of the machine. The others keep real time (signatures carry the real time).
                        let rankingClock = SteppingWallClock()
                        func context(
                            _ target: Target, _ database: ServiceDatabase, _ channels: [Target: ServiceChannel]
                        )
                            -> ModuleContext
                        {
                            ModuleContext(
                                target: target, configuration: configuration, logger: TestEnvironment.logger,
                                database: database, shared: shared, health: HealthRegistry(), readiness: readiness,
                                clock: target == .ranking ? rankingClock : SystemWallClock(), channels: channels)
                        }
                        let transport = InProcessTransport()
                        // The interceptors a real process installs: call context, and operator keys on operator RPCs.
                        try await withGRPCClient(
                            transport: transport.client, interceptors: [CallContextClientInterceptor()]
                        ) { grpc in
                            let auth = try await AuthModule(context: context(.auth, database, [:]))
                            let datasets = try await DatasetModule(
                                context: context(.dataset, datasetDatabase, [.auth: .inProcess(grpc)]))
                            let ranking = try await RankingModule(
                                context: context(
                                    .ranking, rankingDatabase, [.auth: .inProcess(grpc), .dataset: .inProcess(grpc)]))
                            let interactions = try await InteractionModule(
                                context: context(.interaction, interactionDatabase, [.ranking: .inProcess(grpc)]))
                            let modules: [any ServiceModule] = [auth, datasets, ranking, interactions]
                            let server = GRPCServer(
                                transport: transport.server, services: modules.flatMap(\.rpcServices),
                                interceptors: [
                                    CallContextServerInterceptor(),
                                    OperatorServerInterceptor(
                                        verifier: AuthOperatorKeyVerifier(channel: .inProcess(grpc)),
                                        required: modules.reduce(into: [:]) {
                                            $0.merge($1.operatorMethods) { a, _ in a }
                                        }),
                                ])
                            // The shared state's own work (the Redis event subscriber), as a server runs it.
                            let background = Task {
                                await withDiscardingTaskGroup { group in
                                    for service in shared.services { group.addTask { try? await service.run() } }
                                }
                            }
                            defer { background.cancel() }
                            try await withThrowingDiscardingTaskGroup { group in
                                group.addTask { try await server.serve() }
                                var gatewayConfiguration = GatewayConfiguration()
                                gatewayConfiguration.policies = policies
                                configure(&gatewayConfiguration)
                                // Redis-backed runs use the shared layer, as a production gateway does.
                                let cache = ResponseCache(
                                    shared: redis == nil ? nil : shared.cache,
                                    sharedTTL: gatewayConfiguration.sharedCacheTTL,
                                    localTTL: gatewayConfiguration.localCacheTTL, logger: TestEnvironment.logger)
                                var dependencies = GatewayDependencies(
                                    readiness: readiness,
                                    services: GatewayServices(
                                        auth: Leaderboard_Auth_V1_AuthService.Client(wrapping: grpc),
                                        datasets: Leaderboard_Dataset_V1_DatasetService.Client(wrapping: grpc),
                                        ranking: Leaderboard_Ranking_V1_RankingService.Client(wrapping: grpc),
                                        interactions: Leaderboard_Interaction_V1_InteractionService.Client(
                                            wrapping: grpc)),
                                    rateLimiter: rateLimiter ?? InMemoryGCRARateLimiter(),
                                    configuration: gatewayConfiguration,
                                    cache: cache)
                                dependencies.localChunks = localChunks ? shared.localChunks : nil
                                let router = buildGatewayRouter(dependencies)
                                extend(router)
                                if live {
                                    // Over loopback with WebSocket upgrades, as the real gateway serves.
                                    let app = Application(
                                        router: router,
                                        server: gatewayServer(
                                            webSockets: GatewayWebSockets(
                                                dependencies, logger: TestEnvironment.logger),
                                            idleTimeout: gatewayConfiguration.idleTimeout,
                                            fastPath: CacheFastPath(
                                                cache: cache, clientAddresses: gatewayConfiguration.clientAddresses,
                                                logger: Logger(label: "early") { _ in earlyAnswers.handler },
                                                serverName: "leaderboard",
                                                chunks: ChunkFastPath(dependencies: dependencies))),
                                        configuration: .init(
                                            address: .hostname("127.0.0.1", port: 0), serverName: "leaderboard"))
                                    try await app.test(.live) { client in
                                        try await body(
                                            AuthGateway(
                                                client: client, sink: sink, database: database,
                                                rankingDatabase: rankingDatabase, earlyAnswers: earlyAnswers,
                                                datasetDirectory: datasetDirectory.path))
                                    }
                                } else {
                                    try await Application(router: router).test(.router) { client in
                                        try await body(
                                            AuthGateway(
                                                client: client, sink: sink, database: database,
                                                rankingDatabase: rankingDatabase,
                                                datasetDirectory: datasetDirectory.path))
                                    }
                                }
                                server.beginGracefulShutdown()
                            }
                        }
                        await redis?.close()
                    }
                }
            }
        }
    }

    struct Reply {
        let response: TestResponse
        var status: HTTPResponse.Status { response.status }
        var headers: HTTPFields { response.headers }
        var text: String { String(buffer: response.body) }
        var json: [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView))) as? [String: Any] ?? [:]
        }
        var code: String? { json["code"] as? String }
        subscript(_ key: String) -> String? { json[key] as? String }
    }

    func request(
        _ method: HTTPRequest.Method, _ uri: String, json: [String: Any]? = nil, raw: String? = nil,
        headers: HTTPFields = [:]
    ) async throws -> Reply {
        let body: ByteBuffer? =
            if let json { ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: json)) } else {
                raw.map { ByteBuffer(string: $0) }
            }
        var headers = headers
        if body != nil { headers[.contentType] = "application/json" }
        return Reply(response: try await client.executeRequest(uri: uri, method: method, headers: headers, body: body))
    }

    /// Signature headers (v2, by Tests/python/sign.py) for a body-less request, e.g. a WebSocket upgrade.
    func signatureHeaders(_ method: HTTPRequest.Method, _ uri: String, machineID: String, secret: String)
        async throws -> HTTPFields
    {
        let time = "\(Int(Date().timeIntervalSince1970))"
        let nonce = UUID().uuidString.lowercased()
        let (path, query) =
            uri.firstIndex(of: "?").map { (String(uri[..<$0]), String(uri[uri.index(after: $0)...])) } ?? (uri, "")
        let signature = try await ExternalTools.run(
            ExternalTools.python,
            [
                ExternalTools.pythonScripts.appendingPathComponent("sign.py").path, secret, "2", machineID,
                method.rawValue, path, query, time, nonce,
            ], input: Data())
        var headers: HTTPFields = [:]
        headers[HTTPField.Name("X-Device-ID")!] = machineID
        headers[HTTPField.Name("X-Request-Time")!] = time
        headers[HTTPField.Name("X-Nonce")!] = nonce
        headers[HTTPField.Name("X-Signature")!] = signature
        headers[HTTPField.Name("X-Signature-Version")!] = "2"
        return headers
    }

    /// A request signed the way docs/SIGNING.md says, the signature computed by Python's hmac (Tests/python/sign.py).
    func signed(
        _ method: HTTPRequest.Method, _ uri: String, body: String = "", version: Int, machineID: String,
        secret: String, nonce: String = UUID().uuidString.lowercased(), sentBody: String? = nil
    ) async throws -> Reply {
        let time = "\(Int(Date().timeIntervalSince1970))"
        let (path, query) =
            uri.firstIndex(of: "?").map { (String(uri[..<$0]), String(uri[uri.index(after: $0)...])) } ?? (uri, "")
        let signature = try await ExternalTools.run(
            ExternalTools.python,
            [
                ExternalTools.pythonScripts.appendingPathComponent("sign.py").path, secret, "\(version)", machineID,
                method.rawValue, path, query, time, nonce,
            ], input: Data(body.utf8))
        var headers: HTTPFields = [:]
        headers[HTTPField.Name("X-Device-ID")!] = machineID
        headers[HTTPField.Name("X-Request-Time")!] = time
        headers[HTTPField.Name("X-Nonce")!] = nonce
        headers[HTTPField.Name("X-Signature")!] = signature
        headers[HTTPField.Name("X-Signature-Version")!] = "\(version)"
        let payload = sentBody ?? body
        return try await request(method, uri, raw: payload.isEmpty ? nil : payload, headers: headers)
    }

    static func hash(_ seed: String) -> String { Array(SHA256.hash(data: Array(seed.utf8))).hexEncoded }

    func register(_ seed: String = UUID().uuidString) async throws -> (machineID: String, code: String) {
        let pow = try await solvedChallenge()
        let reply = try await request(
            .post, "/api/v1/devices/register",
            json: [
                "hardware_hash": Self.hash(seed), "gpu_hash": Self.hash("gpu"), "hardware_info": ["cpu": "EPYC"],
                "challenge_id": pow.id, "pow_solution": pow.solution,
            ])
        try #require(reply.status == .created, "\(reply.text)")
        return (try #require(reply["machine_id"]), try #require(reply["registration_code"]))
    }

    /// GET a challenge and solve it with the server's reference solver.
    func solvedChallenge() async throws -> (id: String, solution: String) {
        let challenge = try await request(.get, "/api/v1/devices/challenge")
        let text = try #require(challenge["challenge"])
        let bytes = try #require(Base64URL.decodeCanonical(text))
        let difficulty = try #require(challenge.json["difficulty_bits"] as? Int)
        return (try #require(challenge["challenge_id"]), ProofOfWork.solve(bytes: bytes, difficulty: difficulty))
    }

    /// Registers, verifies through the emailed link, activates: a device and its secret. An address is sent a few
    /// verification mails a day, so a test that needs many devices gives them addresses of their own.
    func activeDevice(email: String = "o@example.org") async throws -> (machineID: String, secret: String) {
        let device = try await register()
        let pow = try await solvedChallenge()
        let count = try sink.messages().count
        let verify = try await request(
            .post, "/api/v1/devices/verify",
            json: [
                "registration_code": device.code, "email": email, "challenge_id": pow.id,
                "pow_solution": pow.solution,
            ])
        try #require(verify.status == .accepted, "\(verify.text)")
        let link = try Self.link(in: try await sink.message(number: count + 1))
        try #require(try await request(.get, link).status == .ok)
        let activated = try await request(
            .post, "/api/v1/devices/activate", json: ["machine_id": device.machineID, "registration_code": device.code])
        return (device.machineID, try #require(activated["secret"]))
    }

    /// A Bearer header of a new admin key, made straight on the auth storage like `leaderboard admin keys create`.
    func adminKey() async throws -> HTTPFields {
        let keys = AuthModule.apiKeys(database: database, logger: TestEnvironment.logger)
        let created = try await keys.create(
            name: "ops", permissions: [.admin], rateLimitPerMinute: 10_000, expiresAt: nil)
        return [.authorization: "Bearer \(created.secret)"]
    }

    /// `POST /api/v1/admin/datasets?<query>` with `data` as the body.
    func upload(_ query: String, _ data: [UInt8], headers: HTTPFields) async throws -> Reply {
        var headers = headers
        headers[.contentType] = "application/octet-stream"
        return Reply(
            response: try await client.executeRequest(
                uri: "/api/v1/admin/datasets?\(query)", method: .post, headers: headers, body: ByteBuffer(bytes: data)))
    }

    /// The path and query of the verification link in an email.
    static func link(in message: String) throws -> String {
        let line = try #require(
            message.split(whereSeparator: \.isNewline).first { $0.hasPrefix(publicURL + "/verify/confirm?token=") })
        return String(line.dropFirst(publicURL.count))
    }
}

@Suite(
    "Device life cycle through the gateway", .timeLimit(.minutes(4)), .enabled(if: ExternalTools.hasPythonPackages))
struct DeviceLifecycleTests {
    @Test(
        "register → challenge → verify via the emailed link → activate → signed call → replay and tamper rejected → rotate",
        arguments: StorageBackend.available, [1, 2])
    func lifeCycle(_ backend: StorageBackend, version: Int) async throws {
        try await AuthGateway.with(backend) { gateway in
            let device = try await gateway.register()
            #expect(device.code.count == 12)

            let page = try await gateway.request(.get, "/verify?code=\(device.code)")
            #expect(page.status == .ok)
            #expect(page.text.contains("value=\"\(device.code)\"") && page.text.contains("/assets/verify.js"))
            #expect(page.headers[.contentSecurityPolicy]?.contains("script-src 'self'") == true)

            let pow = try await gateway.solvedChallenge()
            let verify = try await gateway.request(
                .post, "/api/v1/devices/verify",
                json: [
                    "registration_code": device.code, "email": "owner@example.org", "challenge_id": pow.id,
                    "pow_solution": pow.solution,
                ])
            #expect(verify.status == .accepted)
            #expect(verify["state"] == "pending_email")

            let email = try await gateway.sink.message(number: 1)
            #expect(email.contains("X-Envelope-To: owner@example.org"))
            #expect(email.contains(RegistrationCode.display(device.code)))
            let link = try AuthGateway.link(in: email)
            let early = try await gateway.request(
                .post, "/api/v1/devices/activate",
                json: ["machine_id": device.machineID, "registration_code": device.code])
            #expect(early.status == .forbidden && early.code == "device_not_verified")

            let confirmed = try await gateway.request(.get, link)
            #expect(confirmed.status == .ok)
            #expect(confirmed.text.contains("is verified"))
            #expect(confirmed.headers[HTTPField.Name("Referrer-Policy")!] == "no-referrer")

            let activated = try await gateway.request(
                .post, "/api/v1/devices/activate",
                json: ["machine_id": device.machineID, "registration_code": device.code])
            #expect(activated.status == .ok)
            #expect(activated.headers[.cacheControl] == "no-store")
            let secret = try #require(activated["secret"])
            let again = try await gateway.request(
                .post, "/api/v1/devices/activate",
                json: ["machine_id": device.machineID, "registration_code": device.code])
            #expect(again.status == .conflict && again.code == "registration_code_used")

            // Signed call, then the same nonce again, then a body changed after signing.
            let statusURI = version == 2 ? "/api/v1/devices/status?include=hardware&b=1" : "/api/v1/devices/status"
            // A v1 nonce has a fixed shape (a UUID here); a v2 nonce may be any printable text.
            let nonce = version == 1 ? UUID().uuidString : "replay-\(UUID().uuidString)"
            let status = try await gateway.signed(
                .get, statusURI, version: version, machineID: device.machineID, secret: secret, nonce: nonce)
            #expect(status.status == .ok, "\(status.text)")
            #expect(status["state"] == "active")
            #expect((status.json["hardware_info"] as? [String: String]) == ["cpu": "EPYC"])
            let replay = try await gateway.signed(
                .get, statusURI, version: version, machineID: device.machineID, secret: secret, nonce: nonce)
            #expect(replay.status == .conflict && replay.code == "nonce_reused")
            let tampered = try await gateway.signed(
                .post, "/api/v1/benchmarks/start", body: #"{"framework":"vllm"}"#, version: version,
                machineID: device.machineID, secret: secret, sentBody: #"{"framework":"tampered"}"#)
            #expect(tampered.status == .unauthorized && tampered.code == "signature_mismatch")
            if version == 2 {
                // v2 also binds the method, path and query.
                var reordered = try await gateway.signed(
                    .get, "/api/v1/devices/status?b=1&include=hardware", version: 2, machineID: device.machineID,
                    secret: secret)
                #expect(reordered.status == .ok)  // signed as sent, so fine
                reordered = try await gateway.signed(
                    .get, "/api/v1/devices/status?b=1", version: 2, machineID: device.machineID, secret: "lbd_wrong")
                #expect(reordered.code == "signature_mismatch")
            }

            // Rotation changes a credential: only a v2 signature made for it, verified by AuthService itself.
            if version == 1 {
                expectProblem(
                    try await gateway.signed(
                        .post, "/api/v1/devices/rotate", body: "{}", version: 1, machineID: device.machineID,
                        secret: secret), .badRequest, "signature_version_required")
                let wrongRoute = try await gateway.signatureHeaders(
                    .post, "/api/v1/devices/status", machineID: device.machineID, secret: secret)
                expectProblem(
                    try await gateway.request(.post, "/api/v1/devices/rotate", headers: wrongRoute), .unauthorized,
                    "signature_mismatch")
            }
            let tamperedRotation = try await gateway.signed(
                .post, "/api/v1/devices/rotate", body: "{}", version: 2, machineID: device.machineID, secret: secret,
                sentBody: #"{"x":1}"#)
            #expect(tamperedRotation.code == "signature_mismatch")
            let rotated = try await gateway.signed(
                .post, "/api/v1/devices/rotate", body: "{}", version: 2, machineID: device.machineID,
                secret: secret)
            #expect(rotated.status == .ok, "\(rotated.text)")
            let newSecret = try #require(rotated["secret"])
            #expect(newSecret != secret && rotated["previous_secret_valid_until"] != nil)
            for key in [secret, newSecret] {
                let reply = try await gateway.signed(
                    .get, "/api/v1/devices/status", version: version, machineID: device.machineID, secret: key)
                #expect(reply.status == .ok)
            }
        }
    }

    @Test("every bad input is a distinct problem+json code with a fitting status")
    func badInput() async throws {
        try await AuthGateway.with(.sqlite) { gateway in
            let hash = AuthGateway.hash("x")
            expectProblem(
                try await gateway.request(.post, "/api/v1/devices/register", raw: "{not json"), .badRequest,
                "invalid_json")
            expectProblem(
                try await gateway.request(.post, "/api/v1/devices/register", raw: "[1,2]"), .badRequest, "invalid_json")
            expectProblem(
                try await gateway.request(.post, "/api/v1/devices/register", json: ["gpu_hash": hash]), .badRequest,
                "missing_field")
            expectProblem(
                try await gateway.request(
                    .post, "/api/v1/devices/register", json: ["hardware_hash": 5, "gpu_hash": hash]), .badRequest,
                "invalid_field_type")
            expectProblem(
                try await gateway.request(
                    .post, "/api/v1/devices/register", json: ["hardware_hash": hash, "gpu_hash": hash]), .badRequest,
                "missing_field")  // registering costs a solved challenge
            func solved() async throws -> [String: Any] {
                let pow = try await gateway.solvedChallenge()
                return ["challenge_id": pow.id, "pow_solution": pow.solution]
            }
            expectProblem(
                try await gateway.request(
                    .post, "/api/v1/devices/register",
                    json: ["hardware_hash": "xyz", "gpu_hash": hash].merging(try await solved()) { $1 }), .badRequest,
                "invalid_hardware_hash")
            expectProblem(
                try await gateway.request(
                    .post, "/api/v1/devices/register",
                    json: ["hardware_hash": hash, "gpu_hash": "'; DROP TABLE devices;--"].merging(try await solved()) {
                        $1
                    }), .badRequest, "invalid_gpu_hash")
            expectProblem(
                try await gateway.request(
                    .post, "/api/v1/devices/register",
                    json: ["hardware_hash": hash, "gpu_hash": hash, "challenge_id": "forged", "pow_solution": "1"]),
                .badRequest, "invalid_challenge")
            let spent = try await solved()
            _ = try await gateway.request(
                .post, "/api/v1/devices/register",
                json: ["hardware_hash": hash, "gpu_hash": AuthGateway.hash("y")].merging(spent) { $1 })
            expectProblem(
                try await gateway.request(
                    .post, "/api/v1/devices/register",
                    json: ["hardware_hash": hash, "gpu_hash": AuthGateway.hash("z")].merging(spent) { $1 }), .conflict,
                "challenge_used")
            expectProblem(
                try await gateway.request(
                    .post, "/api/v1/devices/register",
                    raw: "{\"hardware_hash\":\"" + String(repeating: "a", count: 70_000) + "\"}"), .contentTooLarge,
                "payload_too_large")

            let device = try await gateway.register()
            let pow = try await gateway.solvedChallenge()
            let valid = [
                "registration_code": device.code, "email": "a@example.org", "challenge_id": pow.id,
                "pow_solution": pow.solution,
            ]
            let verifyCases: [(field: String, value: String, code: String)] = [
                ("registration_code", "ZZZZ-ZZZZ-ZZZZ", "invalid_registration_code"),
                ("pow_solution", "", "invalid_pow_solution"),  // "0" might solve it by luck; "" never does
                ("challenge_id", "bogus", "invalid_challenge"),
                ("email", "nobody", "invalid_email"),
            ]
            for bad in verifyCases {
                var fields = valid
                fields[bad.field] = bad.value
                expectProblem(
                    try await gateway.request(.post, "/api/v1/devices/verify", json: fields), .badRequest, bad.code)
            }
            expectProblem(
                try await gateway.request(
                    .post, "/api/v1/devices/confirm", json: ["token": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"]),
                .notFound, "invalid_verification_link")
            let badLink = try await gateway.request(.get, "/verify/confirm?token=%3Cscript%3E")
            #expect(badLink.status == .notFound && !badLink.text.contains("<script>"))

            // Signatures.
            expectProblem(try await gateway.request(.get, "/api/v1/devices/status"), .unauthorized, "missing_signature")
            expectProblem(
                try await gateway.signed(
                    .get, "/api/v1/devices/status", version: 1, machineID: String(repeating: "0", count: 32),
                    secret: "lbd_x"), .unauthorized, "unknown_device")
            expectProblem(
                try await gateway.signed(
                    .get, "/api/v1/devices/status", version: 1, machineID: device.machineID, secret: "lbd_x"),
                .forbidden, "device_not_verified")
            let active = try await gateway.activeDevice()
            var headers: HTTPFields = [:]
            headers[HTTPField.Name("X-Device-ID")!] = active.machineID
            headers[HTTPField.Name("X-Nonce")!] = UUID().uuidString
            headers[HTTPField.Name("X-Signature")!] = String(repeating: "0", count: 64)
            headers[HTTPField.Name("X-Request-Time")!] = "\(Int(Date().timeIntervalSince1970) - 400)"
            expectProblem(
                try await gateway.request(.get, "/api/v1/devices/status", headers: headers), .unauthorized,
                "request_time_stale")
            headers[HTTPField.Name("X-Request-Time")!] = "\(Int(Date().timeIntervalSince1970) + 400)"
            expectProblem(
                try await gateway.request(.get, "/api/v1/devices/status", headers: headers), .unauthorized,
                "request_time_future")
            headers[HTTPField.Name("X-Request-Time")!] = "\(Int(Date().timeIntervalSince1970))"
            headers[HTTPField.Name("X-Signature-Version")!] = "3"
            expectProblem(
                try await gateway.request(.get, "/api/v1/devices/status", headers: headers), .badRequest,
                "unsupported_signature_version")
            headers[HTTPField.Name("X-Signature-Version")!] = "1"
            headers[HTTPField.Name("X-Signature")!] = "not-hex"
            expectProblem(
                try await gateway.request(.get, "/api/v1/devices/status", headers: headers), .badRequest,
                "invalid_signature_format")
            // A free-form nonce is fine for v2, not for v1 (whose message has no separator after it).
            headers[HTTPField.Name("X-Nonce")!] = "nonce-12345678"
            expectProblem(
                try await gateway.request(.get, "/api/v1/devices/status", headers: headers), .badRequest,
                "invalid_nonce")
            headers[HTTPField.Name("X-Signature-Version")!] = "2"
            expectProblem(
                try await gateway.request(.get, "/api/v1/devices/status", headers: headers), .badRequest,
                "invalid_signature_format")
        }
    }

    @Test("admin key routes need a Bearer admin key; each key has its own per-minute limit")
    func adminKeys() async throws {
        try await AuthGateway.with(.sqlite) { gateway in
            let keys = AuthModule.apiKeys(database: gateway.database, logger: TestEnvironment.logger)
            let admin = try await keys.create(
                name: "root", permissions: [.admin], rateLimitPerMinute: 1000, expiresAt: nil)
            let reader = try await keys.create(
                name: "reader", permissions: [.read], rateLimitPerMinute: 1000, expiresAt: nil)
            func bearer(_ secret: String) -> HTTPFields { [.authorization: "Bearer \(secret)"] }

            let missing = try await gateway.request(.get, "/api/v1/admin/keys")
            #expect(missing.status == .unauthorized && missing.code == "missing_api_key")
            #expect(missing.headers[.wwwAuthenticate] == "Bearer")
            let wrong = try await gateway.request(.get, "/api/v1/admin/keys", headers: bearer("lbk_nope"))
            #expect(wrong.status == .unauthorized && wrong.code == "invalid_api_key")
            let denied = try await gateway.request(.get, "/api/v1/admin/keys", headers: bearer(reader.secret))
            #expect(denied.status == .forbidden && denied.code == "insufficient_permission")

            let created = try await gateway.request(
                .post, "/api/v1/admin/keys",
                json: ["name": "ci", "permissions": ["write"], "rate_limit_per_minute": 2],
                headers: bearer(admin.secret))
            #expect(created.status == .created, "\(created.text)")
            let ciSecret = try #require(created["secret"])
            let ciID = try #require(created["key_id"])
            let badPermission = try await gateway.request(
                .post, "/api/v1/admin/keys", json: ["name": "x", "permissions": ["root"]], headers: bearer(admin.secret)
            )
            #expect(badPermission.status == .badRequest && badPermission.code == "invalid_permissions")

            let listed = try await gateway.request(.get, "/api/v1/admin/keys?limit=10", headers: bearer(admin.secret))
            let names = (listed.json["keys"] as? [[String: Any]])?.compactMap { $0["name"] as? String }
            #expect(Set(names ?? []) == ["root", "reader", "ci"])
            #expect(!listed.text.contains(ciSecret))
            let badCursor = try await gateway.request(
                .get, "/api/v1/admin/keys?cursor=zzz", headers: bearer(admin.secret))
            #expect(badCursor.status == .badRequest && badCursor.code == "invalid_cursor")

            let revoked = try await gateway.request(
                .delete, "/api/v1/admin/keys/\(ciID)", headers: bearer(admin.secret))
            #expect(revoked.status == .ok && revoked["revoked_at"] != nil)
            let unknown = try await gateway.request(
                .delete, "/api/v1/admin/keys/key_0000", headers: bearer(admin.secret))
            #expect(unknown.status == .notFound && unknown.code == "unknown_api_key")

            // A key limited to 2/min: the third call in a row is 429 with Retry-After and the RateLimit headers.
            let limited = try await keys.create(
                name: "slow", permissions: [.admin], rateLimitPerMinute: 2, expiresAt: nil)
            for _ in 0..<2 {
                #expect(
                    try await gateway.request(.get, "/api/v1/admin/keys", headers: bearer(limited.secret)).status == .ok
                )
            }
            let over = try await gateway.request(.get, "/api/v1/admin/keys", headers: bearer(limited.secret))
            #expect(over.status == .tooManyRequests && over.code == "rate_limited")
            #expect(Int(over.headers[.retryAfter] ?? "") ?? 0 >= 1)
            #expect(over.headers[HTTPField.Name("RateLimit-Policy")!] == "\"api-key\";q=2;w=60")
        }
    }

    @Test("registration is limited per client address")
    func registrationRateLimit() async throws {
        var policies = AuthGateway.lenient
        policies.registration = RateLimitPolicy(name: "register", limit: 2, period: .seconds(60))
        try await AuthGateway.with(.sqlite, policies: policies) { gateway in
            _ = try await gateway.register()
            _ = try await gateway.register()
            let third = try await gateway.request(
                .post, "/api/v1/devices/register",
                json: ["hardware_hash": AuthGateway.hash("a"), "gpu_hash": AuthGateway.hash("b")])
            #expect(third.status == .tooManyRequests && third.code == "rate_limited")
            #expect(third.headers[HTTPField.Name("RateLimit")!]?.hasPrefix("\"register\";r=0;t=") == true)
        }
    }

    @Test(
        "the verify page's own script solves a challenge the server accepts (Node)",
        .enabled(if: ExternalTools.node != nil))
    func pageScript() async throws {
        try await AuthGateway.with(.sqlite) { gateway in
            let device = try await gateway.register()
            let script = try await gateway.request(.get, "/assets/verify.js")
            #expect(script.headers[.contentType]?.hasPrefix("text/javascript") == true)
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("verify-\(UUID().uuidString).js")
            try script.text.write(to: file, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(at: file) }
            let challenge = try await gateway.request(.get, "/api/v1/devices/challenge")
            let node = try #require(ExternalTools.node)
            let bytes = try #require(challenge["challenge"])
            let difficulty = try #require(challenge.json["difficulty_bits"] as? Int)
            let challengeID = try #require(challenge["challenge_id"])
            let solution = try await ExternalTools.run(
                node,
                [
                    "-e",
                    "require(process.argv[1]).solve(process.argv[2], Number(process.argv[3])).then(s => console.log(s))",
                    file.path, bytes, "\(difficulty)",
                ])
            let verify = try await gateway.request(
                .post, "/api/v1/devices/verify",
                json: [
                    "registration_code": device.code, "email": "o@example.org", "challenge_id": challengeID,
                    "pow_solution": solution,
                ])
            #expect(verify.status == .accepted, "\(verify.text)")
        }
    }
}

/// Expects a problem+json answer with this status and code.
func expectProblem(
    _ reply: AuthGateway.Reply, _ status: HTTPResponse.Status, _ code: String,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(reply.status == status, "\(reply.text)", sourceLocation: sourceLocation)
    #expect(reply.code == code, sourceLocation: sourceLocation)
    #expect(reply.headers[.contentType] == "application/problem+json", sourceLocation: sourceLocation)
}

/// Collects the request ids of the access lines a ``CacheFastPath`` writes.
final class EarlyAnswerLog: Sendable {
    private let ids = Mutex<[String]>([])

    var requestIDs: [String] { ids.withLock { $0 } }

    var handler: some LogHandler { Handler(log: self) }

    private struct Handler: LogHandler {
        let log: EarlyAnswerLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .info

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(
            level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String,
            function: String, line: UInt
        ) {
            guard message.description == "access", let id = metadata?["request_id"] else { return }
            log.ids.withLock { $0.append("\(id)") }
        }
    }
}
