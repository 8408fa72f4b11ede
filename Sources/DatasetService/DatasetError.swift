public import GRPCCore
public import ServiceKit

/// Errors of the Dataset target: a stable code, a client-safe detail and the gRPC status they travel as.
public struct DatasetError: CodedServiceError, Sendable, Equatable {
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

/// Every rejection the Dataset target makes (docs/DATASET-FORMAT.md lists them with their HTTP status).
extension DatasetError {
    static func invalid(_ code: String, _ detail: String) -> DatasetError {
        DatasetError(code: code, detail: detail, status: .invalidArgument)
    }

    static let unknownVersion = DatasetError(
        code: "unknown_dataset_version", detail: "No dataset has this version.", status: .notFound)
    static let noActiveVersion = DatasetError(
        code: "no_active_dataset", detail: "No dataset version is active.", status: .notFound)
    static let versionExists = DatasetError(
        code: "dataset_version_exists", detail: "A dataset with this version already exists; versions are immutable.",
        status: .alreadyExists)
    static let notActive = DatasetError(
        code: "dataset_not_active", detail: "This dataset version is not active; keys are only issued for active ones.",
        status: .failedPrecondition)
    static let unknownChunk = DatasetError(
        code: "unknown_chunk", detail: "The dataset has no chunk with this index.", status: .notFound)
    static let rangeNotSatisfiable = DatasetError(
        code: "range_not_satisfiable", detail: "The requested range is outside the ciphertext.", status: .outOfRange)
    /// Stored bytes do not match the manifest: the operator is told in the log; the client may retry later.
    static let corruptChunk = DatasetError(
        code: "chunk_unavailable", detail: "This part of the dataset is temporarily unavailable; try again later.",
        status: .unavailable)
}
