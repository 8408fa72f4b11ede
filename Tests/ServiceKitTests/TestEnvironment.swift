import Foundation
import Logging
import ServiceKit
import Testing

/// The real servers `scripts/test` starts. Outside it, server-backed cases are left out; under it
/// (`TEST_REQUIRE_SERVERS=1`) a missing server fails the test instead of skipping it.
enum TestEnvironment {
    static let environment = ProcessInfo.processInfo.environment
    static let requireServers = environment["TEST_REQUIRE_SERVERS"] == "1"
    static let logger = Logger(label: "test")

    static var redisURL: RedisURL? { environment["TEST_REDIS_URL"].flatMap { try? RedisURL.parse($0) } }
    static var postgresURL: PostgresURL? { environment["TEST_POSTGRES_URL"].flatMap { try? PostgresURL.parse($0) } }

    static var hasRedis: Bool { redisURL != nil || requireServers }
    static var hasPostgres: Bool { postgresURL != nil || requireServers }

    static func redisClient(poolSize: Int = 2, timeout: Duration = .seconds(2)) throws -> RedisClient {
        let url = try #require(redisURL, "TEST_REDIS_URL is not set (run scripts/test)")
        return RedisClient(url: url, poolSize: poolSize, timeout: timeout, logger: logger)
    }

    static func postgres() throws -> PostgresURL {
        try #require(postgresURL, "TEST_POSTGRES_URL is not set (run scripts/test)")
    }

    /// A key prefix no other test uses, so suites run in parallel against one Redis.
    static func uniquePrefix(_ name: String) -> String {
        "test:\(name):\(UUID().uuidString.prefix(8)):"
    }
}

/// Which implementation of a shared-state protocol a contract case runs against.
enum SharedBackend: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case inProcess
    case redis

    var testDescription: String { rawValue }

    /// In-process always; Redis when available (or required).
    static var available: [SharedBackend] { TestEnvironment.hasRedis ? [.inProcess, .redis] : [.inProcess] }
}

/// Polls a condition until it holds or the deadline passes (no fixed sleeps).
func eventually(
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
