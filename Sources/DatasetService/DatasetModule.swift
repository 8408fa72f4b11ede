import Foundation
public import GRPCCore
import LeaderboardAPI
import Logging
public import ServiceKit
public import ServiceLifecycle
import SwiftProtobuf

/// The Dataset target's settings.
public enum DatasetSettings {
    public static let directory = Setting(
        "dataset-dir", help: "Where encrypted dataset chunks are stored. Empty: <data-dir>/datasets.")
    public static let chunkSize = Setting(
        "dataset-chunk-size", default: "4194304",
        help: "Default plaintext bytes per encrypted chunk of an upload (65536 to 67108864).")

    /// The master key settings are shared with the auth module (``MasterKeySettings``).
    public static let all: [Setting] = MasterKeySettings.all + [directory, chunkSize]
}

/// Validated Dataset settings.
public struct DatasetConfiguration: Sendable {
    public var masterKey: MasterKeySource
    public var directory: String
    public var chunkSize: Int

    public static func read(_ reader: inout ConfigurationReader, core: LeaderboardConfiguration) -> DatasetConfiguration
    {
        let directory = reader.string(DatasetSettings.directory)
        return DatasetConfiguration(
            masterKey: MasterKeySource.read(&reader, core: core),
            directory: directory.isEmpty ? "\(core.dataDirectory)/datasets" : directory,
            chunkSize: reader.integer(DatasetSettings.chunkSize, in: DatasetAuthority.chunkSizes))
    }
}

/// Wiring of the Dataset target: storage, RPC services and background work, built from a `ModuleContext`.
public struct DatasetModule: ServiceModule {
    public static let definition = ModuleDefinition(
        target: .dataset, migrations: DatasetMigrations.all, settings: DatasetSettings.all,
        validate: { reader, core in _ = DatasetConfiguration.read(&reader, core: core) },
        make: { context in try await DatasetModule(context: context) })

    public let rpcServices: [any RegistrableRPCService]
    public let services: [any Service]
    /// Uploading and (de)activating versions is an admin task; listing inactive versions needs a key too (checked in the handler).
    public var operatorMethods: [MethodDescriptor: OperatorPermission] {
        [
            Leaderboard_Dataset_V1_DatasetService.Method.UploadDataset.descriptor: .admin,
            Leaderboard_Dataset_V1_DatasetService.Method.ActivateDataset.descriptor: .admin,
            Leaderboard_Dataset_V1_DatasetService.Method.DeactivateDataset.descriptor: .admin,
            Leaderboard_Dataset_V1_DatasetService.Method.ListAuditEntries.descriptor: .read,
        ]
    }

    init(context: ModuleContext, random: any RandomSource = SystemRandomSource()) async throws {
        var reader = ConfigurationReader(raw: context.configuration.raw)
        let configuration = DatasetConfiguration.read(&reader, core: context.configuration)
        try reader.check()
        guard let database = context.database else {
            throw StartupError(origin: "LEADERBOARD_TARGET", message: "dataset needs its database")
        }
        let masterKey = try configuration.masterKey.load(random: random)
        try await masterKey.checkFingerprint(in: database, table: "dataset_metadata", logger: context.logger)
        let blobs: FileSystemBlobStore
        do {
            blobs = try FileSystemBlobStore(root: configuration.directory)
        } catch {
            throw StartupError(
                origin: DatasetSettings.directory.environmentVariable,
                message: "cannot use '\(configuration.directory)': \(error)")
        }
        let auth: any Leaderboard_Auth_V1_AuthService.ClientProtocol =
            switch try context.channel(for: .auth) {
            case .inProcess(let client): Leaderboard_Auth_V1_AuthService.Client(wrapping: client)
            case .http2(let client): Leaderboard_Auth_V1_AuthService.Client(wrapping: client)
            }
        let datasets = DatasetAuthority(
            database: database, blobs: blobs, logger: context.logger, clock: context.clock, random: random,
            masterKey: masterKey, defaultChunkSize: configuration.chunkSize,
            wrapKey: { machineID, keyContext, key in
                let wrapped = try await auth.wrapKeyForDevice(
                    .with {
                        $0.machineID = machineID
                        $0.context = keyContext
                        $0.key = Data(key)
                    })
                return WrappedContentKey(
                    nonce: Array(wrapped.nonce), ciphertext: Array(wrapped.ciphertext), tag: Array(wrapped.tag),
                    salt: Array(wrapped.hkdfSalt), context: wrapped.context)
            })
        // A gateway in this process sends verified chunk files itself (sendfile) instead of streaming them over gRPC.
        context.shared.localChunks.register(datasets)
        rpcServices = [DatasetRPCService(datasets: datasets, events: context.shared.events)]
        services = [DatasetSweep(datasets: datasets, logger: context.logger)]
    }
}

/// Removes what crashed uploads left behind, at start and every hour.
struct DatasetSweep: Service {
    let datasets: DatasetAuthority
    let logger: Logger

    func run() async throws {
        await repeatUntilShutdown(every: .seconds(3600), logger: logger, failure: "dataset sweep failed") {
            try await datasets.sweep()
        }
    }
}
