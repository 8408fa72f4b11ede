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

extension RPCError {
    /// The stable code set by the service, if any.
    public var serviceErrorCode: String? {
        for case .string(let value) in metadata[errorCodeMetadataKey] { return value }
        return nil
    }
}
