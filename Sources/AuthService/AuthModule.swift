public import GRPCCore
import LeaderboardAPI
public import Logging
public import ServiceKit
public import ServiceLifecycle

/// Wiring of the Auth target: storage, RPC services and background work, built from a `ModuleContext`.
public struct AuthModule: ServiceModule {
    public static let definition = ModuleDefinition(
        target: .auth, migrations: AuthMigrations.all, settings: AuthSettings.all,
        validate: { reader, core in _ = AuthConfiguration.read(&reader, core: core) },
        make: { context in try await AuthModule(context: context) })

    public let rpcServices: [any RegistrableRPCService]
    public let services: [any Service]
    /// Operator API keys are managed with an admin key.
    public var operatorMethods: [MethodDescriptor: OperatorPermission] {
        [
            Leaderboard_Auth_V1_AuthService.Method.CreateApiKey.descriptor: .admin,
            Leaderboard_Auth_V1_AuthService.Method.ListApiKeys.descriptor: .admin,
            Leaderboard_Auth_V1_AuthService.Method.RevokeApiKey.descriptor: .admin,
            Leaderboard_Auth_V1_AuthService.Method.ListAuditEntries.descriptor: .read,
        ]
    }

    init(context: ModuleContext, random: any RandomSource = SystemRandomSource(), mailer: (any Mailer)? = nil)
        async throws
    {
        var reader = ConfigurationReader(raw: context.configuration.raw)
        let configuration = AuthConfiguration.read(&reader, core: context.configuration)
        try reader.check()
        guard let database = context.database else {
            throw StartupError(origin: "LEADERBOARD_TARGET", message: "auth needs its database")
        }
        let masterKey = try configuration.masterKey.load(random: random)
        try await masterKey.checkFingerprint(in: database, table: "auth_metadata", logger: context.logger)
        let mailer =
            mailer
            ?? configuration.smtp.map { SMTPMailer(url: $0, from: configuration.mailFrom) as any Mailer }
            ?? LogMailer(logger: context.logger)
        let devices = DeviceAuthority(
            database: database, logger: context.logger, clock: context.clock, random: random,
            nonces: context.shared.nonces, mailer: mailer, masterKey: masterKey,
            powDifficulty: configuration.powDifficulty, secretOverlap: configuration.secretOverlap,
            publicURL: configuration.publicURL)
        let keys = APIKeyAuthority(database: database, logger: context.logger, clock: context.clock, random: random)
        let clientKeys = ClientKeyAuthority(
            database: database, logger: context.logger, clock: context.clock, random: random)
        rpcServices = [AuthRPCService(devices: devices, keys: keys, clientKeys: clientKeys)]
        services = [AuthHousekeeping(devices: devices, logger: context.logger)]
    }

    /// Operator keys straight on the database, for `leaderboard admin keys` (works before any key exists).
    public static func apiKeys(database: ServiceDatabase, logger: Logger) -> APIKeyAuthority {
        APIKeyAuthority(database: database, logger: logger, clock: SystemWallClock(), random: SystemRandomSource())
    }
}

/// Purges expired codes, links and rotation overlaps every ten minutes (and once at start).
struct AuthHousekeeping: Service {
    let devices: DeviceAuthority
    let logger: Logger
    var interval: Duration = .seconds(600)

    func run() async throws {
        await repeatUntilShutdown(every: interval, logger: logger, failure: "auth housekeeping failed") {
            let counts = try await devices.purge()
            if counts != AuthRepository.PurgeCounts() {
                logger.info(
                    "auth housekeeping",
                    metadata: [
                        "codes": "\(counts.codes)", "verifications": "\(counts.verifications)",
                        "previous_secrets": "\(counts.previousSecrets)",
                        "abandoned_devices": "\(counts.abandonedDevices)",
                    ])
            }
        }
    }
}
