import Foundation
import GRPCCore
import GRPCInProcessTransport
import ServiceKit
import SwiftProtobuf
import TestSupport
import Testing

/// The process's own metrics (docs/OPERATIONS.md, "Metrics"). Every test process shares one registry and tests run
/// in parallel, so each check is on a series only this test touches, or on a change at least as large as its own.
@Suite("Metrics", .timeLimit(.minutes(1)))
struct MetricsTests {
    static let health = "grpc.health.v1.Health"

    @Test("gRPC calls are counted and timed on both sides by method and final status, streams when they end")
    func rpcMetrics() async throws {
        let registry = HealthRegistry()
        registry.set(.dataset, .serving)
        let transport = InProcessTransport()
        let server = GRPCServer(
            transport: transport.server, services: [HealthRPCService(registry: registry)],
            interceptors: [RPCMetricsServerInterceptor(), CallContextServerInterceptor()])
        func handled(_ side: String, _ method: String, _ code: String) -> Double {
            PrometheusText.local().value(
                "grpc_\(side)_handled_total", ["grpc_service": Self.health, "grpc_method": method, "grpc_code": code])
        }
        let before = (
            ok: handled("server", "Check", "OK"), notFound: handled("server", "Check", "NOT_FOUND"),
            clientNotFound: handled("client", "Check", "NOT_FOUND"),
            watchDeadline: handled("server", "Watch", "DEADLINE_EXCEEDED"),
            clientWatchDeadline: handled("client", "Watch", "DEADLINE_EXCEEDED"),
            timed: PrometheusText.local().value(
                "grpc_server_handling_seconds_count", ["grpc_service": Self.health, "grpc_method": "Check"])
        )
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await server.serve() }
            try await withGRPCClient(
                transport: transport.client,
                interceptors: [RPCMetricsClientInterceptor(), CallContextClientInterceptor()]
            ) { client in
                let health = Grpc_Health_V1_Health.Client(wrapping: client)
                _ = try await health.check(.with { $0.service = "" })
                _ = try await health.check(.with { $0.service = "" })
                await #expect(throws: RPCError.self) { try await health.check(.with { $0.service = "nope" }) }
                // A watch streams until its deadline ends it: counted once it ends, not when it starts.
                await #expect(throws: RPCError.self) {
                    try await RequestDeadline.$current.withValue(.now + .milliseconds(200)) {
                        try await health.watch(.with { $0.service = "leaderboard.dataset.v1.DatasetService" }) {
                            for try await _ in $0.messages {}
                        }
                    }
                }
            }
            server.beginGracefulShutdown()
        }
        #expect(handled("server", "Check", "OK") - before.ok >= 2)
        #expect(handled("server", "Check", "NOT_FOUND") - before.notFound >= 1)
        #expect(handled("client", "Check", "NOT_FOUND") - before.clientNotFound >= 1)
        #expect(handled("server", "Watch", "DEADLINE_EXCEEDED") - before.watchDeadline >= 1)
        #expect(handled("client", "Watch", "DEADLINE_EXCEEDED") - before.clientWatchDeadline >= 1)
        let timed = PrometheusText.local().value(
            "grpc_server_handling_seconds_count", ["grpc_service": Self.health, "grpc_method": "Check"])
        #expect(timed - before.timed >= 3)
        #expect(PrometheusText.local().value("grpc_server_in_flight", ["grpc_service": Self.health]) >= 0)
    }

    @Test("transactions are counted by outcome and timed, statements timed, connections in use back to zero")
    func databaseMetrics() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("metrics-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let name = "m\(UUID().uuidString.prefix(8).lowercased())"
        let store = try await SQLiteStore.open(path: directory.path + "/\(name).sqlite", logger: TestEnvironment.logger)
        let database = ServiceDatabase.sqlite(store)
        struct Refused: Error {}
        try await database.transaction(logger: TestEnvironment.logger) {
            try await $0.execute("CREATE TABLE t (n BIGINT)")
            try await $0.execute("INSERT INTO t (n) VALUES (1)")
        }
        await #expect(throws: Refused.self) {
            try await database.transaction(logger: TestEnvironment.logger) { sql in
                try await sql.execute("INSERT INTO t (n) VALUES (2)")
                throw Refused()
            }
        }
        _ = try await database.withExecutor(logger: TestEnvironment.logger) {
            try await $0.query("SELECT n FROM t", [])
        }
        let scrape = PrometheusText.local()
        #expect(scrape.value("leaderboard_db_transactions_total", ["service": name, "outcome": "commit"]) == 1)
        #expect(scrape.value("leaderboard_db_transactions_total", ["service": name, "outcome": "rollback"]) == 1)
        #expect(scrape.value("leaderboard_db_transaction_seconds_count", ["service": name]) == 2)
        #expect(scrape.value("leaderboard_db_query_seconds_count", ["service": name]) == 4)
        #expect(scrape.value("leaderboard_db_connections_in_use", ["service": name]) == 0)
        #expect(scrape.value("leaderboard_db_connections_max", ["service": name]) == 1)
        await store.close()
    }

    @Test("Redis commands are counted by command and outcome", .enabled(if: TestEnvironment.hasRedis))
    func redisMetrics() async throws {
        let redis = try TestEnvironment.redisClient()
        func count(_ command: String, _ outcome: String) -> Double {
            PrometheusText.local().value(
                "leaderboard_redis_commands_total", ["command": command, "outcome": outcome])
        }
        let before = (ping: count("PING", "ok"), error: count("HGET", "error"))
        try await redis.ping()
        let key = TestEnvironment.uniquePrefix("metrics") + "string"
        // Long enough to outlive a busy machine's pauses (5 s expired before the HGET once under the full suite).
        try await redis.send(["SET", RedisArgument(key), "x", "PX", "300000"])
        // HGET on a string key: Redis answers WRONGTYPE, a server error.
        await #expect(throws: RedisClientError.self) { try await redis.send(["HGET", RedisArgument(key), "f"]) }
        #expect(count("PING", "ok") - before.ping >= 1)
        #expect(count("HGET", "error") - before.error >= 1)
        #expect(PrometheusText.local().value("leaderboard_redis_connections") >= 1)
        await redis.close()
    }

    @Test("process figures are read at each scrape: CPU, memory, threads, descriptors, start time")
    func processMetrics() throws {
        let scrape = PrometheusText.local()
        #expect(scrape.value("process_resident_memory_bytes") > 1_000_000)
        #expect(scrape.value("process_virtual_memory_bytes") >= scrape.value("process_resident_memory_bytes"))
        #expect(scrape.value("process_open_fds") >= 3)
        #expect(scrape.value("process_max_fds") >= scrape.value("process_open_fds"))
        #expect(scrape.value("process_threads") >= 1)
        let now = Date().timeIntervalSince1970
        let start = scrape.value("process_start_time_seconds")
        #expect(start > now - 86_400 && start <= now + 1)
        // CPU time only grows; burn some and read it again.
        let cpu = scrape.value("process_cpu_seconds_total")
        var x = 0.0
        let until = Date().addingTimeInterval(0.2)
        while Date() < until { x += sin(x) }
        #expect(x.isFinite)
        #expect(PrometheusText.local().value("process_cpu_seconds_total") > cpu)
    }
}

@Suite("Backup retention")
struct BackupRetentionTests {
    static func backup(_ name: String, _ createdAt: Int64) -> BackupManifest {
        BackupManifest(
            name: name, createdAt: createdAt, version: "t", storage: "sqlite", services: [], files: [])
    }

    @Test("prune keeps the newest backup of each of the last N days, and always the newest of all")
    func kept() {
        let day: Int64 = 86_400
        let now = 100 * day + 3600
        // Newest first, as BackupDirectory.list gives them: two today, one yesterday, three a week ago, one long ago.
        let backups = [
            Self.backup("today-late", now - 60), Self.backup("today-early", now - 3000),
            Self.backup("yesterday", now - day), Self.backup("week-c", now - 7 * day + 30),
            Self.backup("week-b", now - 7 * day + 20), Self.backup("week-a", now - 7 * day + 10),
            Self.backup("ancient", now - 90 * day),
        ]
        #expect(BackupDirectory.kept(backups, keepDays: 30, now: now) == ["today-late", "yesterday", "week-c"])
        #expect(BackupDirectory.kept(backups, keepDays: 3, now: now) == ["today-late", "yesterday"])
        // However old, the newest backup stays: a stopped cron must not leave an operator with none.
        #expect(BackupDirectory.kept([Self.backup("ancient", now - 90 * day)], keepDays: 30, now: now) == ["ancient"])
    }
}
