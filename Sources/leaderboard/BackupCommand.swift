import ArgumentParser
import DatasetService
import Foundation
import Logging
import ServiceKit

/// `leaderboard backup create|list|verify|restore|prune`: backups of every service's storage and the dataset blobs,
/// checksummed, with a retention policy (docs/OPERATIONS.md, "Backups"). Takes the same settings as `serve`.
struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Back up, verify, restore and prune the storage of every service (databases and dataset blobs).",
        discussion: "The master key is never in a backup: keep it apart from them, or the backups cannot be read.",
        subcommands: [Create.self, List.self, Verify.self, Restore.self, Prune.self]
    )

    /// The settings, the backup directory and a maker over them.
    struct Context {
        let configuration: LeaderboardConfiguration
        let directory: BackupDirectory
        let maker: BackupMaker
        let logger: Logger

        init(_ settings: [String]) throws {
            configuration = try loadConfiguration(settings, checkModules: false)
            LoggingSetup.bootstrap(level: configuration.logLevel, format: configuration.logFormat)
            logger = Logger(label: "leaderboard.backup")
            directory = BackupDirectory(path: configuration.backupDirectory)
            let datasets = configuration.raw[DatasetSettings.directory].value
            maker = BackupMaker(
                configuration: configuration, directory: directory,
                datasetDirectory: datasets.isEmpty ? "\(configuration.dataDirectory)/datasets" : datasets,
                postgresTools: configuration.postgresTools, version: BuildInfo.version, logger: logger)
        }

        func manifest(_ name: String) throws -> BackupManifest {
            do {
                return try directory.manifest(name)
            } catch {
                printError(error.description)
                throw ExitCode.failure
            }
        }
    }

    static func summary(_ manifest: BackupManifest) -> [String: Any] {
        [
            "name": manifest.name, "created_at": rfc3339(manifest.createdAt * 1_000_000), "storage": manifest.storage,
            "version": manifest.version, "files": manifest.files.count, "bytes": manifest.size,
        ]
    }

    /// Runs `body`, printing a backup error as one line and exiting 1.
    static func reporting(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as BackupError {
            printError("backup: \(error.description)")
            throw ExitCode.failure
        } catch let error as StorageError {
            printError("backup: \(error.message)")
            throw ExitCode.failure
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a new backup (safe while the system runs).", discussion: settingsHelp)

        @Flag(help: "Print JSON instead of text.")
        var json = false

        @Argument(parsing: .allUnrecognized, help: "Settings as --name value (same as serve).")
        var settings: [String] = []

        func run() async throws {
            let context = try Context(settings)
            try await reporting {
                let manifest = try await context.maker.create()
                if json {
                    printJSON(summary(manifest))
                } else {
                    print("created \(manifest.name): \(manifest.files.count) files, \(manifest.size) bytes")
                    print("in \(context.directory.path)/\(manifest.name)")
                }
                printError(
                    "note: the master key is not in the backup; keep it apart from the backups"
                        + (context.configuration.isEmbeddedStorage
                            ? " (embedded default: \(context.configuration.dataDirectory)/master.key)" : ""))
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List complete backups, newest first.")

        @Flag(help: "Print JSON instead of text.")
        var json = false

        @Argument(parsing: .allUnrecognized, help: "Settings as --name value (same as serve).")
        var settings: [String] = []

        func run() async throws {
            let context = try Context(settings)
            let backups = context.directory.list()
            if json {
                let data = try JSONSerialization.data(
                    withJSONObject: backups.map(summary), options: [.sortedKeys, .prettyPrinted])
                print(String(decoding: data, as: UTF8.self))
                return
            }
            if backups.isEmpty { print("no backups in \(context.directory.path)") }
            for backup in backups {
                print(
                    "\(backup.name)  \(rfc3339(backup.createdAt * 1_000_000))  \(backup.storage)  "
                        + "\(backup.files.count) files  \(backup.size) bytes")
            }
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a backup (default: the newest) without restoring it: checksums, then each database copy.")

        @Option(name: .customLong("backup"), help: "The backup's name (leaderboard-…); default: the newest.")
        var name: String?

        @Argument(parsing: .allUnrecognized, help: "Settings as --name value (same as serve).")
        var settings: [String] = []

        func run() async throws {
            let context = try Context(settings)
            guard let name = name ?? context.directory.list().first?.name else {
                printError("backup: no backups in \(context.directory.path)")
                throw ExitCode.failure
            }
            let manifest = try context.manifest(name)
            let problems = await context.maker.check(manifest)
            guard problems.isEmpty else {
                for problem in problems { printError("\(name): \(problem)") }
                throw ExitCode.failure
            }
            print("\(name): intact (\(manifest.files.count) files, \(manifest.size) bytes)")
        }
    }

    struct Restore: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replace the storage with a backup. Stop every process of the deployment first.",
            discussion:
                "Replaces every service's database and the dataset blobs, and clears the shared state in Redis under "
                + "the key prefix (the rank index is rebuilt when RankingService starts). The master key configured "
                + "must be the one the backup was made under.\n\n" + settingsHelp)

        @Argument(help: "The backup's name (leaderboard-…).")
        var name: String

        @Flag(name: .customLong("yes"), help: "Confirm: what the storage holds now is replaced.")
        var confirmed = false

        @Argument(parsing: .allUnrecognized, help: "Settings as --name value (same as serve).")
        var settings: [String] = []

        func run() async throws {
            let context = try Context(settings)
            let manifest = try context.manifest(name)
            guard confirmed else {
                printError("backup: restoring replaces everything the storage holds now; add --yes to go ahead")
                throw ExitCode.failure
            }
            try await reporting {
                try await context.maker.restore(manifest)
                print("restored \(manifest.name) (made \(rfc3339(manifest.createdAt * 1_000_000)))")
            }
        }
    }

    struct Prune: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete backups past the retention: the newest of each of the last backup-keep-days days stay.")

        @Argument(parsing: .allUnrecognized, help: "Settings as --name value (same as serve).")
        var settings: [String] = []

        func run() async throws {
            let context = try Context(settings)
            let deleted = try context.directory.prune(
                keepDays: context.configuration.backupKeepDays, now: Int64(Date().timeIntervalSince1970))
            for name in deleted { print("deleted \(name)") }
            print("\(context.directory.list().count) backups kept, \(deleted.count) deleted")
        }
    }
}
