public import GRPCCore
public import Logging
public import ServiceLifecycle

/// A running module: what it serves over gRPC and what long-running work it owns.
public protocol ServiceModule: Sendable {
    /// Served on the process's in-process and HTTP/2 gRPC servers.
    var rpcServices: [any RegistrableRPCService] { get }
    /// Started after the gRPC plumbing, stopped before it (reverse order).
    var services: [any Service] { get }
    /// The module's operator RPCs and the permission each needs: callers must send an operator API key
    /// (``OperatorServerInterceptor``), whatever the transport.
    var operatorMethods: [MethodDescriptor: OperatorPermission] { get }
}

extension ServiceModule {
    public var operatorMethods: [MethodDescriptor: OperatorPermission] { [:] }
}

/// How to build one target's module; the executable supplies one per ``Target`` (a typed switch, no string lookup).
public struct ModuleDefinition: Sendable {
    public let target: Target
    public let migrations: [Migration]
    /// The module's own settings, parsed and documented with the core ones.
    public let settings: [Setting]
    /// Checks the module's settings at start (when the target is selected), adding every problem to the reader.
    public let validate: @Sendable (inout ConfigurationReader, LeaderboardConfiguration) -> Void
    public let make: @Sendable (ModuleContext) async throws -> any ServiceModule

    public init(
        target: Target,
        migrations: [Migration] = [],
        settings: [Setting] = [],
        validate: @escaping @Sendable (inout ConfigurationReader, LeaderboardConfiguration) -> Void = { _, _ in },
        make: @escaping @Sendable (ModuleContext) async throws -> any ServiceModule
    ) {
        self.target = target
        self.migrations = migrations
        self.settings = settings
        self.validate = validate
        self.make = make
    }

    /// The same module with its settings parsed but not checked: for commands that do not start it.
    public var parsingOnly: ModuleDefinition {
        ModuleDefinition(target: target, migrations: migrations, settings: settings, make: make)
    }
}

/// Everything a module may use, handed to it at construction.
public struct ModuleContext: Sendable {
    public let target: Target?
    public let configuration: LeaderboardConfiguration
    public let logger: Logger
    /// The module's own database; nil for the gateway and process-level helpers.
    public let database: ServiceDatabase?
    public let shared: SharedState
    public let health: HealthRegistry
    public let readiness: ReadinessProbe
    public let clock: any WallClock
    let channels: [Target: ServiceChannel]

    public init(
        target: Target?,
        configuration: LeaderboardConfiguration,
        logger: Logger,
        database: ServiceDatabase?,
        shared: SharedState,
        health: HealthRegistry,
        readiness: ReadinessProbe,
        clock: any WallClock,
        channels: [Target: ServiceChannel]
    ) {
        self.target = target
        self.configuration = configuration
        self.logger = logger
        self.database = database
        self.shared = shared
        self.health = health
        self.readiness = readiness
        self.clock = clock
        self.channels = channels
    }

    /// The channel to another target (local: in-process; remote: HTTP/2). Only dependencies are reachable.
    public func channel(for target: Target) throws -> ServiceChannel {
        guard let channel = channels[target] else {
            throw StartupError(
                origin: CoreSettings.address(of: target)?.environmentVariable ?? "LEADERBOARD_TARGET",
                message: "\(target) is neither local nor given an address")
        }
        return channel
    }
}
