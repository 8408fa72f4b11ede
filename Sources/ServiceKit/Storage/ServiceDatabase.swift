import Foundation
public import Logging
import NIOPosix
import NIOSSL
public import PostgresNIO
public import SQLiteNIO
import Tracing

/// One service's database: its own PostgreSQL schema, or its own SQLite file in the embedded configuration.
///
/// Repositories switch on this once, at construction, and keep the concrete store.
public enum ServiceDatabase: Sendable {
    case postgres(PostgresStore)
    case sqlite(SQLiteStore)

    /// A cheap round trip, for readiness checks.
    public func ping() async throws {
        switch self {
        case .postgres(let store): try await store.ping()
        case .sqlite(let store): try await store.ping()
        }
    }

    var metrics: DatabaseMetrics {
        switch self {
        case .postgres(let store): store.metrics
        case .sqlite(let store): store.metrics
        }
    }
}

/// One service's storage figures (``MetricFamilies``), made once per store so the hot path does no registry lookups.
struct DatabaseMetrics: Sendable {
    let service: String
    let dependency: String
    let committed: MetricCounter
    let rolledBack: MetricCounter
    let unavailable: MetricCounter
    let transactionSeconds: MetricHistogram
    let querySeconds: MetricHistogram
    let inUse: MetricGauge

    init(service: String, dependency: String, poolSize: Int) {
        self.service = service
        self.dependency = dependency
        committed = MetricFamilies.databaseTransactions.counter(service, "commit")
        rolledBack = MetricFamilies.databaseTransactions.counter(service, "rollback")
        unavailable = MetricFamilies.databaseTransactions.counter(service, "unavailable")
        transactionSeconds = MetricFamilies.databaseTransactionSeconds.histogram(service)
        querySeconds = MetricFamilies.databaseQuerySeconds.histogram(service)
        inUse = MetricFamilies.databaseInUse.gauge(service)
        MetricFamilies.databasePoolSize.gauge(service).set(Double(poolSize))
    }

    /// `base` with its statements timed (and traced) as this service's.
    func measured(_ base: any SQLExecutor) -> MeasuredExecutor {
        MeasuredExecutor(base: base, seconds: querySeconds, service: service)
    }

    /// Runs `body` as one holder of a connection, timing it as a transaction when `transaction` is true.
    func measure<T>(transaction: Bool, _ body: () async throws -> T) async throws -> T {
        let start = ContinuousClock.now
        inUse.increment()
        defer { inUse.decrement() }
        do {
            let result = try await body()
            if transaction {
                committed.increment()
                transactionSeconds.record(ContinuousClock.now - start)
            }
            return result
        } catch {
            if transaction {
                ((error as? any DependencyError)?.isOutage == true ? unavailable : rolledBack).increment()
                transactionSeconds.record(ContinuousClock.now - start)
            }
            throw error
        }
    }
}

/// Times each statement of an executor, in a span of the current trace if there is one (the statement's text is
/// the code's constant; bound values are never recorded).
struct MeasuredExecutor: SQLExecutor {
    let base: any SQLExecutor
    let seconds: MetricHistogram
    let service: String
    var isPostgres: Bool { base.isPostgres }

    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        try await TracingSetup.withChildSpan(
            "SQL \(Self.operation(sql))",
            attributes: {
                $0["db.system"] = base.isPostgres ? "postgresql" : "sqlite"
                $0["db.namespace"] = service
                $0["db.operation.name"] = Self.operation(sql)
                $0["db.query.text"] = sql
            }
        ) {
            try await seconds.time { try await base.query(sql, binds) }
        }
    }

    /// The statement's first word (`SELECT`, `INSERT`, …).
    static func operation(_ sql: String) -> String {
        sql.drop { $0.isWhitespace }.prefix { !$0.isWhitespace }.uppercased()
    }
}

/// Why storage could not be used. `description` is safe to log and show (no passwords).
public struct StorageError: Error, Sendable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// A PostgreSQL connection pool whose connections use the service's schema (`search_path`).
public final class PostgresStore: Sendable {
    public let client: PostgresClient
    public let schema: String
    public let url: PostgresURL
    let metrics: DatabaseMetrics
    let reachability: PostgresReachability

    /// - Parameter schema: a fixed identifier chosen by code (`auth`, `ranking`, …), never user input.
    public init(url: PostgresURL, schema: String, maximumConnections: Int, logger: Logger) {
        precondition(schema.allSatisfy { $0.isASCII && ($0.isLowercase || $0 == "_") }, "schema must be [a-z_]")
        self.url = url
        self.schema = schema
        reachability = PostgresReachability(host: url.host, port: url.port)
        metrics = DatabaseMetrics(service: schema, dependency: "postgres", poolSize: maximumConnections)
        var configuration = PostgresClient.Configuration(
            host: url.host, port: url.port, username: url.username, password: url.password, database: url.database,
            tls: Self.tls(url.tls))
        configuration.options.maximumConnections = maximumConnections
        configuration.options.additionalStartupParameters = [("search_path", schema)]
        configuration.options.connectTimeout = .seconds(5)
        client = PostgresClient(configuration: configuration, backgroundLogger: logger)
    }

    static func tls(_ mode: PostgresURL.TLSMode) -> PostgresClient.Configuration.TLS {
        switch mode {
        case .disable: .disable
        case .prefer: .prefer(.makeClientConfiguration())
        case .require: .require(.makeClientConfiguration())
        }
    }

    public func ping() async throws {
        try await client.query("SELECT 1")
    }

    /// Opens and closes one connection, so an unreachable or misconfigured server is reported clearly at start.
    public static func checkReachable(_ url: PostgresURL, logger: Logger) async throws(StorageError) {
        do {
            let tls: PostgresConnection.Configuration.TLS =
                switch url.tls {
                case .disable: .disable
                case .prefer: .prefer(try NIOSSLContext(configuration: .makeClientConfiguration()))
                case .require: .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
                }
            var configuration = PostgresConnection.Configuration(
                host: url.host, port: url.port, username: url.username, password: url.password,
                database: url.database, tls: tls)
            configuration.options.connectTimeout = .seconds(5)
            let connection = try await PostgresConnection.connect(configuration: configuration, id: 0, logger: logger)
            try await connection.close()
        } catch let error as PSQLError {
            let reason = error.serverInfo?[.message] ?? error.underlying.map { "\($0)" } ?? "\(error.code)"
            throw StorageError("cannot connect to \(url): \(reason)")
        } catch {
            throw StorageError("cannot connect to \(url): \(error)")
        }
    }
}

/// One SQLite file, one connection, every use serialised so transactions never interleave.
public final class SQLiteStore: Sendable {
    public let path: String
    private let connection: SQLiteConnection
    private let lock = AsyncSerialLock()
    let metrics: DatabaseMetrics

    private init(path: String, connection: SQLiteConnection) {
        self.path = path
        self.connection = connection
        let name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        metrics = DatabaseMetrics(service: path == ":memory:" ? "memory" : name, dependency: "sqlite", poolSize: 1)
    }

    /// Opens (creating if needed) the file with WAL journaling and foreign keys on. `:memory:` opens a private
    /// in-memory database, for tests.
    public static func open(path: String, logger: Logger) async throws(StorageError) -> SQLiteStore {
        do {
            if path != ":memory:" {
                try FileSystem.createDirectory((path as NSString).deletingLastPathComponent)
            }
            let connection = try await SQLiteConnection.open(
                storage: path == ":memory:" ? .memory : .file(path: path), logger: logger)
            let store = SQLiteStore(path: path, connection: connection)
            for pragma in [
                "PRAGMA journal_mode = WAL", "PRAGMA foreign_keys = ON", "PRAGMA busy_timeout = 5000",
                "PRAGMA synchronous = NORMAL",
            ] {
                _ = try await connection.query(pragma)
            }
            return store
        } catch {
            throw StorageError("cannot open SQLite database '\(path)': \(error)")
        }
    }

    /// Runs statements with exclusive use of the connection (no transaction).
    public func withConnection<T>(_ body: (SQLiteConnection) async throws -> T) async throws -> T {
        try await lock.withLock { try await body(connection) }
    }

    /// Runs `body` in `BEGIN IMMEDIATE … COMMIT`; any throw rolls back.
    public func withTransaction<T>(_ body: (SQLiteConnection) async throws -> T) async throws -> T {
        try await lock.withLock {
            _ = try await connection.query("BEGIN IMMEDIATE")
            do {
                let result = try await body(connection)
                _ = try await connection.query("COMMIT")
                return result
            } catch {
                _ = try? await connection.query("ROLLBACK")
                throw error
            }
        }
    }

    public func ping() async throws {
        _ = try await withConnection { try await $0.query("SELECT 1") }
    }

    /// A consistent copy of the whole database in a new file (`VACUUM INTO`: SQLite's online backup, which readers
    /// and writers in other processes do not block).
    public func copy(to path: String) async throws {
        _ = try await withConnection { try await $0.query("VACUUM INTO ?1", [.text(path)]) }
    }

    public func close() async {
        await lock.withLock { try? await connection.close() }
    }
}
