import GRPCCore

/// A benchmark session's life: running → submitted → accepted | rejected | held for review; or expired when it
/// runs out of time before a submit. Held results end accepted or rejected by an operator.
enum SessionState: String, Sendable, Equatable, CaseIterable {
    case running
    case submitted
    case accepted
    case rejected
    case heldForReview = "held_for_review"
    case expired
}

/// Session timing and limits (rule set v1 expects reports every `metricsInterval`).
struct SessionPolicy: Sendable {
    /// A session must be submitted within this time of its start.
    var lifetime: Duration = .seconds(6 * 3600)
    var metricsIntervalSeconds = 10
    /// Most metric reports one session keeps (a 6 h run at the interval, with room).
    var maximumSamples = 4000

    static let standard = SessionPolicy()
}

/// The facts of a session the state machine needs.
struct SessionStatus: Sendable, Equatable {
    var state: SessionState
    var startedAt: Int64
    var expiresAt: Int64
    var samples: Int

    /// Its state as seen at `now`: a running session past its time is expired.
    func effectiveState(at now: Int64) -> SessionState {
        state == .running && now >= expiresAt ? .expired : state
    }

    /// Accepting one more metric report.
    func acceptingMetrics(at now: Int64, policy: SessionPolicy) throws(RankingError) {
        switch effectiveState(at: now) {
        case .running:
            guard samples < policy.maximumSamples else {
                throw RankingError(
                    code: "too_many_metrics",
                    detail: "This session already has \(policy.maximumSamples) metric reports, the most it keeps.",
                    status: .resourceExhausted)
            }
        case .expired: throw .sessionExpired
        case .submitted, .accepted, .rejected, .heldForReview: throw .sessionNotRunning
        }
    }

    /// Submitting: once, while running and in time.
    func submitting(at now: Int64) throws(RankingError) -> SessionState {
        switch effectiveState(at: now) {
        case .running: return .submitted
        case .expired: throw .sessionExpired
        case .submitted, .accepted, .rejected, .heldForReview: throw .alreadySubmitted
        }
    }

    /// The validation verdict on a submitted session.
    func judged(_ outcome: ValidationOutcome) throws(RankingError) -> SessionState {
        guard state == .submitted else { throw .sessionNotRunning }
        switch outcome {
        case .accepted: return .accepted
        case .rejected: return .rejected
        case .heldForReview: return .heldForReview
        }
    }

    /// An operator's decision on a held result.
    func reviewed(approve: Bool) throws(RankingError) -> SessionState {
        guard state == .heldForReview else {
            throw RankingError(
                code: "not_held_for_review", detail: "This submission is not waiting for review.",
                status: .failedPrecondition)
        }
        return approve ? .accepted : .rejected
    }
}

extension RankingError {
    static let sessionExpired = RankingError(
        code: "session_expired", detail: "The session ran out of time; start a new one.", status: .failedPrecondition)
    static let sessionNotRunning = RankingError(
        code: "session_not_running", detail: "The session has been submitted; it takes no more metrics.",
        status: .failedPrecondition)
    static let alreadySubmitted = RankingError(
        code: "already_submitted", detail: "This session already has a submission.", status: .alreadyExists)
}
