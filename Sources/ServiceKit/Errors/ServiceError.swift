public import GRPCCore

/// Metadata key carrying the stable error code of a failed RPC, read by the gateway for problem+json `code`.
public let errorCodeMetadataKey = "leaderboard-error-code"

/// What every module error type provides so it crosses the wire as an `RPCError` with a stable code.
///
/// Each module has its own error type (`AuthError`, `RankingError`, …) conforming to this.
public protocol CodedServiceError: Error, RPCErrorConvertible, CustomStringConvertible {
    /// Stable snake_case code, e.g. `unknown_device`.
    var code: String { get }
    /// Safe to show to the client.
    var detail: String { get }
    var status: RPCError.Code { get }
}

extension CodedServiceError {
    public var rpcErrorCode: RPCError.Code { status }
    public var rpcErrorMessage: String { detail }
    public var rpcErrorMetadata: Metadata { [errorCodeMetadataKey: .string(code)] }
    public var description: String { "\(code): \(detail)" }
}

/// An error of something a service stands on (Redis, PostgreSQL). An outage — the dependency cannot be reached, or
/// is restarting — crosses the wire as a coded UNAVAILABLE (the gateway answers 503 with `Retry-After`): something
/// to wait out, not a bug. Any other failure is an internal error whose details never leave the service.
public protocol DependencyError: Error, RPCErrorConvertible {
    var isOutage: Bool { get }
    /// The stable code of an outage, e.g. `database_unavailable`.
    static var outageCode: String { get }
    /// What the client reads during an outage.
    static var outageDetail: String { get }
}

extension DependencyError {
    public var rpcErrorCode: RPCError.Code { isOutage ? .unavailable : .internalError }
    public var rpcErrorMessage: String { isOutage ? Self.outageDetail : "An internal error occurred." }
    public var rpcErrorMetadata: Metadata {
        [errorCodeMetadataKey: .string(isOutage ? Self.outageCode : "internal_error")]
    }
}

extension RPCError {
    /// The stable code set by the service, if any.
    public var serviceErrorCode: String? {
        for case .string(let value) in metadata[errorCodeMetadataKey] { return value }
        return nil
    }
}
