import Crypto
import Foundation
public import Logging
import PostgresNIO
import SQLiteNIO

/// One versioned schema change, written once per backend. Statements run in order inside one transaction.
public struct Migration: Sendable {
    public let version: Int
    public let name: String
    public let postgres: [String]
    public let sqlite: [String]

    public init(version: Int, name: String, postgres: [String], sqlite: [String]) {
        self.version = version
        self.name = name
        self.postgres = postgres
        self.sqlite = sqlite
    }

    /// Recorded when applied; a later run that finds different SQL under the same version refuses to start.
    func checksum(postgres usePostgres: Bool) -> String {
        let text = (usePostgres ? postgres : sqlite).joined(separator: "\n;\n")
        return SHA256.hash(data: Array(text.utf8)).hexEncoded
    }
}

/// Applies a service's migrations: on PostgreSQL inside one transaction holding an advisory lock (replicas may start
/// together), on SQLite inside `BEGIN IMMEDIATE`. Applied versions are kept in the service's `schema_migrations`.
public enum MigrationRunner {
    /// - Returns: the versions applied by this call (empty when already current).
    @discardableResult
    public static func apply(_ migrations: [Migration], to database: ServiceDatabase, logger: Logger) async throws
        -> [Int]
    {
        let ordered = migrations.sorted { $0.version < $1.version }
        guard Set(ordered.map(\.version)).count == ordered.count else {
            throw StorageError("duplicate migration versions")
        }
        switch database {
        case .postgres(let store):
            do {
                return try await apply(ordered, postgres: store, logger: logger)
            } catch let error as PostgresTransactionError {
                // Report what failed inside the transaction, not the wrapper.
                throw error.closureError ?? error.beginError ?? error.commitError ?? error
            }
        case .sqlite(let store): return try await apply(ordered, sqlite: store, logger: logger)
        }
    }

    private static func pending(_ migrations: [Migration], applied: [Int: String], postgres: Bool) throws -> [Migration]
    {
        for migration in migrations {
            if let checksum = applied[migration.version], checksum != migration.checksum(postgres: postgres) {
                throw StorageError(
                    "migration \(migration.version) (\(migration.name)) was changed after it was applied")
            }
        }
        return migrations.filter { applied[$0.version] == nil }
    }

    private static func apply(_ migrations: [Migration], postgres store: PostgresStore, logger: Logger) async throws
        -> [Int]
    {
        try await store.client.withTransaction(logger: logger) { connection in
            let lockKey = advisoryLockKey("leaderboard.migrations." + store.schema)
            try await connection.query("SELECT pg_advisory_xact_lock(\(lockKey))", logger: logger)
            // The schema name is a fixed identifier from code (checked in PostgresStore.init), not input.
            try await connection.query(
                PostgresQuery(unsafeSQL: "CREATE SCHEMA IF NOT EXISTS \"\(store.schema)\""), logger: logger)
            try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        CREATE TABLE IF NOT EXISTS "\(store.schema)".schema_migrations (
                            version integer PRIMARY KEY,
                            name text NOT NULL,
                            checksum text NOT NULL,
                            applied_at timestamptz NOT NULL DEFAULT now())
                        """), logger: logger)
            var applied: [Int: String] = [:]
            let rows = try await connection.query(
                PostgresQuery(unsafeSQL: "SELECT version, checksum FROM \"\(store.schema)\".schema_migrations"),
                logger: logger)
            for try await (version, checksum) in rows.decode((Int, String).self) { applied[version] = checksum }

            let todo = try pending(migrations, applied: applied, postgres: true)
            for migration in todo {
                for statement in migration.postgres {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                let checksum = migration.checksum(postgres: true)
                try await connection.query(
                    PostgresQuery(
                        unsafeSQL:
                            "INSERT INTO \"\(store.schema)\".schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                        binds: try binds(migration.version, migration.name, checksum)),
                    logger: logger)
                logger.info(
                    "applied migration", metadata: ["schema": "\(store.schema)", "version": "\(migration.version)"])
            }
            return todo.map(\.version)
        }
    }

    private static func binds(_ version: Int, _ name: String, _ checksum: String) throws -> PostgresBindings {
        var bindings = PostgresBindings()
        bindings.append(version)
        bindings.append(name)
        bindings.append(checksum)
        return bindings
    }

    private static func apply(_ migrations: [Migration], sqlite store: SQLiteStore, logger: Logger) async throws
        -> [Int]
    {
        try await store.withTransaction { connection in
            _ = try await connection.query(
                """
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version INTEGER PRIMARY KEY,
                    name TEXT NOT NULL,
                    checksum TEXT NOT NULL,
                    applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))
                """)
            var applied: [Int: String] = [:]
            for row in try await connection.query("SELECT version, checksum FROM schema_migrations") {
                if let version = row.column("version")?.integer, let checksum = row.column("checksum")?.string {
                    applied[version] = checksum
                }
            }
            let todo = try pending(migrations, applied: applied, postgres: false)
            for migration in todo {
                for statement in migration.sqlite { _ = try await connection.query(statement) }
                _ = try await connection.query(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (?, ?, ?)",
                    [.integer(migration.version), .text(migration.name), .text(migration.checksum(postgres: false))])
                logger.info(
                    "applied migration", metadata: ["file": "\(store.path)", "version": "\(migration.version)"])
            }
            return todo.map(\.version)
        }
    }

    /// FNV-1a 64 of the name: a stable advisory-lock key per schema.
    static func advisoryLockKey(_ name: String) -> Int64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in name.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        return Int64(bitPattern: hash)
    }
}
