public import GRPCCore
public import PostgresNIO

/// PostgreSQL that cannot be reached, or is shutting down or restarting, fails the call as UNAVAILABLE (the gateway
/// answers 503 with `Retry-After`), as a restarting Redis does (``RedisClientError``): an outage to wait out, not a
/// bug. Everything else PostgreSQL reports — a constraint, a syntax error, a serialisation failure — stays an internal
/// error, whose details never leave the service. SQLSTATE classes taken as an outage: 08 (connection exception),
/// 53 (insufficient resources), 57P01–57P03 (administrator or crash shutdown, cannot connect now).
extension PSQLError: @retroactive RPCErrorConvertible {
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

    public var rpcErrorCode: RPCError.Code { isOutage ? .unavailable : .internalError }

    public var rpcErrorMessage: String {
        isOutage ? "The database is unavailable; try again shortly." : "An internal error occurred."
    }

    public var rpcErrorMetadata: Metadata {
        [errorCodeMetadataKey: .string(isOutage ? "database_unavailable" : "internal_error")]
    }
}
