public import GRPCCore
public import PostgresNIO

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
