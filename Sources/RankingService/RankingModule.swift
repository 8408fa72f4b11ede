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

    public static let resultKeyFile = Setting(
        "result-key-file", default: "",
        help:
            "A PEM RSA private key (2048 bits or more) for DeepStressModel result uploads; empty: one made at first start "
            + "and kept sealed under the master key. Its public half is at `/api/v1/keys/result-encryption.pem`."
    )

    /// The master key settings are shared with the auth and dataset modules (``MasterKeySettings``).
    public static let all: [Setting] =
        MasterKeySettings.all + [dailyLimit, sessionHours, metricsInterval, hardwareCatalog, resultKeyFile]
        + RetentionSettings.ranking
}

/// Validated Ranking settings.
struct RankingConfiguration: Sendable {
    var policy: RankingPolicy
    var catalog = HardwareCatalog.shipped
    var masterKey = MasterKeySource.value([])
    var resultKeyPEM: String?

    static func read(_ reader: inout ConfigurationReader, core: LeaderboardConfiguration) -> RankingConfiguration {
        var policy = RankingPolicy()
        policy.dailyLimit = reader.integer(RankingSettings.dailyLimit, in: 1...10_000)
        policy.session.lifetime = .seconds(3600 * reader.integer(RankingSettings.sessionHours, in: 1...48))
        policy.session.metricsIntervalSeconds = reader.integer(RankingSettings.metricsInterval, in: 1...300)
        // Room for the whole session at the interval, with a quarter to spare.
        policy.session.maximumSamples =
            Int(policy.session.lifetime.components.seconds) / policy.session.metricsIntervalSeconds * 5 / 4
        policy.retention = RankingRetention(
            interval: reader.retentionInterval(),
            abandonedSessions: reader.retention(RetentionSettings.abandonedSessionHours, days: false),
            unrankedSamples: reader.retention(RetentionSettings.unrankedSampleDays, days: true),
            recordSamples: reader.retention(RetentionSettings.recordSampleDays, days: true),
            boardEvents: reader.retention(RetentionSettings.boardEventHours, days: false))
        var configuration = RankingConfiguration(policy: policy)
        configuration.masterKey = MasterKeySource.read(&reader, core: core)
        let keyPath = reader.string(RankingSettings.resultKeyFile)
        if !keyPath.isEmpty {
            if let text = try? String(contentsOfFile: keyPath, encoding: .utf8) {
                do {
                    _ = try DeepStressModelCrypto.ResultKey(pem: text)
                    configuration.resultKeyPEM = text
                } catch {
                    reader.fail(RankingSettings.resultKeyFile, "\(keyPath): \(error)")
                }
            } else {
                reader.fail(RankingSettings.resultKeyFile, "cannot read \(keyPath)")
            }
        }
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
        validate: { reader, core in _ = RankingConfiguration.read(&reader, core: core) },
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
        let configuration = RankingConfiguration.read(&reader, core: context.configuration)
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
            }, catalog: configuration.catalog,
            checkPrompts: { version, prompts in
                let check = try await datasets.checkPrompts(
                    .with {
                        $0.version = version
                        $0.prompts = prompts.map { claim in
                            .with {
                                $0.id = claim.id
                                $0.input = claim.input
                                $0.inputChars = claim.inputChars
                            }
                        }
                    })
                return PromptCheck(
                    datasetName: check.datasetName, items: Int(check.items), unknownIDs: check.unknownIds,
                    unknownCount: Int(check.unknownCount), mismatchedIDs: check.mismatchedIds,
                    mismatchedCount: Int(check.mismatchedCount))
            })
        context.logger.info(
            "hardware catalog loaded",
            metadata: ["version": "\(configuration.catalog.version)", "gpus": "\(configuration.catalog.gpus.count)"])
        let resultKey: DeepStressModelCrypto.ResultKey
        if let pem = configuration.resultKeyPEM {
            resultKey = try DeepStressModelCrypto.ResultKey(pem: pem)
        } else {
            let masterKey = try configuration.masterKey.load(random: random)
            try await masterKey.checkFingerprint(in: database, table: "ranking_metadata", logger: context.logger)
            resultKey = try await ResultKeyStore(database: database, masterKey: masterKey, logger: context.logger)
                .load()
        }
        rpcServices = [RankingRPCService(ranking: ranking, events: context.shared.events, resultKey: resultKey)]
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

/// Warms the rank index from the database at start, watches it for a Redis that comes back empty (rebuilding the
/// boards without an operator), and applies the retention windows every `retention-interval-minutes`.
struct RankingUpkeep: Service {
    let ranking: RankingAuthority
    let logger: Logger
    /// How often the index is checked for lost contents: one cheap read (ZCARD of the sentinel) per replica.
    var indexCheckInterval: Duration = .seconds(5)

    func run() async throws {
        do {
            // The start-up warm-up also marks the index filled, so the first check below finds nothing to do.
            try await ranking.engine.ensureIndexed(force: true)
        } catch {
            logger.error(
                "rank index warm-up failed; retrying while the index is checked", metadata: ["error": "\(error)"])
        }
        await withDiscardingTaskGroup { group in
            group.addTask {
                await repeatUntilShutdown(
                    every: indexCheckInterval, logger: logger, failure: "rank index check failed"
                ) {
                    try await ranking.engine.ensureIndexed()
                    // Records a submit left pending when its process died before its board writer batch.
                    try await ranking.engine.promoteStranded()
                }
            }
            group.addTask {
                await repeatUntilShutdown(
                    every: ranking.policy.retention.interval, logger: logger, failure: "ranking retention failed"
                ) {
                    try await ranking.housekeeping()
                }
            }
        }
    }
}

/// The server's RSA key for DeepStressModel result uploads (docs/DEEPSTRESSMODEL.md): made once, at the first start
/// of any replica, and kept in the service's metadata sealed under the master key; every replica and restart reads
/// the same one. An operator's own PEM (`--result-key-file`) replaces it.
struct ResultKeyStore {
    let database: ServiceDatabase
    let masterKey: MasterKey
    let logger: Logger

    static let name = "result_encryption_key"
    static let purpose = "ranking:result-encryption-key"

    func load() async throws -> DeepStressModelCrypto.ResultKey {
        if let stored = try await stored() { return try open(stored) }
        // Made outside the transaction (RSA generation takes a moment); the first replica to insert wins.
        let made = try DeepStressModelCrypto.ResultKey.generate()
        let sealed = Data(try masterKey.seal(Array(made.privateKeyPEM.utf8), purpose: Self.purpose))
            .base64EncodedString()
        try await database.transaction(logger: logger) { sql in
            _ = try await sql.execute(
                "INSERT INTO ranking_metadata (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                [.text(Self.name), .text(sealed)])
        }
        guard let stored = try await stored() else {
            throw StartupError(origin: "ranking", message: "the result encryption key could not be stored")
        }
        let key = try open(stored)
        if key.publicKeyPEM == made.publicKeyPEM {
            logger.notice("result encryption key created and sealed under the master key")
        }
        return key
    }

    private func stored() async throws -> String? {
        try await database.withExecutor(logger: logger) {
            try await $0.first("SELECT value FROM ranking_metadata WHERE name = $1", [.text(Self.name)])?
                .string("value")
        }
    }

    private func open(_ stored: String) throws -> DeepStressModelCrypto.ResultKey {
        guard let sealed = Data(base64Encoded: stored),
            let pem = try? masterKey.open(Array(sealed), purpose: Self.purpose)
        else {
            throw StartupError(
                origin: "ranking", message: "the stored result encryption key does not open with this master key")
        }
        return try DeepStressModelCrypto.ResultKey(pem: String(decoding: pem, as: UTF8.self))
    }
}
