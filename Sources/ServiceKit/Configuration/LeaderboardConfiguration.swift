import Foundation
public import Logging

/// Every setting of the `leaderboard` process. The README's configuration table mirrors this list.
public enum CoreSettings {
    public static let target = Setting(
        "target", default: "all",
        help: "Modules to run: all, or a comma-separated list of auth, dataset, ranking, interaction, gateway.")
    public static let dataDirectory = Setting(
        "data-dir", default: "./data",
        help: "Directory for embedded data (SQLite files, generated keys) when no database URL is set.")
    public static let databaseURL = Setting(
        "database-url", secret: true,
        help: "PostgreSQL URL (postgres://user:pass@host:port/db?sslmode=disable). Empty: SQLite under data-dir.")
    public static let databasePoolSize = Setting(
        "database-pool-size", default: "8", help: "Maximum PostgreSQL connections per service.")
    public static let redisURL = Setting(
        "redis-url", secret: true,
        help: "Redis URL (redis://[:password@]host:port[/db]). Empty: in-process cache, limits, ranks and events.")
    public static let singleReplica = Setting(
        "single-replica", default: "false",
        help: "true when each service runs as one process only: allows a database URL without a Redis URL, whose "
            + "nonces, proof-of-work claims and rate limits then live in each process (replicas would not share them).")
    public static let redisPoolSize = Setting(
        "redis-pool-size", default: "4", help: "Pipelined Redis connections per process (plus one for pub/sub).")
    public static let redisTimeoutMilliseconds = Setting(
        "redis-timeout-ms", default: "2000", help: "Connect and command timeout for Redis, in milliseconds.")
    public static let redisKeyPrefix = Setting(
        "redis-key-prefix", default: "leaderboard:",
        help: "Start of every Redis key and pub/sub channel, so several systems can share one Redis.")
    public static let httpAddress = Setting(
        "http-address", default: "127.0.0.1:8080", help: "Where the gateway serves REST and WebSocket.")
    public static let grpcAddress = Setting(
        "grpc-address", default: "127.0.0.1:9090",
        help: "Where this process serves its services and grpc.health.v1 over HTTP/2.")
    public static let operationsAddress = Setting(
        "ops-address", default: "127.0.0.1:9100",
        help: "Where a process without the gateway serves /metrics and /health/*; the gateway serves them itself.")
    public static let authAddress = Setting(
        "auth-address", help: "host:port of a remote AuthService (needed when auth is not local but used).")
    public static let datasetAddress = Setting(
        "dataset-address", help: "host:port of a remote DatasetService.")
    public static let rankingAddress = Setting(
        "ranking-address", help: "host:port of a remote RankingService.")
    public static let interactionAddress = Setting(
        "interaction-address", help: "host:port of a remote InteractionService.")
    public static let grpcTLSCertificate = Setting(
        "grpc-tls-cert", help: "PEM certificate chain for gRPC; enables TLS on the gRPC server and clients.")
    public static let grpcTLSKey = Setting(
        "grpc-tls-key", secret: true, fromFile: false, help: "PEM private key for grpc-tls-cert.")
    public static let grpcTLSCA = Setting(
        "grpc-tls-ca",
        help: "PEM CA bundle: clients verify servers against it, and the server requires client certificates (mTLS).")
    public static let serviceToken = Setting(
        "service-token", secret: true, fromFile: false,
        help: "Shared secret (32 to 512 printable characters) every process of one deployment sends on internal gRPC "
            + "calls and its gRPC server requires. Empty: none (a non-loopback gRPC address then needs mTLS).")
    public static let serviceTokenFile = Setting(
        "service-token-file", help: "File holding the service token (e.g. a mounted secret); instead of service-token.")
    public static let grpcInsecure = Setting(
        "grpc-insecure", default: "false",
        help: "true to serve gRPC on a non-loopback address with neither TLS nor a service token: anyone who reaches "
            + "the port can call every service. Only inside a network nobody else reaches.")
    public static let operatorKey = Setting(
        "operator-key", secret: true,
        help: "Operator API key (lbk_…) that leaderboard admin commands send on operator calls.")
    public static let logLevel = Setting(
        "log-level", default: "info", help: "trace, debug, info, notice, warning, error or critical.")
    public static let logFormat = Setting("log-format", default: "text", help: "text or json.")
    public static let shutdownGraceSeconds = Setting(
        "shutdown-grace-seconds", default: "30", help: "How long SIGTERM waits for in-flight calls before exiting.")

    public static let publicURL = Setting(
        "public-url",
        help: "The gateway's public base URL, used in links sent to users. Empty: http://<http-address>.")

    public static let all: [Setting] =
        [
            target, dataDirectory, databaseURL, databasePoolSize, redisURL, singleReplica, redisPoolSize,
            redisTimeoutMilliseconds,
            redisKeyPrefix, httpAddress, grpcAddress, operationsAddress, authAddress, datasetAddress, rankingAddress,
            interactionAddress,
            grpcTLSCertificate, grpcTLSKey, grpcTLSCA, serviceToken, serviceTokenFile, grpcInsecure, operatorKey,
            logLevel,
            logFormat, shutdownGraceSeconds, publicURL,
        ] + BackupSettings.all + TracingSettings.all

    /// The setting holding the address of a remote target.
    public static func address(of target: Target) -> Setting? {
        switch target {
        case .auth: authAddress
        case .dataset: datasetAddress
        case .ranking: rankingAddress
        case .interaction: interactionAddress
        case .gateway: nil
        }
    }
}

public enum LogFormat: String, Sendable, CaseIterable { case text, json }

/// TLS material for gRPC between services.
public struct GRPCTLSConfiguration: Sendable, Hashable {
    public var certificatePath: String
    public var keyPath: String
    /// When set, peers are verified against it and the server demands client certificates.
    public var caPath: String?
}

/// The validated configuration of one `leaderboard` process.
public struct LeaderboardConfiguration: Sendable {
    public var targets: TargetSet
    public var dataDirectory: String
    public var postgres: PostgresURL?
    public var databasePoolSize: Int
    public var redis: RedisURL?
    public var redisPoolSize: Int
    public var redisTimeout: Duration
    public var redisKeyPrefix: String
    public var httpAddress: HostPort
    public var grpcAddress: HostPort
    public var operationsAddress: HostPort
    public var remoteAddresses: [Target: HostPort]
    public var grpcTLS: GRPCTLSConfiguration?
    /// The deployment's service token: sent on calls to other processes, required by this process's gRPC server.
    public var serviceToken: ServiceToken?
    /// The operator key admin commands send.
    public var operatorKey: String?
    public var logLevel: Logger.Level
    public var logFormat: LogFormat
    public var shutdownGracePeriod: Duration
    /// Base URL of the public gateway, without a trailing slash.
    public var publicURL: String
    /// Every raw value, for modules that read their own settings (``ModuleDefinition/settings``).
    public var raw: RawConfiguration
    /// Where `leaderboard backup` keeps backups (``BackupSettings``), and how many days `prune` keeps.
    public var backupDirectory: String
    public var backupKeepDays: Int
    public var postgresTools: String
    /// OTLP/gRPC collector for traces (``TracingSettings``); nil: tracing off.
    public var otlpEndpoint: String?
    public var traceSampleRatio: Double
    public var traceServiceName: String

    /// Reads flags and environment; throws every problem at once, the modules' included. `serving` is false for
    /// commands that only connect to services (admin), which serve nothing themselves.
    public init(
        arguments: [String],
        environment: [String: String],
        modules: [ModuleDefinition] = [],
        serving: Bool = true
    ) throws(ConfigurationError) {
        var settings = CoreSettings.all
        for setting in modules.flatMap(\.settings) where !settings.contains(setting) { settings.append(setting) }
        let (raw, problems) = RawConfiguration.parse(arguments: arguments, environment: environment, settings: settings)
        try self.init(raw: raw, problems: problems, modules: modules, serving: serving)
    }

    public init(
        raw: RawConfiguration,
        problems: [ConfigurationProblem] = [],
        modules: [ModuleDefinition] = [],
        serving: Bool = true
    ) throws(ConfigurationError) {
        self.raw = raw
        var reader = ConfigurationReader(raw: raw, problems: problems)
        targets = reader.parse(CoreSettings.target, Target.parseList) ?? TargetSet(Target.allCases)
        dataDirectory = reader.string(CoreSettings.dataDirectory)
        if dataDirectory.isEmpty { reader.fail(CoreSettings.dataDirectory, "must not be empty") }
        let backups = reader.string(BackupSettings.directory)
        backupDirectory = backups.isEmpty ? "\(dataDirectory)/backups" : backups
        backupKeepDays = reader.integer(BackupSettings.keepDays, in: 1...3650)
        postgresTools = reader.string(BackupSettings.postgresTools)
        otlpEndpoint =
            reader.parse(TracingSettings.endpoint) { text throws(SettingParseError) -> String? in
                guard !text.isEmpty else { return nil }
                guard let url = URLComponents(string: text), ["http", "https"].contains(url.scheme ?? ""),
                    url.host?.isEmpty == false, url.port != nil
                else { throw SettingParseError("must be http://host:port or https://host:port (OTLP over gRPC)") }
                return text
            } ?? nil
        traceSampleRatio =
            reader.parse(TracingSettings.sampleRatio) { text throws(SettingParseError) in
                guard let ratio = Double(text), (0...1).contains(ratio) else {
                    throw SettingParseError("must be a number from 0 to 1")
                }
                return ratio
            } ?? 1
        let serviceName = reader.string(TracingSettings.serviceName)
        let running = targets.startOrder.map(\.rawValue)
        traceServiceName =
            !serviceName.isEmpty
            ? serviceName
            : running.count == Target.allCases.count ? "leaderboard" : "leaderboard-" + running.joined(separator: "+")

        postgres = raw[CoreSettings.databaseURL].isSet ? reader.parse(CoreSettings.databaseURL, PostgresURL.parse) : nil
        databasePoolSize = reader.integer(CoreSettings.databasePoolSize, in: 1...1000)
        redis = raw[CoreSettings.redisURL].isSet ? reader.parse(CoreSettings.redisURL, RedisURL.parse) : nil
        // Without Redis, nonces, proof-of-work claims and rate limits are per process: replicas sharing a database
        // would each accept the same nonce once.
        let singleReplica = reader.boolean(CoreSettings.singleReplica)
        if serving, postgres != nil, redis == nil, !singleReplica {
            reader.fail(
                CoreSettings.redisURL,
                "required with a database URL, so replicas share nonces, proof-of-work claims and rate limits; set "
                    + "single-replica=true if each service runs as one process only")
        }
        redisPoolSize = reader.integer(CoreSettings.redisPoolSize, in: 1...256)
        redisTimeout = .milliseconds(reader.integer(CoreSettings.redisTimeoutMilliseconds, in: 10...600_000))
        redisKeyPrefix = reader.string(CoreSettings.redisKeyPrefix)
        if !(1...64).contains(redisKeyPrefix.utf8.count)
            || !redisKeyPrefix.utf8.allSatisfy({ (0x21...0x7e).contains($0) })
        {
            reader.fail(CoreSettings.redisKeyPrefix, "must be 1 to 64 printable ASCII characters without spaces")
        }

        let fallback = HostPort(host: "127.0.0.1", port: 0)
        httpAddress = reader.parse(CoreSettings.httpAddress, HostPort.parseListener) ?? fallback
        grpcAddress = reader.parse(CoreSettings.grpcAddress, HostPort.parseListener) ?? fallback
        operationsAddress = reader.parse(CoreSettings.operationsAddress, HostPort.parseListener) ?? fallback

        if !grpcAddress.isIPLiteral {
            reader.fail(CoreSettings.grpcAddress, "the gRPC listener needs an IP address (e.g. 0.0.0.0:9090)")
        }
        var remote: [Target: HostPort] = [:]
        for target in Target.allCases {
            guard let setting = CoreSettings.address(of: target) else { continue }
            let needed = targets.remoteDependencies.contains(target)
            if raw[setting].isSet {
                if let address = reader.parse(setting, HostPort.parseRemote) {
                    remote[target] = address
                }
            } else if needed {
                let users = targets.startOrder.filter { $0.dependencies.contains(target) }.map(\.rawValue)
                reader.fail(setting, "required: \(users.joined(separator: ", ")) calls \(target) which is not local")
            }
        }
        remoteAddresses = remote

        let pair = reader.filePair(CoreSettings.grpcTLSCertificate, CoreSettings.grpcTLSKey)
        let ca = reader.string(CoreSettings.grpcTLSCA)
        if !ca.isEmpty, reader.string(CoreSettings.grpcTLSCertificate).isEmpty {
            reader.fail(CoreSettings.grpcTLSCA, "needs grpc-tls-cert and grpc-tls-key")
        } else if !ca.isEmpty, !FileSystem.isReadableFile(ca) {
            reader.fail(CoreSettings.grpcTLSCA, "cannot read file '\(ca)'")
        }
        grpcTLS = pair.map {
            GRPCTLSConfiguration(certificatePath: $0.0, keyPath: $0.1, caPath: ca.isEmpty ? nil : ca)
        }

        serviceToken = Self.readServiceToken(&reader)
        let insecure = reader.boolean(CoreSettings.grpcInsecure)
        let servesGRPC = targets.startOrder.contains { $0.grpcServiceName != nil }
        if serving, servesGRPC, !grpcAddress.isLoopback, grpcTLS == nil, serviceToken == nil, !insecure {
            reader.fail(
                CoreSettings.grpcAddress,
                "\(grpcAddress) is reachable from other machines, so internal calls need an identity: set service-token "
                    + "(or service-token-file) and/or grpc-tls-cert, grpc-tls-key and grpc-tls-ca (mTLS); grpc-insecure=true "
                    + "accepts the risk")
        }
        let operatorText = reader.string(CoreSettings.operatorKey)
        operatorKey = operatorText.isEmpty ? nil : operatorText

        logLevel =
            reader.parse(CoreSettings.logLevel) { text throws(SettingParseError) in
                guard let level = Logger.Level(rawValue: text.lowercased()) else {
                    throw SettingParseError("must be one of trace, debug, info, notice, warning, error, critical")
                }
                return level
            } ?? .info
        logFormat = reader.choice(CoreSettings.logFormat, as: LogFormat.self) ?? .text
        shutdownGracePeriod = .seconds(reader.integer(CoreSettings.shutdownGraceSeconds, in: 0...3600))
        let publicText = reader.string(CoreSettings.publicURL)
        publicURL =
            publicText.isEmpty ? "http://\(httpAddress)" : String(publicText.reversed().drop { $0 == "/" }.reversed())
        if !publicText.isEmpty, !(publicText.hasPrefix("http://") || publicText.hasPrefix("https://")) {
            reader.fail(CoreSettings.publicURL, "must start with http:// or https://")
        }
        for module in modules where targets.contains(module.target) {
            module.validate(&reader, self)
        }
        try reader.check()
    }

    static func readServiceToken(_ reader: inout ConfigurationReader) -> ServiceToken? {
        let text = reader.string(CoreSettings.serviceToken)
        let file = reader.string(CoreSettings.serviceTokenFile)
        guard !text.isEmpty || !file.isEmpty else { return nil }
        if !text.isEmpty, !file.isEmpty {
            reader.fail(CoreSettings.serviceTokenFile, "set service-token or service-token-file, not both")
            return nil
        }
        var value = text
        if !file.isEmpty {
            guard let contents = FileSystem.readText(file) else {
                reader.fail(CoreSettings.serviceTokenFile, "cannot read file '\(file)'")
                return nil
            }
            value = contents.trimmingASCIIWhitespace()
        }
        guard let token = ServiceToken(value) else {
            reader.fail(
                file.isEmpty ? CoreSettings.serviceToken : CoreSettings.serviceTokenFile,
                "must be 32 to 512 printable characters without spaces (e.g. openssl rand -hex 32)")
            return nil
        }
        return token
    }

    /// True when no external database is configured: each service keeps a SQLite file under ``dataDirectory``.
    public var isEmbeddedStorage: Bool { postgres == nil }
}
