public import Foundation
public import Logging
import PostgresNIO
import SQLiteNIO
public import ServiceKit
import Synchronization
public import Testing

/// The real servers `scripts/test` starts. Outside it, server-backed cases are left out; under it
/// (`TEST_REQUIRE_SERVERS=1`) a missing server fails the test instead of skipping it.
public enum TestEnvironment {
    public static let environment = ProcessInfo.processInfo.environment
    public static let requireServers = environment["TEST_REQUIRE_SERVERS"] == "1"
    public static let logger = Logger(label: "test")

    public static var redisURL: RedisURL? { environment["TEST_REDIS_URL"].flatMap { try? RedisURL.parse($0) } }
    public static var postgresURL: PostgresURL? {
        environment["TEST_POSTGRES_URL"].flatMap { try? PostgresURL.parse($0) }
    }

    public static var hasRedis: Bool { redisURL != nil || requireServers }
    public static var hasPostgres: Bool { postgresURL != nil || requireServers }

    public static func redisClient(poolSize: Int = 2, timeout: Duration = .seconds(2)) throws -> RedisClient {
        let url = try #require(redisURL, "TEST_REDIS_URL is not set (run scripts/test)")
        return RedisClient(url: url, poolSize: poolSize, timeout: timeout, logger: logger)
    }

    public static func postgres() throws -> PostgresURL {
        try #require(postgresURL, "TEST_POSTGRES_URL is not set (run scripts/test)")
    }

    /// The repository's root directory (for README.md, docs/ and scripts the tests check or run).
    public static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// The text of a file in the repository, e.g. `README.md`.
    public static func repositoryFile(_ path: String) throws -> String {
        try String(contentsOf: repositoryRoot.appendingPathComponent(path), encoding: .utf8)
    }

    /// Checks the README's configuration tables list each setting with its flag, variable, default and help.
    public static func expectREADMEListsSettings(
        _ settings: [Setting], sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let readme = try repositoryFile("README.md")
        for setting in settings {
            let defaultText = setting.defaultValue.isEmpty ? "—" : "`\(setting.defaultValue)`"
            let row = "| `\(setting.flag)` | `\(setting.environmentVariable)` | \(defaultText) | \(setting.help) |"
            #expect(readme.contains(row), "README.md lacks: \(row)", sourceLocation: sourceLocation)
            if let variable = setting.fileEnvironmentVariable {
                #expect(
                    readme.contains("`\(variable)`"), "README.md does not name \(variable)",
                    sourceLocation: sourceLocation)
            }
        }
    }

    /// A key prefix no other test uses, so suites run in parallel against one Redis.
    public static func uniquePrefix(_ name: String) -> String {
        "test:\(name):\(UUID().uuidString.prefix(8)):"
    }
}

/// Which implementation of a shared-state protocol a contract case runs against.
public enum SharedBackend: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case inProcess
    case redis

    public var testDescription: String { rawValue }

    /// In-process always; Redis when available (or required).
    public static var available: [SharedBackend] { TestEnvironment.hasRedis ? [.inProcess, .redis] : [.inProcess] }
}

/// Polls a condition until it holds or the deadline passes (no fixed sleeps).
public func eventually(
    within limit: Duration = .seconds(5),
    _ condition: () async throws -> Bool
) async throws -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

/// Which database backend a storage contract case runs against.
public enum StorageBackend: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite
    case postgres

    public var testDescription: String { rawValue }

    public static var available: [StorageBackend] { TestEnvironment.hasPostgres ? [.sqlite, .postgres] : [.sqlite] }
}

/// A fresh database for one test: a temporary SQLite file, or a PostgreSQL schema of its own (dropped after).
public func withTestDatabase(_ backend: StorageBackend, _ body: (ServiceDatabase) async throws -> Void) async throws {
    switch backend {
    case .sqlite:
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lb-\(UUID().uuidString)")
        let store = try await SQLiteStore.open(path: directory.path + "/test.sqlite", logger: TestEnvironment.logger)
        do {
            try await body(.sqlite(store))
        } catch {
            await store.close()
            throw error
        }
        await store.close()
        try? FileManager.default.removeItem(at: directory)
    case .postgres:
        let url = try TestEnvironment.postgres()
        let schema = "t_" + UUID().uuidString.lowercased().filter(\.isLetter).prefix(12)
        let store = PostgresStore(url: url, schema: schema, maximumConnections: 4, logger: TestEnvironment.logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await store.client.run() }
            defer { group.cancelAll() }
            do {
                try await body(.postgres(store))
            } catch {
                _ = try? await store.client.query(PostgresQuery(unsafeSQL: "DROP SCHEMA IF EXISTS \(schema) CASCADE"))
                throw error
            }
            _ = try await store.client.query(PostgresQuery(unsafeSQL: "DROP SCHEMA IF EXISTS \(schema) CASCADE"))
        }
    }
}

/// Counts rows of a table through either backend.
public func countRows(_ table: String, in database: ServiceDatabase) async throws -> Int {
    switch database {
    case .sqlite(let store):
        let rows = try await store.withConnection { try await $0.query("SELECT COUNT(*) AS n FROM \(table)") }
        return rows.first?.column("n")?.integer ?? -1
    case .postgres(let store):
        let rows = try await store.client.query(PostgresQuery(unsafeSQL: "SELECT COUNT(*)::int FROM \(table)"))
        for try await count in rows.decode(Int.self) { return count }
        return -1
    }
}

/// The stable code of the service error (`AuthError`, `DatasetError`, …) `body` throws; nil when it succeeds.
public func serviceErrorCode(_ body: () async throws -> Void) async -> String? {
    do {
        try await body()
        return nil
    } catch let error as any CodedServiceError {
        return error.code
    } catch {
        return "unexpected: \(error)"
    }
}

/// A wall clock for services under test that must judge elapsed time exactly: it starts at the real time and moves
/// on by `step` each time it is read, never with the machine's load. (RankingService's anti-cheat compares the
/// times of metric reports; on a loaded machine real gaps between a test's quick reports once exceeded its limit.)
public final class SteppingWallClock: WallClock {
    private let now: Mutex<Int64>  // read by the services' tasks on any thread
    private let step: Int64

    public init(step: Duration = .milliseconds(1)) {
        now = Mutex(SystemWallClock().microsecondsSinceEpoch())
        self.step = step.microseconds
    }

    public func microsecondsSinceEpoch() -> Int64 {
        now.withLock {
            $0 += step
            return $0
        }
    }
}
