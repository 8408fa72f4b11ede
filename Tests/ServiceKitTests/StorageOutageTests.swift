import GRPCCore
import Logging
import NIOPosix
import PostgresNIO
import ServiceKit
import TestSupport
import Testing

@Suite("PostgreSQL outages", .enabled(if: TestEnvironment.hasPostgres), .timeLimit(.minutes(1)))
struct StorageOutageTests {
    static func configuration(_ url: PostgresURL, port: Int? = nil) -> PostgresConnection.Configuration {
        var configuration = PostgresConnection.Configuration(
            host: url.host, port: port ?? url.port, username: url.username, password: url.password,
            database: url.database, tls: .disable)
        // Generous: the suite starts while dozens of other tests start servers, and a refused port fails at once anyway.
        configuration.options.connectTimeout = .seconds(15)
        return configuration
    }

    @Test("a database that is down or shutting down fails calls as UNAVAILABLE; a bad statement stays internal")
    func outagesAreUnavailable() async throws {
        let url = try TestEnvironment.postgres()
        let logger = TestEnvironment.logger

        // Nothing listens: the connection error of a stopped server.
        let closed = try await Self.unusedPort()
        let refused = await #expect(throws: PSQLError.self) {
            _ = try await PostgresConnection.connect(
                configuration: Self.configuration(url, port: closed), id: 1, logger: logger)
        }
        #expect(refused?.rpcErrorCode == .unavailable)
        let converted = refused.map {
            RPCError(code: $0.rpcErrorCode, message: $0.rpcErrorMessage, metadata: $0.rpcErrorMetadata)
        }
        #expect(converted?.serviceErrorCode == "database_unavailable")

        // The server ends the session as it does when an operator or a restart shuts it down (SQLSTATE 57P01).
        let connection = try await PostgresConnection.connect(
            configuration: Self.configuration(url), id: 2, logger: logger)
        let terminated = await #expect(throws: PSQLError.self) {
            let rows = try await connection.query("SELECT pg_terminate_backend(pg_backend_pid())", logger: logger)
            for try await _ in rows {}
            // The termination shows on the reply (57P01) or, if it raced the rows, on the next statement.
            _ = try await connection.query("SELECT 1", logger: logger)
        }
        #expect(terminated?.rpcErrorCode == .unavailable, "\(String(reflecting: terminated))")
        try? await connection.close()

        // A mistake in a statement is not an outage, and says nothing about itself to the caller.
        let other = try await PostgresConnection.connect(configuration: Self.configuration(url), id: 3, logger: logger)
        let mistake = await #expect(throws: PSQLError.self) {
            for try await _ in try await other.query("SELECT * FROM no_such_table_anywhere", logger: logger) {}
        }
        #expect(mistake?.rpcErrorCode == .internalError)
        #expect(mistake?.rpcErrorMessage.contains("no_such_table") == false)
        try await other.close()
    }

    @Test(
        "with PostgreSQL unreachable, a transaction fails as UNAVAILABLE once the lease timeout passes, not at the caller's deadline"
    )
    func unreachableFailsFast() async throws {
        let url = try TestEnvironment.postgres()
        let port = try await Self.unusedPort()
        let dead = try PostgresURL.parse("postgres://\(url.username)@127.0.0.1:\(port)/\(url.database)?sslmode=disable")
        let store = PostgresStore(url: dead, schema: "nowhere", maximumConnections: 2, logger: TestEnvironment.logger)
        let database = ServiceDatabase.postgres(store)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await store.client.run() }
            defer { group.cancelAll() }
            for attempt in 0..<2 {
                let clock = ContinuousClock()
                let started = clock.now
                let failure = await #expect(throws: DatabaseLeaseTimeout.self, "attempt \(attempt)") {
                    try await database.transaction(logger: TestEnvironment.logger) { sql in
                        try await sql.query("SELECT 1", [])
                    }
                }
                #expect(failure?.rpcErrorCode == .unavailable)
                #expect(
                    failure?.rpcErrorMetadata[stringValues: errorCodeMetadataKey].first { _ in true }
                        == "database_unavailable")
                let waited = clock.now - started
                #expect(
                    // Well before postgres-nio's own circuit breaker (60 s); generous: the full suite loads the machine.
                    waited >= PostgresStore.leaseTimeout && waited < .seconds(30),
                    "\(waited)")
            }
            // Statements outside a transaction wait no longer.
            await #expect(throws: DatabaseLeaseTimeout.self) {
                try await database.withExecutor(logger: TestEnvironment.logger) { sql in
                    try await sql.query("SELECT 1", [])
                }
            }
        }
    }

    /// A loopback port nothing listens on (bound, then closed).
    static func unusedPort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(channel.localAddress?.port)
        try await channel.close()
        return port
    }
}
