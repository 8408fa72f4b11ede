public import GRPCCore
public import PostgresNIO
import Synchronization

/// PostgreSQL that cannot be reached, or is shutting down or restarting, fails the call as UNAVAILABLE
/// (``DependencyError``), as a restarting Redis does. Everything else PostgreSQL reports — a constraint, a syntax
/// error, a serialisation failure — stays an internal error. SQLSTATE classes taken as an outage: 08 (connection
/// exception), 53 (insufficient resources), 57P01–57P03 (administrator or crash shutdown, cannot connect now).
extension PSQLError: @retroactive RPCErrorConvertible, DependencyError {
    public var isOutage: Bool {
        switch code {
        case .connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .poolClosed:
            return true
        case .server:
            let state = serverInfo?[.sqlState] ?? ""
            return state.hasPrefix("08") || state.hasPrefix("53") || ["57P01", "57P02", "57P03"].contains(state)
        default:
            return false
        }
    }

    public static let outageCode = "database_unavailable"
    public static let outageDetail = "The database is unavailable; try again shortly."
}

/// No PostgreSQL connection became free within ``PostgresStore/leaseTimeout``: the server cannot be reached (the
/// pool keeps retrying in the background) or cannot keep up. Either way the caller is told at once, as an outage
/// (a 503 with `Retry-After` at the gateway), instead of waiting until its deadline for a 504.
public struct DatabaseLeaseTimeout: DependencyError, Sendable {
    public var isOutage: Bool { true }
    public static let outageCode = PSQLError.outageCode
    public static let outageDetail = PSQLError.outageDetail
}

extension PostgresStore {
    /// How long a transaction or statement waits for a pooled connection before it fails as an outage.
    public static let leaseTimeout: Duration = .seconds(2)

    /// Runs `body` with a connection from the pool, waiting at most ``leaseTimeout`` for it. Once `body` holds the
    /// connection it runs to its end (the caller's deadline still applies). postgres-nio's own answer to a server
    /// that stays down — its circuit breaker, after 60 s with no connection — is an error type it does not map, and
    /// is reported as the same outage.
    func leasing<T: Sendable>(_ body: @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let leased = LeaseFlag()
        do {
            return try await withoutActuallyEscaping(body) { body in
                // The group awaits both children before returning, so `body` never outlives this call.
                nonisolated(unsafe) let body = body
                return try await withThrowingTaskGroup(of: T?.self) { group in
                    group.addTask {
                        try await self.client.withConnection { connection in
                            leased.value.store(true, ordering: .releasing)
                            return try await body(connection)
                        }
                    }
                    group.addTask {
                        try await Task.sleep(for: Self.leaseTimeout)
                        return nil
                    }
                    defer { group.cancelAll() }
                    while let next = try await group.next() {
                        if let value = next { return value }
                        guard leased.value.load(ordering: .acquiring) else { throw DatabaseLeaseTimeout() }
                    }
                    throw CancellationError()
                }
            }
        } catch let error where String(describing: type(of: error)) == "ConnectionPoolError" {
            throw DatabaseLeaseTimeout()
        }
    }
}

/// Whether a ``PostgresStore/leasing(_:)`` call got its connection.
private final class LeaseFlag: Sendable {
    let value = Atomic<Bool>(false)
}
