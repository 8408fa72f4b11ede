import Foundation
import ServiceKit
import TestSupport
import Testing

/// Loopback listeners on ports the OS picks; the process announces them.
let ephemeral = ["--http-address", "127.0.0.1:0", "--grpc-address", "127.0.0.1:0", "--ops-address", "127.0.0.1:0"]

@Suite("Boot: the real binary in every topology", .serialized, .timeLimit(.minutes(5)))
struct BootTests {
    @Test("with no configuration, serve starts everything embedded and is ready; SIGTERM exits cleanly")
    func embeddedAll() async throws {
        let directory = EndToEnd.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = try LeaderboardProcess(["serve", "--data-dir", directory] + ephemeral)
        let base = try await server.httpBase()
        let body = try await EndToEnd.waitFor(base + "/health/ready", status: 200)
        #expect(
            body["checks"] as? [String: String] == [
                "auth": "SERVING", "dataset": "SERVING", "ranking": "SERVING", "interaction": "SERVING",
            ])
        for file in ["auth", "dataset", "ranking", "interaction"] {
            #expect(FileManager.default.fileExists(atPath: "\(directory)/\(file).sqlite"))
        }
        #expect(try await server.stop() == 0)
    }

    @Test(
        "each service target runs alone against the production stores and serves grpc health over HTTP/2",
        arguments: [Target.auth, .dataset, .ranking, .interaction])
    func serviceAlone(target: Target) async throws {
        let directory = EndToEnd.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // Dependencies are remote; nothing listens there, and a service does not need them to be healthy.
        let remotes = target.dependencies.flatMap { ["--\($0.rawValue)-address", "127.0.0.1:1"] }
        let server = try LeaderboardProcess(
            ["serve", "--target", target.rawValue, "--data-dir", directory]
                + ephemeral + remotes + (try await EndToEnd.productionSettings()))
        let port = try await server.grpcPort()
        let name = try #require(target.grpcServiceName)
        #expect(try await EndToEnd.grpcHealth(port: port, service: name) == .serving)
        #expect(try await EndToEnd.grpcHealth(port: port, service: "") == .serving)
        let ops = try await server.httpBase("ops")
        _ = try await EndToEnd.waitFor(ops + "/health/live", status: 200)
        _ = try await EndToEnd.waitFor(ops + "/metrics", status: 200)
        #expect(try await server.stop() == 0)
    }

    @Test("the gateway alone is live but not ready while its services are unreachable")
    func gatewayAlone() async throws {
        let remotes = Target.gateway.dependencies.flatMap { ["--\($0.rawValue)-address", "127.0.0.1:1"] }
        let server = try LeaderboardProcess(["serve", "--target", "gateway"] + ephemeral + remotes)
        let base = try await server.httpBase()
        _ = try await EndToEnd.waitFor(base + "/health/live", status: 200)
        let body = try await EndToEnd.waitFor(base + "/health/ready", status: 503)
        #expect(body["status"] as? String == "not_ready")
        #expect((body["checks"] as? [String: String])?["ranking"] == "unreachable")
        #expect(try await server.stop() == 0)
    }

    @Test("five processes, one per target, form a ready system over HTTP/2")
    func microservices() async throws {
        let directory = EndToEnd.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let storage = try await EndToEnd.productionSettings()
        let processes = try await EndToEnd.startEachTarget(in: directory, settings: storage).processes.map(\.process)
        let base = try await processes.last!.httpBase()
        let body = try await EndToEnd.waitFor(base + "/health/ready", status: 200)
        #expect((body["checks"] as? [String: String])?.values.allSatisfy { $0 == "SERVING" || $0 == "ok" } == true)
        // Stop in reverse dependency order, as an orchestrator would drain them.
        for process in processes.reversed() { #expect(try await process.stop() == 0) }
    }
}

@Suite("Boot: bad configuration", .timeLimit(.minutes(2)))
struct BadConfigurationTests {
    @Test("--version prints the VERSION file's version and the commit the binary was built from")
    func version() async throws {
        let process = try LeaderboardProcess(["--version"])
        #expect(try await process.exitStatus() == 0)
        let version = try TestEnvironment.repositoryFile("VERSION").trimmingCharacters(in: .whitespacesAndNewlines)
        let printed = process.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(printed.hasPrefix("\(version) (commit "), "\(printed)")
        let commit = printed.dropFirst("\(version) (commit ".count).dropLast()
        // A hexadecimal commit (with -dirty for uncommitted changes), or "dev" where there is no git.
        #expect(commit == "dev" || commit.prefix(12).allSatisfy(\.isHexDigit), "\(printed)")
    }

    @Test(
        "a bad setting exits 1 with one clear line per problem and no stack trace",
        arguments: [
            (["serve", "--target", "rankings"], "CONFIG ERROR: --target: unknown target 'rankings'"),
            (["serve", "--database-url", "mysql://db/x"], "CONFIG ERROR: --database-url: not a postgres:// URL"),
            (["serve", "--redis-url", "http://x"], "CONFIG ERROR: --redis-url: not a redis:// URL"),
            (["serve", "--target", "ranking"], "CONFIG ERROR: LEADERBOARD_AUTH_ADDRESS: required"),
            (
                ["serve", "--database-url", "postgres://u@127.0.0.1:1/db"],
                "CONFIG ERROR: LEADERBOARD_MASTER_KEY: required with a database URL"
            ),
            (["serve", "--smtp-url", "http://mail"], "CONFIG ERROR: --smtp-url: not an smtp:// or smtps:// URL"),
            (
                ["serve", "--database-url", "postgres://u@127.0.0.1:1/db"],
                "CONFIG ERROR: LEADERBOARD_REDIS_URL: required with a database URL, so replicas share nonces"
            ),
            (
                ["serve", "--grpc-address", "0.0.0.0:9090"],
                "CONFIG ERROR: --grpc-address: 0.0.0.0:9090 is reachable from other machines"
            ),
        ])
    func configurationErrors(arguments: [String], expected: String) async throws {
        let process = try LeaderboardProcess(arguments)
        #expect(try await process.exitStatus() == 1)
        #expect(process.standardError.contains(expected))
        #expect(!process.standardError.contains("Fatal error"))
    }

    @Test("an unreachable database or Redis at start is one STARTUP ERROR line naming the setting")
    func unreachable() async throws {
        let database = try LeaderboardProcess(
            ["serve"] + ephemeral,
            environment: [
                "LEADERBOARD_DATABASE_URL": "postgres://nobody@127.0.0.1:1/none?sslmode=disable",
                "LEADERBOARD_SINGLE_REPLICA": "true",
                "LEADERBOARD_MASTER_KEY": Data(repeating: 1, count: 32).base64EncodedString(),
            ])
        #expect(try await database.exitStatus() == 1)
        #expect(database.standardError.contains("STARTUP ERROR: LEADERBOARD_DATABASE_URL: cannot connect"))
        let directory = EndToEnd.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let redis = try LeaderboardProcess(
            ["serve", "--data-dir", directory] + ephemeral,
            environment: ["LEADERBOARD_REDIS_URL": "redis://127.0.0.1:1"])
        #expect(try await redis.exitStatus() == 1)
        #expect(redis.standardError.contains("STARTUP ERROR: LEADERBOARD_REDIS_URL: cannot reach"))
    }

    @Test("migrate applies nothing twice and reports each target")
    func migrate() async throws {
        let directory = EndToEnd.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let storage = try await EndToEnd.productionSettings().prefix(2)
        let first = try LeaderboardProcess(["migrate", "--data-dir", directory] + storage)
        #expect(try await first.exitStatus() == 0)
        for target in ["auth", "dataset", "ranking", "interaction"] {
            #expect(first.standardOutput.contains("\(target): applied 1"))
        }
        let second = try LeaderboardProcess(["migrate", "--data-dir", directory] + storage)
        #expect(try await second.exitStatus() == 0)
        for target in ["auth", "dataset", "ranking", "interaction"] {
            #expect(second.standardOutput.contains("\(target): up to date"))
        }
    }

    @Test(
        "JSON logs: every line one whole object, every cache hit's access line there, the lines event loops batch included"
    )
    func jsonLogs() async throws {
        let directory = EndToEnd.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = try LeaderboardProcess(["serve", "--data-dir", directory, "--log-format", "json"] + ephemeral)
        let base = try await server.httpBase()
        _ = try await EndToEnd.waitFor(base + "/health/ready", status: 200)
        // Four keep-alive connections, 150 reads each of a board cached by the first: answered on the event loops,
        // whose access lines go out in batches (ServiceKit's LineBatch).
        let printed = try await ExternalTools.run(
            ExternalTools.python,
            [
                "-c",
                """
                import http.client, sys, threading
                host, port = sys.argv[1].split("//")[1].split(":")
                statuses = []
                def reads(worker):
                    connection = http.client.HTTPConnection(host, int(port))
                    for i in range(150):
                        connection.request("GET", "/api/v1/datasets?limit=3", headers={"X-Request-ID": "w%d-%d" % (worker, i)})
                        response = connection.getresponse()
                        response.read()
                        statuses.append(response.status)
                threads = [threading.Thread(target=reads, args=(worker,)) for worker in range(4)]
                for thread in threads: thread.start()
                for thread in threads: thread.join()
                print(len([status for status in statuses if status == 200]))
                """, base,
            ])
        #expect(printed == "600")
        #expect(try await server.stop() == 0)
        var ids: Set<String> = []
        var early = 0
        for line in server.standardError.split(separator: "\n") {
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object != nil, "not one JSON object: \(line.prefix(300))")
            guard let object, object["msg"] as? String == "access", let id = object["request_id"] as? String,
                id.hasPrefix("w")
            else { continue }
            ids.insert(id)
            if object["early"] as? String == "true" { early += 1 }
        }
        #expect(ids.count == 600)
        #expect(early >= 590)  // all but each connection's first read, at most, which may fill the cache
    }
}
