import Foundation
import ServiceKit
import TestSupport
import Testing

@Suite("Configuration")
struct ConfigurationTests {
    @Test("with nothing set, everything runs embedded on loopback")
    func defaults() throws {
        let configuration = try LeaderboardConfiguration(arguments: [], environment: [:])
        #expect(configuration.targets.startOrder == Target.allCases)
        #expect(configuration.isEmbeddedStorage)
        #expect(configuration.redis == nil)
        #expect(configuration.httpAddress == HostPort(host: "127.0.0.1", port: 8080))
        #expect(configuration.dataDirectory == "./data")
    }

    @Test("a flag wins over the environment, which wins over the default")
    func precedence() throws {
        let configuration = try LeaderboardConfiguration(
            arguments: ["--http-address=0.0.0.0:1"],
            environment: ["LEADERBOARD_HTTP_ADDRESS": "127.0.0.1:2", "LEADERBOARD_GRPC_ADDRESS": "127.0.0.1:3"])
        #expect(configuration.httpAddress.port == 1)
        #expect(configuration.grpcAddress.port == 3)
    }

    @Test("every problem is reported at once, each naming the setting as it was given")
    func allProblems() throws {
        let error = try #require(throws: ConfigurationError.self) {
            try LeaderboardConfiguration(
                arguments: ["--target", "rankings", "--bogus", "x", "--log-level"],
                environment: [
                    "LEADERBOARD_DATABASE_URL": "mysql://db", "LEADERBOARD_REDIS_URL": "redis://h/99",
                    "LEADERBOARD_TYPO": "1",
                ])
        }
        #expect(
            error.problems.map(\.description).sorted() == [
                "CONFIG ERROR: --bogus: unknown flag",
                "CONFIG ERROR: --log-level: missing value",
                "CONFIG ERROR: --target: unknown target 'rankings'; valid: all, auth, dataset, ranking, interaction, gateway",
                "CONFIG ERROR: LEADERBOARD_DATABASE_URL: not a postgres:// URL",
                "CONFIG ERROR: LEADERBOARD_REDIS_URL: redis database must be a number 0...15",
                "CONFIG ERROR: LEADERBOARD_TYPO: unknown setting",
            ])
    }

    @Test("the variables Kubernetes injects for Services named leaderboard-* are ignored; a typo still is not")
    func kubernetesServiceLinks() throws {
        var environment: [String: String] = [:]
        // What the kubelet sets for each Service of the namespace (docs: "Environment variables" of Services).
        for service in ["LEADERBOARD", "LEADERBOARD_AUTH", "LEADERBOARD_GATEWAY", "LEADERBOARD_RANKING"] {
            environment["\(service)_SERVICE_HOST"] = "10.96.0.12"
            environment["\(service)_SERVICE_PORT"] = "9090"
            environment["\(service)_SERVICE_PORT_GRPC"] = "9090"
            environment["\(service)_PORT"] = "tcp://10.96.0.12:9090"
            environment["\(service)_PORT_9090_TCP"] = "tcp://10.96.0.12:9090"
            environment["\(service)_PORT_9090_TCP_PROTO"] = "tcp"
            environment["\(service)_PORT_9090_TCP_PORT"] = "9090"
            environment["\(service)_PORT_9090_TCP_ADDR"] = "10.96.0.12"
        }
        let configuration = try LeaderboardConfiguration(
            arguments: [],
            environment: environment.merging(["LEADERBOARD_TARGET": "gateway,ranking"]) { $1 }
                .merging([
                    "LEADERBOARD_AUTH_ADDRESS": "auth:9090", "LEADERBOARD_DATASET_ADDRESS": "dataset:9090",
                    "LEADERBOARD_INTERACTION_ADDRESS": "interaction:9090",
                ]) { $1 })
        #expect(configuration.targets.startOrder.contains(.ranking))

        // Typos, and guesses that only look like the kubelet's names: the values give them away.
        for (typo, value) in [
            ("LEADERBOARD_AUTH_ADRESS", "auth:9090"), ("LEADERBOARD_PORT_X", "1"), ("LEADERBOARD_SERVICE_HOSTS", "1"),
            ("LEADERBOARD_HTTP_PORT", "8080"), ("LEADERBOARD_GRPC_SERVICE_HOST", "auth.internal"),
            ("LEADERBOARD_OPS_PORT_9100_TCP_PORT", "ops"),
        ] {
            let error = try #require(throws: ConfigurationError.self) {
                try LeaderboardConfiguration(arguments: [], environment: environment.merging([typo: value]) { $1 })
            }
            #expect(error.problems.map(\.description) == ["CONFIG ERROR: \(typo): unknown setting"])
        }
    }

    @Test("every secret reads from a file named by its -file flag or _FILE variable, never from both")
    func secretsFromFiles() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("secrets-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.path + "/database-url"
        let redis = directory.path + "/redis-url"
        try "postgres://leaderboard:pa55@db:5432/leaderboard?sslmode=disable\n".write(
            toFile: url, atomically: true, encoding: .utf8)
        try "redis://:secret@cache:6379\n".write(toFile: redis, atomically: true, encoding: .utf8)
        let configuration = try LeaderboardConfiguration(
            arguments: ["--redis-url-file", redis],
            environment: [
                "LEADERBOARD_DATABASE_URL_FILE": url, "LEADERBOARD_SERVICE_TOKEN": String(repeating: "t", count: 32),
            ])
        #expect(configuration.postgres?.host == "db")
        #expect(configuration.postgres?.password == "pa55")
        #expect(configuration.redis?.host == "cache")
        #expect(configuration.raw[CoreSettings.databaseURL].origin == "LEADERBOARD_DATABASE_URL_FILE")

        // An empty file variable is an unset one (a compose service clearing what a shared block sets).
        let cleared = try LeaderboardConfiguration(
            arguments: [], environment: ["LEADERBOARD_DATABASE_URL_FILE": "", "LEADERBOARD_REDIS_URL_FILE": ""])
        #expect(cleared.postgres == nil && cleared.redis == nil)

        let secrets = CoreSettings.all.filter(\.isSecret)
        #expect(secrets.filter(\.acceptsFile).map(\.name) == ["database-url", "redis-url", "operator-key"])

        let error = try #require(throws: ConfigurationError.self) {
            try LeaderboardConfiguration(
                arguments: ["--operator-key-file", directory.path + "/missing"],
                environment: [
                    "LEADERBOARD_DATABASE_URL_FILE": url, "LEADERBOARD_DATABASE_URL": "postgres://u@h/d",
                    "LEADERBOARD_SINGLE_REPLICA": "true",
                ])
        }
        #expect(
            error.problems.map(\.description).sorted() == [
                "CONFIG ERROR: --operator-key-file: cannot read file '\(directory.path)/missing'",
                "CONFIG ERROR: LEADERBOARD_DATABASE_URL, LEADERBOARD_DATABASE_URL_FILE: set database-url or its file, not both",
            ])
    }

    @Test(
        "URLs are validated with a reason",
        arguments: [
            ("postgres://localhost/db", "postgres URL has no user name"),
            ("postgres://u@localhost", "postgres URL has no database name"),
            ("postgres://u@localhost/db?sslmode=maybe", "sslmode must be disable, prefer or require"),
            ("http://u@localhost/db", "not a postgres:// URL"),
        ])
    func postgresURLs(text: String, message: String) {
        #expect(throws: SettingParseError.self) { try PostgresURL.parse(text) }
        do {
            _ = try PostgresURL.parse(text)
        } catch {
            #expect(error.message == message)
        }
    }

    @Test("a Postgres URL keeps its parts and never prints the password")
    func postgresURL() throws {
        let url = try PostgresURL.parse("postgres://app:s%40cret@db.internal:6543/leaderboard?sslmode=require")
        #expect(url.username == "app")
        #expect(url.password == "s@cret")
        #expect(url.port == 6543)
        #expect(url.tls == .require)
        #expect(!"\(url)".contains("cret"))
    }

    @Test("a service whose dependency runs elsewhere needs that dependency's address")
    func remoteAddresses() throws {
        let error = try #require(throws: ConfigurationError.self) {
            try LeaderboardConfiguration(arguments: ["--target", "interaction"], environment: [:])
        }
        #expect(error.problems.map(\.origin).sorted() == ["LEADERBOARD_AUTH_ADDRESS", "LEADERBOARD_RANKING_ADDRESS"])
        let configuration = try LeaderboardConfiguration(
            arguments: ["--target", "interaction", "--auth-address", "auth:9090", "--ranking-address", "[::1]:9091"],
            environment: [:])
        #expect(configuration.remoteAddresses[.ranking] == HostPort(host: "::1", port: 9091))
    }

    @Test(
        "IP literals are told apart from host names",
        arguments: [
            ("127.0.0.1", true), ("0.0.0.0", true), ("::1", true), ("auth", false), ("256.1.1.1", false),
            ("10.0.0", false), ("db.internal", false),
        ])
    func ipLiterals(host: String, isIP: Bool) {
        #expect(HostPort(host: host, port: 1).isIPLiteral == isIP)
    }

    @Test("the gRPC listener must be an IP address; remote services may be host names")
    func grpcListener() throws {
        let error = try #require(throws: ConfigurationError.self) {
            try LeaderboardConfiguration(arguments: ["--grpc-address", "localhost:9090"], environment: [:])
        }
        #expect(error.problems.map(\.origin) == ["--grpc-address"])
    }

    @Test("TLS settings must come as a pair and point at readable files")
    func tls() throws {
        let error = try #require(throws: ConfigurationError.self) {
            try LeaderboardConfiguration(arguments: ["--grpc-tls-cert", "/nonexistent.pem"], environment: [:])
        }
        #expect(error.problems.count == 2)
    }
}

@Suite("Targets")
struct TargetTests {
    @Test(
        "target lists parse to dependency order",
        arguments: [
            ("all", ["auth", "dataset", "ranking", "interaction", "gateway"]),
            ("gateway,auth", ["auth", "gateway"]),
            (" Ranking , ranking ", ["ranking"]),
        ])
    func parse(text: String, expected: [String]) throws {
        #expect(try Target.parseList(text).startOrder.map(\.rawValue) == expected)
    }

    @Test("remote dependencies are what local modules call but do not run")
    func remote() {
        #expect(TargetSet([.ranking]).remoteDependencies == [.auth, .dataset])
        #expect(TargetSet(Target.allCases).remoteDependencies.isEmpty)
        #expect(TargetSet([.gateway]).remoteDependencies == [.auth, .dataset, .ranking, .interaction])
    }

    @Test("every target starts after everything it calls")
    func order() {
        for target in Target.allCases {
            for dependency in target.dependencies { #expect(dependency < target) }
        }
    }
}

@Suite("Documentation")
struct DocumentationTests {
    @Test("the README's configuration table lists every setting with its flag and default")
    func readmeListsEverySetting() throws {
        try TestEnvironment.expectREADMEListsSettings(CoreSettings.all)
    }
}
