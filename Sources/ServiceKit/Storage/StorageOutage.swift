public import GRPCCore
import NIOCore
import NIOPosix
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

/// No PostgreSQL connection became free within ``PostgresStore/leaseTimeout`` and the server does not accept
/// connections: it is down or restarting (the pool keeps retrying in the background). The caller is told at once, as
/// an outage (a 503 with `Retry-After` at the gateway), instead of waiting until its deadline for a 504.
public struct DatabaseLeaseTimeout: DependencyError, Sendable {
    public var isOutage: Bool { true }
    public static let outageCode = PSQLError.outageCode
    public static let outageDetail = PSQLError.outageDetail
}

extension PostgresStore {
    /// How long a transaction or statement waits for a pooled connection before asking whether PostgreSQL can be
    /// reached at all.
    public static let leaseTimeout: Duration = .seconds(2)

    /// Runs `body` with a connection from the pool. A wait longer than ``leaseTimeout`` asks whether the server
    /// accepts connections (``PostgresReachability``): if it does, the pool is only busy and the wait goes on (the
    /// caller's deadline still bounds it); if not, the call fails as an outage. Once `body` holds the connection it
    /// runs to its end. postgres-nio's own answer to a server that stays down — its circuit breaker, after 60 s with
    /// no connection — is an error type it does not map, and is reported as the same outage.
    func leasing<T: Sendable>(_ body: @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let lease = LeaseState()
        do {
            return try await withoutActuallyEscaping(body) { body in
                // The group awaits its children before returning, so `body` never outlives this call.
                nonisolated(unsafe) let body = body
                return try await withThrowingTaskGroup(of: T?.self) { group in
                    group.addTask {
                        try await self.client.withConnection { connection in
                            // Given up already: hand the connection back without running anything on it.
                            guard lease.claim(LeaseState.leased) else { throw CancellationError() }
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
                        if lease.isLeased { continue }
                        if await reachability.accepts() {
                            group.addTask {
                                try await Task.sleep(for: Self.leaseTimeout)
                                return nil
                            }
                        } else if lease.claim(LeaseState.givenUp) {
                            throw DatabaseLeaseTimeout()
                        }
                    }
                    throw CancellationError()
                }
            }
        } catch let error where String(describing: type(of: error)) == "ConnectionPoolError" {
            throw DatabaseLeaseTimeout()
        }
    }
}

/// Whether one ``PostgresStore/leasing(_:)`` call got its connection or gave up waiting; whichever happens first
/// wins, so a connection granted at the moment of giving up never runs the body.
private final class LeaseState: Sendable {
    static let waiting = 0
    static let leased = 1
    static let givenUp = 2
    private let state = Atomic<Int>(LeaseState.waiting)

    func claim(_ outcome: Int) -> Bool {
        state.compareExchange(expected: Self.waiting, desired: outcome, ordering: .acquiringAndReleasing).exchanged
    }

    var isLeased: Bool { state.load(ordering: .acquiring) == Self.leased }
}

/// Whether PostgreSQL's port accepts a TCP connection: what tells a server that is down from a pool that is only
/// busy. One probe at a time, its answer reused for a second, however many callers wait: a probe is a connection
/// PostgreSQL forks a backend for, and a crowd of them would slow the very server whose pool is busy. Only a refusal
/// (nothing listens, the host cannot be reached) counts as down: a probe that merely times out, as on a machine too
/// loaded to answer within a second, is not proof, and the caller keeps waiting under its own deadline.
public actor PostgresReachability {
    let host: String
    let port: Int
    private var last: (at: ContinuousClock.Instant, accepts: Bool)?
    private var probing: Task<Bool, Never>?

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    func accepts() async -> Bool {
        if let last, ContinuousClock.now - last.at < .seconds(1) { return last.accepts }
        if let probing { return await probing.value }
        let (host, port) = (host, port)
        let probe = Task { await Self.probe(host: host, port: port) }
        probing = probe
        let accepts = await probe.value
        last = (ContinuousClock.now, accepts)
        probing = nil
        return accepts
    }

    static func probe(host: String, port: Int) async -> Bool {
        do {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(1))
                .connect(host: host, port: port).get()
            try? await channel.close()
            return true
        } catch is NIOConnectionError {
            return false  // every address refused or unreachable
        } catch {
            return true  // a timeout or other trouble of the probe itself
        }
    }
}
