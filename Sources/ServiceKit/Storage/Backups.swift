import Crypto
import Foundation
public import Logging
import PostgresNIO
import SQLiteNIO
public import ServiceLifecycle

/// The settings of `leaderboard backup` (docs/OPERATIONS.md, "Backups").
public enum BackupSettings {
    public static let directory = Setting(
        "backup-dir", help: "Where `leaderboard backup` writes and finds backups. Empty: <data-dir>/backups.")
    public static let keepDays = Setting(
        "backup-keep-days", default: "30",
        help: "Days `backup prune` keeps: the newest backup of each of the last N days (1 to 3650); the newest "
            + "backup of all is always kept.")
    public static let postgresTools = Setting(
        "backup-pg-bin-dir",
        help: "Directory holding pg_dump and pg_restore (of the server's major version or newer). Empty: from PATH.")

    public static let all = [directory, keepDays, postgresTools]
}

/// What one backup holds, written last into its directory as `manifest.json`: a backup without one is incomplete.
public struct BackupManifest: Codable, Sendable, Equatable {
    public struct File: Codable, Sendable, Equatable {
        /// Relative to the backup's directory.
        public var path: String
        public var size: Int64
        public var sha256: String
    }

    public var format = 1
    public var name: String

    public init(
        name: String, createdAt: Int64, version: String, storage: String, services: [String], files: [File]
    ) {
        self.name = name
        self.createdAt = createdAt
        self.version = version
        self.storage = storage
        self.services = services
        self.files = files
    }

    /// Unix seconds.
    public var createdAt: Int64
    public var version: String
    /// `sqlite` (one file per service) or `postgres` (one `pg_dump` of every service schema).
    public var storage: String
    public var services: [String]
    public var files: [File]

    public var size: Int64 { files.reduce(0) { $0 + $1.size } }

    enum CodingKeys: String, CodingKey {
        case format, name, createdAt = "created_at", version, storage, services, files
    }
}

/// Why a backup command failed; `description` is what the operator reads.
public struct BackupError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The backups in one directory: each a subdirectory `leaderboard-<UTC time>` with a manifest, made under a
/// `.partial-` name and renamed when complete, so a crash mid-backup never looks like a backup.
public struct BackupDirectory: Sendable {
    public let path: String
    static let prefix = "leaderboard-"
    static let partialPrefix = ".partial-"
    public static let manifestName = "manifest.json"
    /// node_exporter's textfile collector format, for hosts that scrape backups that way.
    public static let textfileName = "leaderboard_backup.prom"

    public init(path: String) { self.path = path }

    /// Complete backups, newest first. Directories without a readable manifest are skipped.
    public func list() -> [BackupManifest] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.filter { $0.hasPrefix(Self.prefix) }.compactMap { try? manifest($0) }
            .sorted { ($0.createdAt, $0.name) > ($1.createdAt, $1.name) }
    }

    public func manifest(_ name: String) throws(BackupError) -> BackupManifest {
        guard name.hasPrefix(Self.prefix), !name.contains("/"), name != "." && name != ".." else {
            throw BackupError("\(name) is not a backup name (leaderboard-…)")
        }
        let file = "\(path)/\(name)/\(Self.manifestName)"
        guard let data = FileManager.default.contents(atPath: file) else {
            throw BackupError("no backup \(name) in \(path) (or it is incomplete: no \(Self.manifestName))")
        }
        do {
            return try JSONDecoder().decode(BackupManifest.self, from: data)
        } catch {
            throw BackupError("\(file) is not a backup manifest: \(error)")
        }
    }

    /// Every file's size and SHA-256 against the manifest; returns the problems (none: intact).
    public func verify(_ manifest: BackupManifest) -> [String] {
        var problems: [String] = []
        for file in manifest.files {
            let full = "\(path)/\(manifest.name)/\(file.path)"
            guard let (size, digest) = try? Self.digest(full) else {
                problems.append("\(file.path): missing or unreadable")
                continue
            }
            if size != file.size { problems.append("\(file.path): \(size) bytes, the manifest says \(file.size)") }
            if digest != file.sha256 { problems.append("\(file.path): SHA-256 differs from the manifest") }
        }
        return problems
    }

    /// The backups `prune` keeps: the newest of each UTC day among the `keepDays` newest days that have backups
    /// no older than `keepDays` days, and always the newest of all.
    public static func kept(_ backups: [BackupManifest], keepDays: Int, now: Int64) -> Set<String> {
        var kept = Set<String>()
        if let newest = backups.first { kept.insert(newest.name) }
        var days = Set<Int64>()
        let oldest = now - Int64(keepDays) * 86_400
        for backup in backups where backup.createdAt > oldest {
            let day = backup.createdAt / 86_400
            if days.insert(day).inserted { kept.insert(backup.name) }
        }
        return kept
    }

    /// Deletes backups outside the retention (``kept(_:keepDays:now:)``) and partial ones older than a day;
    /// returns the names deleted.
    public func prune(keepDays: Int, now: Int64) throws -> [String] {
        let backups = list()
        let kept = Self.kept(backups, keepDays: keepDays, now: now)
        var deleted: [String] = []
        for backup in backups where !kept.contains(backup.name) {
            try FileManager.default.removeItem(atPath: "\(path)/\(backup.name)")
            deleted.append(backup.name)
        }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        where name.hasPrefix(Self.partialPrefix) {
            let attributes = try? FileManager.default.attributesOfItem(atPath: "\(path)/\(name)")
            let modified = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            if Int64(modified) < now - 86_400 {
                try FileManager.default.removeItem(atPath: "\(path)/\(name)")
                deleted.append(name)
            }
        }
        return deleted
    }

    /// Size and SHA-256 (hex) of a file, read a mebibyte at a time.
    static func digest(_ path: String) throws -> (Int64, String) {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw BackupError("cannot read \(path)") }
        defer { try? handle.close() }
        var hash = SHA256()
        var size: Int64 = 0
        while let data = try handle.read(upToCount: 1 << 20), !data.isEmpty {
            hash.update(data: data)
            size += Int64(data.count)
        }
        return (size, hash.finalize().hexEncoded)
    }

    /// Every regular file under `directory`, as paths relative to it, sorted.
    static func files(under directory: String) -> [String] {
        guard let enumerator = FileManager.default.enumerator(atPath: directory) else { return [] }
        var files: [String] = []
        while let relative = enumerator.nextObject() as? String {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: "\(directory)/\(relative)", isDirectory: &isDirectory),
                !isDirectory.boolValue
            {
                files.append(relative)
            }
        }
        return files.sorted()
    }
}

/// Makes and restores backups of one deployment's storage: every service's database (SQLite's online backup,
/// `VACUUM INTO`, per file; or one consistent `pg_dump` of every service schema) and the dataset blobs. The master
/// key is never in a backup: without it the device secrets, dataset keys and result key in a backup cannot be opened,
/// so it must be kept apart from the backups (docs/OPERATIONS.md).
public struct BackupMaker: Sendable {
    public var configuration: LeaderboardConfiguration
    public var directory: BackupDirectory
    public var datasetDirectory: String
    public var postgresTools: String
    public var version: String
    public var logger: Logger

    /// Services with storage, in the order they are dumped and restored.
    static let services = Target.allCases.filter(\.ownsStorage).map(\.rawValue)

    public init(
        configuration: LeaderboardConfiguration, directory: BackupDirectory, datasetDirectory: String,
        postgresTools: String, version: String, logger: Logger
    ) {
        self.configuration = configuration
        self.directory = directory
        self.datasetDirectory = datasetDirectory
        self.postgresTools = postgresTools
        self.version = version
        self.logger = logger
    }

    /// Writes a new backup and returns its manifest. Safe while the system runs: each SQLite copy is a consistent
    /// snapshot of its file, the PostgreSQL dump one snapshot of all schemas; dataset blobs are copied after the
    /// databases, so every version the databases name has its files (blobs are written before their version row).
    public func create() async throws -> BackupManifest { try await create(now: Date()) }

    func create(now: Date) async throws -> BackupManifest {
        try FileSystem.createDirectory(directory.path)
        let name = uniqueName(now)
        let partial = "\(directory.path)/\(BackupDirectory.partialPrefix)\(name)"
        try FileSystem.createDirectory(partial)
        do {
            let storage: String
            if let postgres = configuration.postgres {
                storage = "postgres"
                try await runTool(
                    "pg_dump",
                    ["--format=custom", "--no-owner", "--no-privileges", "--file=\(partial)/postgres.dump"]
                        + Self.services.map { "--schema=\($0)" }, postgres: postgres)
            } else {
                storage = "sqlite"
                for service in Self.services {
                    let source = "\(configuration.dataDirectory)/\(service).sqlite"
                    guard FileManager.default.fileExists(atPath: source) else { continue }
                    let store = try await SQLiteStore.open(path: source, logger: logger)
                    do {
                        try await store.copy(to: "\(partial)/\(service).sqlite")
                    } catch {
                        await store.close()
                        throw error
                    }
                    await store.close()
                }
            }
            for file in BackupDirectory.files(under: datasetDirectory) {
                let target = "\(partial)/datasets/\(file)"
                try FileSystem.createDirectory((target as NSString).deletingLastPathComponent)
                try FileManager.default.copyItem(atPath: "\(datasetDirectory)/\(file)", toPath: target)
            }
            var files: [BackupManifest.File] = []
            for file in BackupDirectory.files(under: partial) {
                let (size, digest) = try BackupDirectory.digest("\(partial)/\(file)")
                files.append(.init(path: file, size: size, sha256: digest))
            }
            let manifest = BackupManifest(
                name: name, createdAt: Int64(now.timeIntervalSince1970), version: version, storage: storage,
                services: Self.services, files: files)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(manifest).write(to: URL(fileURLWithPath: "\(partial)/\(BackupDirectory.manifestName)"))
            try FileManager.default.moveItem(atPath: partial, toPath: "\(directory.path)/\(name)")
            writeTextfile(manifest)
            return manifest
        } catch {
            try? FileManager.default.removeItem(atPath: partial)
            throw error
        }
    }

    /// Replaces the storage with a backup's contents. Every process of the deployment must be stopped: databases,
    /// dataset blobs and (when Redis is configured) the shared state under the key prefix are replaced or cleared;
    /// the rank index is rebuilt from the restored database when RankingService starts.
    public func restore(_ manifest: BackupManifest) async throws {
        let source = "\(directory.path)/\(manifest.name)"
        let problems = directory.verify(manifest)
        guard problems.isEmpty else {
            throw BackupError("\(manifest.name) is damaged: \(problems.joined(separator: "; "))")
        }
        switch (manifest.storage, configuration.postgres) {
        case ("postgres", let postgres?):
            try await dropSchemas(postgres)
            try await runTool(
                "pg_restore",
                [
                    "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
                    "\(source)/postgres.dump",
                ],
                postgres: postgres)
        case ("sqlite", nil):
            try FileSystem.createDirectory(configuration.dataDirectory)
            for service in Self.services {
                let target = "\(configuration.dataDirectory)/\(service).sqlite"
                for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: target + suffix) }
                let copy = "\(source)/\(service).sqlite"
                if FileManager.default.fileExists(atPath: copy) {
                    try FileManager.default.copyItem(atPath: copy, toPath: target)
                }
            }
        case (let kind, _):
            throw BackupError(
                "\(manifest.name) is a \(kind) backup, but this configuration uses "
                    + (configuration.postgres == nil ? "embedded SQLite storage" : "PostgreSQL"))
        }
        try? FileManager.default.removeItem(atPath: datasetDirectory)
        try FileSystem.createDirectory(datasetDirectory)
        for file in manifest.files where file.path.hasPrefix("datasets/") {
            let target = "\(datasetDirectory)/\(file.path.dropFirst("datasets/".count))"
            try FileSystem.createDirectory((target as NSString).deletingLastPathComponent)
            try FileManager.default.copyItem(atPath: "\(source)/\(file.path)", toPath: target)
        }
        if let redis = configuration.redis {
            let client = RedisClient(url: redis, poolSize: 1, timeout: configuration.redisTimeout, logger: logger)
            let cleared: Int
            do {
                cleared = try await client.deleteKeys(matchingPrefix: configuration.redisKeyPrefix)
            } catch {
                await client.close()
                throw BackupError("the storage is restored, but clearing Redis failed: \(error); flush it by hand")
            }
            await client.close()
            logger.notice(
                "shared state cleared", metadata: ["keys": "\(cleared)", "prefix": "\(configuration.redisKeyPrefix)"])
        }
    }

    /// Checks a backup without restoring it: every file against the manifest, then each SQLite copy's
    /// `PRAGMA integrity_check`, or the dump's table of contents (`pg_restore --list`). Returns the problems.
    public func check(_ manifest: BackupManifest) async -> [String] {
        var problems = directory.verify(manifest)
        guard problems.isEmpty else { return problems }
        let source = "\(directory.path)/\(manifest.name)"
        switch manifest.storage {
        case "postgres":
            do {
                try await runTool("pg_restore", ["--list", "\(source)/postgres.dump"], postgres: nil)
            } catch {
                problems.append("postgres.dump: \(error)")
            }
        default:
            // Opening a database changes it (the journal mode), so each is checked in a scratch copy.
            let scratch = NSTemporaryDirectory() + "leaderboard-verify-\(UUID().uuidString)"
            defer { try? FileManager.default.removeItem(atPath: scratch) }
            for file in manifest.files where file.path.hasSuffix(".sqlite") && !file.path.contains("/") {
                do {
                    try FileSystem.createDirectory(scratch)
                    try FileManager.default.copyItem(
                        atPath: "\(source)/\(file.path)", toPath: "\(scratch)/\(file.path)")
                    let store = try await SQLiteStore.open(path: "\(scratch)/\(file.path)", logger: logger)
                    let rows = try await store.withConnection { try await $0.query("PRAGMA integrity_check") }
                    await store.close()
                    let answer = rows.first?.column("integrity_check")?.string ?? ""
                    if answer != "ok" { problems.append("\(file.path): \(answer)") }
                } catch {
                    problems.append("\(file.path): \(error)")
                }
            }
        }
        return problems
    }

    /// `leaderboard-<UTC yyyyMMdd'T'HHmmss'Z'>`, with `-2`, `-3`, … if that second is taken.
    private func uniqueName(_ now: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        let base = BackupDirectory.prefix + formatter.string(from: now)
        var name = base
        var attempt = 1
        while FileManager.default.fileExists(atPath: "\(directory.path)/\(name)")
            || FileManager.default.fileExists(atPath: "\(directory.path)/\(BackupDirectory.partialPrefix)\(name)")
        {
            attempt += 1
            name = "\(base)-\(attempt)"
        }
        return name
    }

    /// The newest backup's time for node_exporter's textfile collector (the serving processes export the same
    /// figure themselves when they can read the backup directory).
    private func writeTextfile(_ manifest: BackupManifest) {
        let family = MetricFamilies.backupLastSuccess
        let text = """
            # HELP \(family.name) \(family.help)
            # TYPE \(family.name) gauge
            \(family.name) \(manifest.createdAt)

            """
        let path = "\(directory.path)/\(BackupDirectory.textfileName)"
        // Written aside and renamed over the old one, so a collector never reads half a file.
        guard (try? Data(text.utf8).write(to: URL(fileURLWithPath: path + ".tmp"))) != nil else { return }
        if rename(path + ".tmp", path) != 0 { try? FileManager.default.removeItem(atPath: path + ".tmp") }
    }

    /// The service schemas and everything in them, before a restore recreates them from the dump.
    private func dropSchemas(_ postgres: PostgresURL) async throws {
        let store = PostgresStore(url: postgres, schema: "public", maximumConnections: 1, logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await store.client.run() }
            defer { group.cancelAll() }
            _ = try await ServiceDatabase.postgres(store).withExecutor(logger: logger) {
                try await $0.execute(
                    "DROP SCHEMA IF EXISTS \(Self.services.map { "\"\($0)\"" }.joined(separator: ", ")) CASCADE")
            }
        }
    }

    /// Runs pg_dump or pg_restore against `postgres`; the password travels in the environment, not the arguments.
    private func runTool(_ tool: String, _ arguments: [String], postgres: PostgresURL?) async throws {
        let executable = postgresTools.isEmpty ? try Self.which(tool) : "\(postgresTools)/\(tool)"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        var environment = ProcessInfo.processInfo.environment
        process.arguments = arguments
        if let postgres {
            if tool == "pg_restore" { process.arguments?.append("--dbname=\(postgres.database)") }
            environment["PGHOST"] = postgres.host
            environment["PGPORT"] = "\(postgres.port)"
            environment["PGUSER"] = postgres.username
            environment["PGDATABASE"] = postgres.database
            environment["PGSSLMODE"] = postgres.tls.rawValue
            if let password = postgres.password { environment["PGPASSWORD"] = password }
        }
        process.environment = environment
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw BackupError("cannot run \(executable): \(error)")
        }
        let output = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let message = String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw BackupError("\(tool) failed (exit status \(process.terminationStatus)): \(message)")
        }
    }

    static func which(_ tool: String) throws(BackupError) -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":")
        where FileManager.default.isExecutableFile(atPath: "\(directory)/\(tool)") {
            return "\(directory)/\(tool)"
        }
        // Debian keeps each major version's tools here, with only a wrapper on PATH when postgresql-common is in.
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        for version in versions.sorted(by: { (Int($0) ?? 0) > (Int($1) ?? 0) }) {
            let candidate = "/usr/lib/postgresql/\(version)/bin/\(tool)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw BackupError(
            "\(tool) not found on PATH; install the PostgreSQL client tools or set backup-pg-bin-dir")
    }
}

/// `leaderboard_backup_last_success_timestamp_seconds` from the backup directory, read every minute, for the backup
/// age alert (deploy/prometheus). Runs in every serving process that can read the directory.
public struct BackupAgeMonitor: Service {
    public let directory: BackupDirectory
    public let logger: Logger

    public init(directory: BackupDirectory, logger: Logger) {
        self.directory = directory
        self.logger = logger
    }

    public func run() async throws {
        let gauge = MetricFamilies.backupLastSuccess.gauge()
        await repeatUntilShutdown(every: .seconds(60), logger: logger, failure: "reading the backup directory failed") {
            gauge.set(Double(directory.list().first?.createdAt ?? 0))
        }
    }
}
