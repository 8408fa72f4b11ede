public import GRPCCore
public import Hummingbird
public import HummingbirdCore
import HummingbirdWebSocket
public import Logging
import NIOCore
public import ServiceKit
public import ServiceLifecycle

/// Limits of the public route classes (GCRA; ARCHITECTURE.md §5, docs/GATEWAY.md). Set with `--rate-limit-*`.
public struct GatewayPolicies: Sendable {
    /// Device registration and activation.
    public var registration = RateLimitPolicy(name: "register", limit: 5, period: .seconds(60))
    /// Verification requests and email-link confirmations.
    public var verification = RateLimitPolicy(name: "verify", limit: 5, period: .seconds(60))
    /// Verification requests (each sends a mail) per client address and day, on top of ``verification``.
    public var verificationMails = RateLimitPolicy(name: "verify-daily", limit: 20, period: .seconds(86_400))
    /// Proof-of-work challenges (cheap and stateless, but not free).
    public var challenge = RateLimitPolicy(name: "challenge", limit: 30, period: .seconds(60))
    /// Comments and flags (anonymous ones included).
    public var comments = RateLimitPolicy(name: "comments", limit: 10, period: .seconds(60))
    /// Signed requests, per device.
    public var signed = RateLimitPolicy(name: "signed", limit: 60, period: .seconds(60))
    /// Dataset ciphertext per client address, in units of ``downloadUnit`` bytes (16 GiB an hour).
    public var download = RateLimitPolicy(name: "download", limit: 16 << 14, period: .seconds(3600))
    /// Public reads that reach the services (cache misses, uncacheable answers) per client address; hits are free.
    public var publicReads = RateLimitPolicy(name: "public-read", limit: 300, period: .seconds(60))
    /// Whole-board exports per client address.
    public var exports = RateLimitPolicy(name: "export", limit: 10, period: .seconds(3600))
    /// WebSocket upgrades per client address.
    public var webSockets = RateLimitPolicy(name: "websocket", limit: 30, period: .seconds(60))

    /// Bytes per unit of the download policy.
    public static let downloadUnit: Int64 = 64 << 10

    public init() {}
}

/// What the gateway's routes need: the services behind it (nil for an operations-only app), shared state, time.
public struct GatewayDependencies: Sendable {
    public var readiness: ReadinessProbe
    public var services: GatewayServices?
    public var rateLimiter: any RateLimiter
    public var clock: any WallClock
    public var configuration: GatewayConfiguration
    public var cache: ResponseCache
    /// Whether this router serves `/metrics` (an operations-only router always does).
    public var servesMetrics = true
    /// Where a DatasetService in this process offers verified chunk files (``ChunkFileBody``).
    public var localChunks: LocalChunkFiles?
    /// Whether chunk files may go out with sendfile: not over HTTPS, where TLS encrypts in user space.
    public var sendsFiles = true

    public var policies: GatewayPolicies { configuration.policies }

    public init(
        readiness: ReadinessProbe,
        services: GatewayServices? = nil,
        rateLimiter: any RateLimiter = InMemoryGCRARateLimiter(),
        clock: any WallClock = SystemWallClock(),
        configuration: GatewayConfiguration = GatewayConfiguration(),
        cache: ResponseCache? = nil,
        logger: Logger = Logger(label: "gateway")
    ) {
        self.readiness = readiness
        self.services = services
        self.rateLimiter = rateLimiter
        self.clock = clock
        self.configuration = configuration
        self.cache =
            cache
            ?? ResponseCache(
                shared: nil, sharedTTL: configuration.sharedCacheTTL, localTTL: configuration.localCacheTTL,
                logger: logger)
    }
}

/// The router every gateway (and operations-only) app uses: middleware in order, then the routes.
///
/// Request id outermost (so every response carries it), then, when tracing is on, the request's span (a new trace: a
/// client's trace context is dropped first), then the access log and metrics (which see the final
/// status), CORS (preflights answered before routing), gzip (of whatever comes back, problems included),
/// problem+json conversion, the NUL guard, and the request deadline, innermost so a 504 is a problem like any other.
public func buildGatewayRouter(_ dependencies: GatewayDependencies) -> Router<GatewayRequestContext> {
    let router = Router(context: GatewayRequestContext.self)
    router.addMiddleware {
        RequestIDMiddleware()
        ClientAddressMiddleware(resolver: dependencies.configuration.clientAddresses)
    }
    if TracingSetup.isEnabled {
        router.addMiddleware {
            UntrustedTraceContextMiddleware()
            TracingMiddleware(redactingQueryParameters: ["token", "code", "registration_code"])
        }
    }
    router.addMiddleware {
        AccessLogMiddleware()
        MetricsMiddleware<GatewayRequestContext>()
        CORSPolicyMiddleware(origins: dependencies.configuration.corsOrigins)
        CompressionMiddleware()
        ProblemMiddleware()
        NULCharacterMiddleware()
        DeadlineMiddleware(timeout: dependencies.configuration.requestTimeout)
    }
    OperationsRoutes.add(to: router, readiness: dependencies.readiness, metrics: dependencies.servesMetrics)
    if let services = dependencies.services {
        DeviceRoutes.add(to: router, dependencies: dependencies, auth: services.auth)
        APIKeyRoutes.add(to: router, dependencies: dependencies, auth: services.auth)
        ClientKeyRoutes.add(to: router, dependencies: dependencies, auth: services.auth)
        VerifyPages.add(to: router, dependencies: dependencies, auth: services.auth)
        router.get("/openapi.json") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json", .cacheControl: "public, max-age=300"],
                body: .init(byteBuffer: OpenAPIDocument.bytes))
        }
        DatasetRoutes.add(to: router, dependencies: dependencies, auth: services.auth, datasets: services.datasets)
        DeepStressModelRoutes.add(
            to: router, dependencies: dependencies, auth: services.auth, datasets: services.datasets,
            ranking: services.ranking)
        AuditRoutes.add(to: router, dependencies: dependencies, services: services)
        RankingRoutes.add(
            to: router, dependencies: dependencies, auth: services.auth, ranking: services.ranking,
            interactions: services.interactions)
        InteractionRoutes.add(
            to: router, dependencies: dependencies, auth: services.auth, interactions: services.interactions)
        SitePages.add(
            to: router, dependencies: dependencies, ranking: services.ranking, interactions: services.interactions,
            datasets: services.datasets)
    }
    return router
}

/// The gateway's HTTP server: HTTP/1.1 (with WebSocket upgrades when given its endpoints, ``GatewayHTTPChannel``)
/// that closes a connection which sends no complete first request head within `idleTimeout`
/// (``FirstRequestDeadlineHandler``) or stays silent that long between requests — a client sending its headers a byte
/// at a time holds nothing for long — and reads WebSocket frames of at most 16 KiB (clients send only short control
/// texts), pinging idle sockets.
/// With `certificates`, every connection starts with a TLS handshake under the current certificate; with `fastPath`,
/// cache hits are answered on the event loop (``CacheFastPath``).
public func gatewayServer(
    webSockets: GatewayWebSockets?, idleTimeout: Duration,
    certificates: GatewayCertificates? = nil, fastPath: CacheFastPath? = nil
) -> HTTPServerBuilder {
    let (seconds, attoseconds) = idleTimeout.components
    let timeout = TimeAmount.nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    let http1 = HTTP1Channel.Configuration(
        additionalChannelHandlers: fastPath?.channelHandlers() ?? [], idleTimeout: timeout)
    @Sendable func secured<Base: ServerChildChannel>(_ base: Base) -> any ServerChildChannel {
        let deadline = FirstRequestDeadlineChannel(base: base, timeout: timeout)
        guard let certificates else { return deadline }
        return ReloadableTLSChannel(base: deadline, certificates: certificates)
    }
    guard let webSockets else {
        return HTTPServerBuilder { responder in
            secured(HTTP1Channel(responder: responder, configuration: http1))
        }
    }
    return HTTPServerBuilder { responder in
        secured(GatewayHTTPChannel(responder: responder, configuration: http1, webSockets: webSockets))
    }
}

/// The `Server` header of every answer.
let serverName = "leaderboard"

/// The gateway app on `address`; prints `<name> listening on http://host:port` once bound (port 0 resolves here).
public func buildGatewayApplication(
    router: Router<GatewayRequestContext>,
    webSockets: GatewayWebSockets? = nil,
    address: HostPort,
    name: String,
    idleTimeout: Duration = .seconds(30),
    certificates: GatewayCertificates? = nil,
    fastPath: CacheFastPath? = nil,
    logger: Logger
) -> some ApplicationProtocol & Service {
    let scheme = certificates == nil ? "http" : "https"
    return Application(
        router: router,
        server: gatewayServer(
            webSockets: webSockets, idleTimeout: idleTimeout, certificates: certificates, fastPath: fastPath),
        configuration: .init(address: .hostname(address.host, port: address.port), serverName: serverName),
        onServerRunning: { channel in
            let port = channel.localAddress?.port ?? address.port
            announce("\(name) listening on \(scheme)://\(address.host):\(port)")
            logger.info("\(name) listening", metadata: ["address": "\(address.host):\(port)"])
        },
        logger: logger
    )
}

/// The gateway target: public REST/WebSocket in front of the four services.
public struct GatewayModule: ServiceModule {
    public static let definition = ModuleDefinition(
        target: .gateway, settings: GatewaySettings.all,
        validate: { reader, _ in _ = GatewayConfiguration.read(&reader) },
        make: { context in try GatewayModule(context: context) })

    public let rpcServices: [any RegistrableRPCService] = []
    public let services: [any Service]

    init(context: ModuleContext) throws {
        var reader = ConfigurationReader(raw: context.configuration.raw)
        let configuration = GatewayConfiguration.read(&reader)
        try reader.check()
        let cache = ResponseCache(
            shared: context.shared.redis == nil ? nil : context.shared.cache, sharedTTL: configuration.sharedCacheTTL,
            localTTL: configuration.localCacheTTL, logger: context.logger)
        var dependencies = GatewayDependencies(
            readiness: context.readiness,
            services: try GatewayServices(channels: context.channel(for:)),
            rateLimiter: context.shared.rateLimiter,
            clock: context.clock,
            configuration: configuration,
            cache: cache)
        dependencies.servesMetrics = configuration.metricsOnHTTP.onPublicListener(context.configuration.httpAddress)
        dependencies.localChunks = context.shared.localChunks
        dependencies.sendsFiles = configuration.tls == nil
        let router = buildGatewayRouter(dependencies)
        var certificates: GatewayCertificates?
        if let tls = configuration.tls {
            do {
                certificates = try GatewayCertificates(certificatePath: tls.certificatePath, keyPath: tls.keyPath)
            } catch {
                throw StartupError(origin: GatewaySettings.tlsCertificate.environmentVariable, message: error.message)
            }
        }
        var services: [any Service] = [
            CacheInvalidationListener(cache: cache, events: context.shared.events, logger: context.logger),
            CacheWarmUp(responder: router.buildResponder(), logger: context.logger),
            buildGatewayApplication(
                router: router, webSockets: GatewayWebSockets(dependencies, logger: context.logger),
                address: context.configuration.httpAddress, name: "gateway", idleTimeout: configuration.idleTimeout,
                certificates: certificates,
                // With tracing on, every request gets its span, so every request takes the general path.
                fastPath: TracingSetup.isEnabled
                    ? nil
                    : CacheFastPath(
                        cache: cache, clientAddresses: configuration.clientAddresses, logger: context.logger,
                        serverName: serverName, chunks: ChunkFastPath(dependencies: dependencies)),
                logger: context.logger),
        ]
        if !dependencies.servesMetrics { services.append(buildOperationsService(context: context)) }
        if let certificates {
            context.logger.info(
                "serving HTTPS",
                metadata: ["sha256": "\(certificates.fingerprint)", "file": "\(certificates.certificatePath)"])
            services.append(
                CertificateReloadService(
                    certificates: certificates, interval: configuration.tlsReloadInterval, logger: context.logger))
        }
        self.services = services
    }
}

/// `/metrics` and `/health/*` for a process that does not run the gateway, on `--ops-address`.
public func buildOperationsService(context: ModuleContext) -> any Service {
    buildGatewayApplication(
        router: buildGatewayRouter(GatewayDependencies(readiness: context.readiness, clock: context.clock)),
        address: context.configuration.operationsAddress, name: "ops", logger: context.logger)
}
