public import GRPCCore
public import ServiceKit

/// Errors of the Interaction target: a stable code, a client-safe detail and the gRPC status they travel as.
public struct InteractionError: CodedServiceError, Sendable, Equatable {
    public let code: String
    public let detail: String
    public let status: RPCError.Code

    public init(code: String, detail: String, status: RPCError.Code) {
        self.code = code
        self.detail = detail
        self.status = status
    }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code && lhs.detail == rhs.detail }
}
