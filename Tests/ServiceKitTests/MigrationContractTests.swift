import Foundation
import PostgresNIO
import SQLiteNIO
import ServiceKit
import TestSupport
import Testing

@Suite("Migration runner contract", .timeLimit(.minutes(2)))
struct MigrationContractTests {
    static let widgets = Migration(
        version: 1, name: "widgets",
        postgres: ["CREATE TABLE widgets (id bigint PRIMARY KEY, name text NOT NULL)"],
        sqlite: ["CREATE TABLE widgets (id INTEGER PRIMARY KEY, name TEXT NOT NULL)"])
    static let seed = Migration(
        version: 2, name: "seed",
        postgres: ["INSERT INTO widgets VALUES (1, 'one')", "INSERT INTO widgets VALUES (2, 'two')"],
        sqlite: ["INSERT INTO widgets VALUES (1, 'one')", "INSERT INTO widgets VALUES (2, 'two')"])

    @Test("pending migrations apply in version order, once", arguments: StorageBackend.available)
    func appliesOnce(backend: StorageBackend) async throws {
        try await withTestDatabase(backend) { (database: ServiceDatabase) async throws in
            let logger = TestEnvironment.logger
            #expect(
                try await MigrationRunner.apply([Self.seed, Self.widgets], to: database, logger: logger) == [1, 2])
            #expect(try await MigrationRunner.apply([Self.widgets, Self.seed], to: database, logger: logger) == [])
            #expect(try await countRows("widgets", in: database) == 2)
        }
    }

    @Test("a failing migration leaves nothing half-written", arguments: StorageBackend.available)
    func failureRollsBack(backend: StorageBackend) async throws {
        try await withTestDatabase(backend) { (database: ServiceDatabase) async throws in
            let broken = Migration(
                version: 3, name: "broken",
                postgres: ["INSERT INTO widgets VALUES (3, 'three')", "INSERT INTO widgets VALUES (1, 'duplicate')"],
                sqlite: ["INSERT INTO widgets VALUES (3, 'three')", "INSERT INTO widgets VALUES (1, 'duplicate')"])
            try await MigrationRunner.apply([Self.widgets, Self.seed], to: database, logger: TestEnvironment.logger)
            await #expect(throws: (any Error).self) {
                try await MigrationRunner.apply(
                    [Self.widgets, Self.seed, broken], to: database, logger: TestEnvironment.logger)
            }
            #expect(try await countRows("widgets", in: database) == 2)
            #expect(try await countRows("schema_migrations", in: database) == 2)
        }
    }

    @Test("a migration edited after it was applied is refused", arguments: StorageBackend.available)
    func checksum(backend: StorageBackend) async throws {
        try await withTestDatabase(backend) { (database: ServiceDatabase) async throws in
            try await MigrationRunner.apply([Self.widgets], to: database, logger: TestEnvironment.logger)
            let edited = Migration(
                version: 1, name: "widgets",
                postgres: ["CREATE TABLE widgets (id bigint PRIMARY KEY)"],
                sqlite: ["CREATE TABLE widgets (id INTEGER PRIMARY KEY)"])
            await #expect(throws: StorageError.self) {
                try await MigrationRunner.apply([edited], to: database, logger: TestEnvironment.logger)
            }
        }
    }

    @Test("replicas migrating at once apply each version exactly once", arguments: StorageBackend.available)
    func concurrentRunners(backend: StorageBackend) async throws {
        try await withTestDatabase(backend) { (database: ServiceDatabase) async throws in
            let applied = try await withThrowingTaskGroup(of: [Int].self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        try await MigrationRunner.apply(
                            [Self.widgets, Self.seed], to: database, logger: TestEnvironment.logger)
                    }
                }
                return try await group.reduce(into: [Int]()) { $0 += $1 }
            }
            #expect(applied.sorted() == [1, 2])
            #expect(try await countRows("widgets", in: database) == 2)
        }
    }
}
