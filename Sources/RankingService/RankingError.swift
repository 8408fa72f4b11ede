public import GRPCCore
public import ServiceKit

/// Errors of the Ranking target: a stable code, a client-safe detail and the gRPC status they travel as.
public struct RankingError: CodedServiceError, Sendable, Equatable {
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

/// Every rejection the Ranking target makes (docs/RANKING.md lists them with their HTTP status).
extension RankingError {
    static let unknownSession = RankingError(
        code: "unknown_session", detail: "This device has no benchmark session with this id.", status: .notFound)
    static let tooManySessions = RankingError(
        code: "too_many_sessions", detail: "This device has too many running sessions; submit or let one expire.",
        status: .resourceExhausted)
    static let datasetInactive = RankingError(
        code: "dataset_inactive", detail: "This dataset version is not active; benchmark the latest one.",
        status: .failedPrecondition)
    static let checksumMismatch = RankingError(
        code: "dataset_checksum_mismatch", detail: "dataset_checksum is not the published SHA-256 of this version.",
        status: .invalidArgument)
    static func invalidMetric(_ detail: String) -> RankingError {
        RankingError(code: "invalid_metric", detail: detail, status: .invalidArgument)
    }
    static let invalidIdempotencyKey = RankingError(
        code: "invalid_idempotency_key", detail: "An Idempotency-Key is 1–255 visible ASCII characters.",
        status: .invalidArgument)
    static let idempotencyKeyReused = RankingError(
        code: "idempotency_key_reused",
        detail: "This Idempotency-Key was used for a different body; a retry must send the same body.",
        status: .alreadyExists)
    static let unknownRecord = RankingError(
        code: "record_not_found", detail: "No published record has this id.", status: .notFound)
    static let notOwner = RankingError(
        code: "not_record_owner", detail: "Only the device that made this record may change it.",
        status: .permissionDenied)
    static let unknownReview = RankingError(
        code: "unknown_review", detail: "No review has this id.", status: .notFound)
    static let reviewDecided = RankingError(
        code: "review_already_decided", detail: "This review has already been decided.", status: .failedPrecondition)
    static let resultReplayed = RankingError(
        code: "result_replayed",
        detail:
            "This result file was uploaded before (its nonce is used): run the benchmark again to upload a new result.",
        status: .alreadyExists)
    static let promptsUnavailable = RankingError(
        code: "prompts_unavailable", detail: "Prompts cannot be checked here.", status: .unavailable)
    static func tooManyRequestRecords(_ maximum: Int) -> RankingError {
        RankingError(
            code: "too_many_requests", detail: "A submit carries at most \(maximum) request records.",
            status: .invalidArgument)
    }
    static func tooManyMetrics(_ maximum: Int) -> RankingError {
        RankingError(
            code: "too_many_metrics", detail: "A submit carries at most \(maximum) metric samples.",
            status: .invalidArgument)
    }
    static let invalidNumber = RankingError(
        code: "invalid_number", detail: "Every number in a submission must be finite.", status: .invalidArgument)
    static func resultIncomplete(_ detail: String) -> RankingError {
        RankingError(
            code: "result_incomplete", detail: "The result cannot become a record: \(detail)", status: .invalidArgument)
    }
    static let invalidReason = RankingError(
        code: "invalid_reason", detail: "A moderation needs a reason of 1 to 2000 characters.",
        status: .invalidArgument)
    static func invalidModeration(status: String, action: String) -> RankingError {
        RankingError(
            code: "invalid_moderation", detail: "A record that is \(status) cannot be \(action)d.",
            status: .failedPrecondition)
    }
    static let invalidNote = RankingError(
        code: "invalid_note", detail: "A note is at most 2000 characters.", status: .invalidArgument)
    static let invalidModelBounds = RankingError(
        code: "invalid_filter", detail: "model_params_min and model_params_max must be numbers ≥ 0.",
        status: .invalidArgument)
    static func invalidLimit(_ maximum: Int) -> RankingError {
        RankingError(code: "invalid_limit", detail: "limit must be 1 to \(maximum).", status: .invalidArgument)
    }
    static let invalidCursor = RankingError(
        code: "invalid_cursor", detail: "The cursor is not one this listing returned.", status: .invalidArgument)
    /// The rank index lost its contents (an emptied Redis; its sentinel is gone) and is rebuilt within one upkeep
    /// interval. Until then every rank would read as 0, so a read that needs one is refused (503, Retry-After).
    static let rankIndexRebuilding = RankingError(
        code: "rank_index_rebuilding", detail: "The board's ranks are being rebuilt; try again shortly.",
        status: .unavailable)
}
