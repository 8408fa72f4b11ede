import Foundation
import PostgresNIO
import SQLiteNIO
import ServiceKit
import Testing

/// Which database backend a storage contract case runs against.
enum StorageBackend: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite
    case postgres

    var testDescription: String { rawValue }

    static var available: [StorageBackend] { TestEnvironment.hasPostgres ? [.sqlite, .postgres] : [.sqlite] }
}

/// A fresh database for one test: a temporary SQLite file, or a PostgreSQL schema of its own (dropped after).
func withTestDatabase(_ backend: StorageBackend, _ body: (ServiceDatabase) async throws -> Void) async throws {
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
func countRows(_ table: String, in database: ServiceDatabase) async throws -> Int {
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

@Suite("Migration runner contract", .timeLimit(.minutes(1)))
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
