import Testing

@testable import RankingService

@Suite("Session state machine")
struct SessionTests {
    let start: Int64 = 1_800_000_000_000_000
    var running: SessionStatus {
        SessionStatus(state: .running, startedAt: start, expiresAt: start + 3_600_000_000, samples: 0)
    }

    func code(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch let error as RankingError {
            return error.code
        } catch {
            return "unexpected: \(error)"
        }
    }

    @Test("running → submitted → accepted, rejected or held; held → decided by an operator")
    func happyPaths() throws {
        #expect(try running.submitting(at: start + 1) == .submitted)
        var submitted = running
        submitted.state = .submitted
        #expect(try submitted.judged(.accepted) == .accepted)
        #expect(try submitted.judged(.rejected([])) == .rejected)
        #expect(try submitted.judged(.heldForReview([])) == .heldForReview)
        var held = running
        held.state = .heldForReview
        #expect(try held.reviewed(approve: true) == .accepted)
        #expect(try held.reviewed(approve: false) == .rejected)
    }

    @Test("metrics only while running, in time and under the cap; one submit; expiry")
    func refusals() {
        let policy = SessionPolicy(maximumSamples: 3)
        #expect(code { try running.acceptingMetrics(at: start + 1, policy: policy) } == nil)
        var full = running
        full.samples = 3
        #expect(code { try full.acceptingMetrics(at: start + 1, policy: policy) } == "too_many_metrics")
        #expect(code { try running.acceptingMetrics(at: start + 3_600_000_000, policy: policy) } == "session_expired")
        #expect(code { _ = try running.submitting(at: start + 3_600_000_001) } == "session_expired")
        #expect(running.effectiveState(at: start + 3_600_000_000) == .expired)
        for state in [SessionState.submitted, .accepted, .rejected, .heldForReview] {
            var done = running
            done.state = state
            #expect(code { try done.acceptingMetrics(at: start + 1, policy: policy) } == "session_not_running")
            #expect(code { _ = try done.submitting(at: start + 1) } == "already_submitted")
        }
        #expect(code { _ = try running.reviewed(approve: true) } == "not_held_for_review")
        #expect(code { _ = try running.judged(.accepted) } == "session_not_running")
    }
}
