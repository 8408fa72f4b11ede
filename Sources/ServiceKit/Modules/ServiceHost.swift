import GRPCCore
import GRPCInProcessTransport
import GRPCNIOTransportHTTP2
public import Logging
import PostgresNIO
public import ServiceLifecycle
import UnixSignals

/// A failure to start, naming the setting at fault. Printed as one line; the process exits non-zero.
public struct StartupError: Error, Sendable, CustomStringConvertible {
    public let origin: String
    public let message: String

    public init(origin: String, message: String) {
        self.origin = origin
        self.message = message
    }

    public var description: String { "STARTUP ERROR: \(origin): \(message)" }
}

/// Starts the modules of one process in dependency order over shared plumbing, and stops them in reverse.
///
/// Order of start: storage (connect, migrate), shared state, gRPC clients and the in-process server, the modules
/// (dependencies first), the HTTP/2 gRPC server, then process-level extras. SIGTERM/SIGINT drain in reverse.
public struct ServiceHost {
    public let configuration: LeaderboardConfiguration
    public let logger: Logger
    public let clock: any WallClock

    public init(configuration: LeaderboardConfiguration, logger: Logger, clock: any WallClock = SystemWallClock()) {
        self.configuration = configuration
        self.logger = logger
        self.clock = clock
    }

    /// Runs until a shutdown signal.
    /// - Parameters:
    ///   - definitions: the module definition for each target (a switch in the executable).
    ///   - extras: process-level services built with a context that has no database (e.g. the /metrics endpoint of a
    ///     process without the gateway).
    ///   - operatorVerifier: how this process checks operator API keys on operator RPCs (AuthService's
    ///     `AuthenticateApiKey`, over the channels given).
    public func run(
        definitions: (Target) -> ModuleDefinition,
        operatorVerifier: @Sendable ([Target: ServiceChannel]) -> any OperatorKeyVerifier,
        extras: @Sendable (ModuleContext) async throws -> [any Service] = { _ in [] },
        telemetry: (any Service)? = nil
    ) async throws {
        let targets = configuration.targets.startOrder
        try await withStorage(for: targets, definitions: definitions, applyMigrations: true) { databases in
            let shared = try await makeSharedState()
            let inProcess = InProcessTransport()
            let localClient = GRPCClient(
                transport: inProcess.client,
                interceptors: [
                    RPCTracingClientInterceptor(), RPCMetricsClientInterceptor(), CallContextClientInterceptor(),
                ])
            var channels: [Target: ServiceChannel] = [:]
            var remoteClients: [GRPCClient<HTTP2ClientTransport.Posix>] = []
            for target in targets { channels[target] = .inProcess(localClient) }
            for (target, address) in configuration.remoteAddresses where channels[target] == nil {
                let client = try GRPCTransports.makeHTTP2Client(
                    address: address, tls: configuration.grpcTLS, serviceToken: configuration.serviceToken)
                remoteClients.append(client)
                channels[target] = .http2(client)
            }

            let health = HealthRegistry()
            let serviceTargets = targets.filter { $0.grpcServiceName != nil }
            for target in serviceTargets { health.set(target, .notServing) }
            let readiness = ReadinessProbe(
                targets: Set(serviceTargets + (targets.contains(.gateway) ? Target.gateway.dependencies : [])),
                channels: channels,
                redis: shared.redis,
                logger: logger)

            func context(for target: Target?) -> ModuleContext {
                ModuleContext(
                    target: target, configuration: configuration,
                    logger: target.map { logger.with("target", $0) } ?? logger,
                    database: target.flatMap { databases[$0] }, shared: shared, health: health,
                    readiness: readiness, clock: clock, channels: channels)
            }

            var rpcServices: [any RegistrableRPCService] = [HealthRPCService(registry: health)]
            var moduleServices: [any Service] = []
            var operatorMethods: [MethodDescriptor: OperatorPermission] = [:]
            for target in targets {
                let module = try await definitions(target).make(context(for: target))
                rpcServices += module.rpcServices
                moduleServices += module.services
                operatorMethods.merge(module.operatorMethods) { first, _ in first }
                if let database = databases[target] {
                    moduleServices.append(
                        ReadinessMonitor(
                            target: target, database: database, redis: shared.redis, health: health,
                            logger: logger.with("target", target)))
                }
                health.set(target, .serving)
            }
            let extraServices = try await extras(context(for: nil))

            // The trace exporter starts first and stops last, so the spans of the drain still leave.
            var services: [any Service] = (telemetry.map { [$0] } ?? []) + shared.services
            services += remoteClients.map { GRPCClientService($0) } as [any Service]
            services.append(GRPCClientService(localClient))
            // Operator RPCs need an operator key on every transport; the service token only between processes.
            let operators = OperatorServerInterceptor(verifier: operatorVerifier(channels), required: operatorMethods)
            services.append(
                GRPCServerService(
                    GRPCServer(
                        transport: inProcess.server, services: rpcServices,
                        interceptors: [
                            RPCTracingServerInterceptor(), RPCMetricsServerInterceptor(),
                            CallContextServerInterceptor(),
                            operators,
                        ])))
            if !serviceTargets.isEmpty {
                let server = GRPCTransports.makeHTTP2Server(
                    address: configuration.grpcAddress, tls: configuration.grpcTLS,
                    serviceToken: configuration.serviceToken, services: rpcServices, interceptors: [operators])
                services.append(GRPCServerService(server))
                services.append(ListeningAnnouncer(server: server, logger: logger))
            }
            services += moduleServices
            services += extraServices
            // Last to start, first to stop: watchers learn NOT_SERVING before the servers drain.
            services.append(health)

            var groupConfiguration = ServiceGroupConfiguration(
                services: services.map { .init(service: $0) },
                gracefulShutdownSignals: [.sigterm, .sigint],
                cancellationSignals: [],
                logger: logger
            )
            // Past the grace period, whatever is still draining is cancelled.
            groupConfiguration.maximumGracefulShutdownDuration = configuration.shutdownGracePeriod
            try await ServiceGroup(configuration: groupConfiguration).run()
        }
    }

    /// Applies every target's migrations and returns the versions applied, per target (`leaderboard migrate`).
    public func migrate(definitions: (Target) -> ModuleDefinition) async throws -> [Target: [Int]] {
        var applied: [Target: [Int]] = [:]
        let targets = configuration.targets.startOrder.filter(\.ownsStorage)
        try await withStorage(for: targets, definitions: definitions, applyMigrations: false) { databases in
            for target in targets {
                guard let database = databases[target] else { continue }
                applied[target] = try await MigrationRunner.apply(
                    definitions(target).migrations, to: database, logger: logger)
            }
        }
        return applied
    }

    /// Opens one target's database with its migrations applied, for the duration of `body` (operator commands such
    /// as `leaderboard admin keys`, which work on storage directly).
    public func withDatabase<Result: Sendable>(
        of target: Target,
        definitions: (Target) -> ModuleDefinition,
        _ body: (ServiceDatabase) async throws -> Result
    ) async throws -> Result {
        var result: Result?
        try await withStorage(for: [target], definitions: definitions, applyMigrations: true) { databases in
            guard let database = databases[target] else {
                throw StartupError(origin: "LEADERBOARD_TARGET", message: "\(target) has no storage")
            }
            result = try await body(database)
        }
        guard let result else { throw CancellationError() }
        return result
    }

    /// Opens each target's database, keeps PostgreSQL pools running around `body` (after applying migrations when
    /// asked), and closes everything afterwards.
    private func withStorage(
        for targets: [Target],
        definitions: (Target) -> ModuleDefinition,
        applyMigrations: Bool,
        _ body: ([Target: ServiceDatabase]) async throws -> Void
    ) async throws {
        let databases = try await openDatabases(for: targets.filter(\.ownsStorage))
        func closeFiles() async {
            for database in databases.values {
                if case .sqlite(let store) = database { await store.close() }
            }
        }
        do {
            try await runWithPools(
                databases: databases, targets: applyMigrations ? targets : [], definitions: definitions, body)
        } catch {
            await closeFiles()
            throw error
        }
        await closeFiles()
    }

    private func runWithPools(
        databases: [Target: ServiceDatabase],
        targets: [Target],
        definitions: (Target) -> ModuleDefinition,
        _ body: ([Target: ServiceDatabase]) async throws -> Void
    ) async throws {
        try await withThrowingDiscardingTaskGroup { group in
            for database in databases.values {
                if case .postgres(let store) = database { group.addTask { await store.client.run() } }
            }
            for target in targets where target.ownsStorage {
                guard let database = databases[target] else { continue }
                do {
                    try await MigrationRunner.apply(
                        definitions(target).migrations, to: database, logger: logger.with("target", target))
                } catch {
                    throw StartupError(
                        origin: configuration.postgres == nil
                            ? CoreSettings.dataDirectory.environmentVariable
                            : CoreSettings.databaseURL.environmentVariable,
                        message: "migrating \(target): \(error)")
                }
            }
            try await body(databases)
            group.cancelAll()
        }
    }

    private func openDatabases(for targets: [Target]) async throws -> [Target: ServiceDatabase] {
        var databases: [Target: ServiceDatabase] = [:]
        if let url = configuration.postgres {
            do {
                try await PostgresStore.checkReachable(url, logger: logger)
            } catch {
                throw StartupError(origin: CoreSettings.databaseURL.environmentVariable, message: error.message)
            }
            for target in targets {
                databases[target] = .postgres(
                    PostgresStore(
                        url: url, schema: target.rawValue, maximumConnections: configuration.databasePoolSize,
                        logger: logger.with("target", target)))
            }
        } else {
            for target in targets {
                let path = "\(configuration.dataDirectory)/\(target.rawValue).sqlite"
                do {
                    databases[target] = .sqlite(try await SQLiteStore.open(path: path, logger: logger))
                } catch {
                    throw StartupError(origin: CoreSettings.dataDirectory.environmentVariable, message: error.message)
                }
            }
        }
        return databases
    }

    private func makeSharedState() async throws -> SharedState {
        guard let url = configuration.redis else { return .inProcess(clock: clock) }
        let client = RedisClient(
            url: url, poolSize: configuration.redisPoolSize, timeout: configuration.redisTimeout, logger: logger)
        do {
            try await client.ping()
        } catch {
            await client.close()
            throw StartupError(
                origin: CoreSettings.redisURL.environmentVariable, message: "cannot reach \(url): \(error)")
        }
        return .redis(client, keyPrefix: configuration.redisKeyPrefix, logger: logger)
    }
}

extension Logger {
    /// A copy with one more metadata value.
    public func with(_ key: String, _ value: some CustomStringConvertible) -> Logger {
        var copy = self
        copy[metadataKey: key] = "\(value)"
        return copy
    }
}

/// Prints the HTTP/2 gRPC address once the server listens (port 0 resolves here), for operators and tests.
struct ListeningAnnouncer: Service {
    let server: GRPCServer<HTTP2ServerTransport.Posix>
    let logger: Logger

    func run() async throws {
        if let address = try? await server.listeningAddress?.ipv4 {
            announce("grpc listening on \(address.host):\(address.port)")
            logger.info("grpc listening", metadata: ["address": "\(address.host):\(address.port)"])
        }
        try? await gracefulShutdown()
    }
}
