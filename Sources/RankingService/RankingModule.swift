import Foundation
public import GRPCCore
import LeaderboardAPI
import Logging
public import ServiceKit
public import ServiceLifecycle
import SwiftProtobuf
import Synchronization

/// The Ranking target's settings.
public enum RankingSettings {
    public static let dailyLimit = Setting(
        "ranking-daily-limit", default: "20", help: "Submissions one device may make in 24 hours (1 to 10000).")
    public static let sessionHours = Setting(
        "ranking-session-hours", default: "6", help: "Hours a benchmark session may run before it expires (1 to 48).")
    public static let metricsInterval = Setting(
        "ranking-metrics-interval", default: "10",
        help: "Seconds between the metric reports a session is expected to send (1 to 300).")

    public static let hardwareCatalog = Setting(
        "hardware-catalog", default: "",
        help:
            "A hardware catalog JSON file replacing the shipped one (docs/VALIDATION.md, \"Hardware catalog\"); empty: the shipped catalog."
    )

    public static let all: [Setting] = [dailyLimit, sessionHours, metricsInterval, hardwareCatalog]
}

/// Validated Ranking settings.
struct RankingConfiguration: Sendable {
    var policy: RankingPolicy
    var catalog = HardwareCatalog.shipped

    static func read(_ reader: inout ConfigurationReader) -> RankingConfiguration {
        var policy = RankingPolicy()
        policy.dailyLimit = reader.integer(RankingSettings.dailyLimit, in: 1...10_000)
        policy.session.lifetime = .seconds(3600 * reader.integer(RankingSettings.sessionHours, in: 1...48))
        policy.session.metricsIntervalSeconds = reader.integer(RankingSettings.metricsInterval, in: 1...300)
        // Room for the whole session at the interval, with a quarter to spare.
        policy.session.maximumSamples =
            Int(policy.session.lifetime.components.seconds) / policy.session.metricsIntervalSeconds * 5 / 4
        var configuration = RankingConfiguration(policy: policy)
        let path = reader.string(RankingSettings.hardwareCatalog)
        if !path.isEmpty {
            if let data = FileManager.default.contents(atPath: path) {
                do {
                    configuration.catalog = try HardwareCatalog(json: data)
                } catch {
                    reader.fail(RankingSettings.hardwareCatalog, "\(path): \(error.detail)")
                }
            } else {
                reader.fail(RankingSettings.hardwareCatalog, "cannot read \(path)")
            }
        }
        return configuration
    }
}

/// Wiring of the Ranking target: storage, RPC services and background work, built from a `ModuleContext`.
public struct RankingModule: ServiceModule {
    public static let definition = ModuleDefinition(
        target: .ranking, migrations: RankingMigrations.all, settings: RankingSettings.all,
        validate: { reader, _ in _ = RankingConfiguration.read(&reader) },
        make: { context in try await RankingModule(context: context) })

    public let rpcServices: [any RegistrableRPCService]
    public let services: [any Service]
    /// The review queue and rebuilds are admin tasks.
    public var operatorMethods: [MethodDescriptor: OperatorPermission] {
        [
            Leaderboard_Ranking_V1_RankingService.Method.ListReviews.descriptor: .admin,
            Leaderboard_Ranking_V1_RankingService.Method.DecideReview.descriptor: .admin,
            Leaderboard_Ranking_V1_RankingService.Method.RebuildRanking.descriptor: .admin,
            Leaderboard_Ranking_V1_RankingService.Method.ModerateRecord.descriptor: .admin,
            Leaderboard_Ranking_V1_RankingService.Method.ListAuditEntries.descriptor: .read,
        ]
    }

    init(context: ModuleContext, random: any RandomSource = SystemRandomSource()) async throws {
        var reader = ConfigurationReader(raw: context.configuration.raw)
        let configuration = RankingConfiguration.read(&reader)
        try reader.check()
        guard let database = context.database else {
            throw StartupError(origin: "LEADERBOARD_TARGET", message: "ranking needs its database")
        }
        let auth: any Leaderboard_Auth_V1_AuthService.ClientProtocol =
            switch try context.channel(for: .auth) {
            case .inProcess(let client): Leaderboard_Auth_V1_AuthService.Client(wrapping: client)
            case .http2(let client): Leaderboard_Auth_V1_AuthService.Client(wrapping: client)
            }
        let datasets: any Leaderboard_Dataset_V1_DatasetService.ClientProtocol =
            switch try context.channel(for: .dataset) {
            case .inProcess(let client): Leaderboard_Dataset_V1_DatasetService.Client(wrapping: client)
            case .http2(let client): Leaderboard_Dataset_V1_DatasetService.Client(wrapping: client)
            }
        let facts = DatasetFactsCache(datasets: datasets, clock: context.clock)
        let ranking = RankingAuthority(
            database: database, ranks: context.shared.ranks, events: context.shared.events, logger: context.logger,
            clock: context.clock, random: random, policy: configuration.policy,
            device: { machineID in
                let device = try await auth.getDeviceStatus(.with { $0.machineID = machineID })
                return DeviceFacts(hardwareHash: device.hardwareHash, gpuHash: device.gpuHash)
            },
            dataset: { version in try await facts.facts(version) },
            challenge: { version in
                let made = try await datasets.createDatasetChallenge(.with { $0.version = version })
                return SessionChallenge(
                    nonce: Array(made.nonce), spans: made.spans.map { [$0.offset, $0.length] },
                    answer: made.expectedProof)
            }, catalog: configuration.catalog)
        context.logger.info(
            "hardware catalog loaded",
            metadata: ["version": "\(configuration.catalog.version)", "gpus": "\(configuration.catalog.gpus.count)"])
        rpcServices = [RankingRPCService(ranking: ranking, events: context.shared.events)]
        services = [RankingUpkeep(ranking: ranking, logger: context.logger)]
    }
}

/// Dataset facts for a few seconds: sessions start and submit often, versions change rarely (an activation or
/// deactivation takes effect within ``lifetime``).
final class DatasetFactsCache: Sendable {
    let datasets: any Leaderboard_Dataset_V1_DatasetService.ClientProtocol
    let clock: any WallClock
    static let lifetime: Int64 = 5_000_000
    private let entries = Mutex<[String: (facts: DatasetFacts, until: Int64)]>([:])  // shared by concurrent calls

    init(datasets: any Leaderboard_Dataset_V1_DatasetService.ClientProtocol, clock: any WallClock) {
        self.datasets = datasets
        self.clock = clock
    }

    func facts(_ version: String?) async throws -> DatasetFacts {
        let key = version ?? ""
        let now = clock.microsecondsSinceEpoch()
        if let cached = entries.withLock({ $0[key] }), cached.until > now { return cached.facts }
        let found =
            if let version {
                try await datasets.getDataset(
                    .with {
                        $0.version = version
                        $0.includeManifest = true
                    })
            } else {
                try await datasets.getLatestDataset(.with { $0.includeManifest = true })
            }
        let facts = DatasetFacts(
            version: found.version, active: found.active, checksum: found.manifest.plaintextSha256,
            minimumDurationSeconds: Int(found.minDurationSeconds))
        entries.withLock { $0[key] = (facts, now + Self.lifetime) }
        return facts
    }
}

/// Warms the rank index from the database at start, then purges abandoned sessions and old events hourly.
struct RankingUpkeep: Service {
    let ranking: RankingAuthority
    let logger: Logger

    func run() async throws {
        do {
            try await ranking.warm()
        } catch {
            logger.error(
                "rank index warm-up failed; run `leaderboard admin ranking rebuild`", metadata: ["error": "\(error)"])
        }
        await repeatUntilShutdown(every: .seconds(3600), logger: logger, failure: "ranking housekeeping failed") {
            try await ranking.housekeeping()
        }
    }
}
