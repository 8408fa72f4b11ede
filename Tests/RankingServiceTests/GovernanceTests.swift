import Foundation
import ServiceKit
import TestSupport
import Testing

@testable import RankingService

@Suite("Operators govern results: moderation, baselines, the audit log", .timeLimit(.minutes(2)))
struct GovernanceTests {
    @Test(
        "hide, restore, baseline and remove move the boards and their events, each audited with its reason",
        arguments: StorageBackend.available)
    func moderation(_ backend: StorageBackend) async throws {
        try await RankingHarness.with(backend) { harness in
            let other = try #require(try await harness.run(try await harness.start("other"), tps: 150).recordID)
            let slow = try #require(try await harness.run(try await harness.start("me"), tps: 100).recordID)
            let fast = try #require(try await harness.run(try await harness.start("me"), tps: 200).recordID)
            #expect(try await harness.board().map(\.id) == [fast, other])
            let board = Board.global(harness.version)
            let before = try await harness.ranking.boards.lastSequence(of: board)

            // Hidden: off the board, out of public reads; the owner's next best takes its place.
            #expect(
                try await harness.ranking.moderate(fast, action: .hide, reason: "benchmark of a modded card")
                    == "hidden")
            #expect(try await harness.board().map(\.id) == [other, slow])
            await #expect(throws: RankingError.unknownRecord) { try await harness.ranking.boards.record(fast) }
            let events = try await harness.ranking.boards.events(of: board, after: before)
            #expect(events.contains { $0.kind == .removed(recordID: fast) })
            #expect(events.contains { if case .accepted(slow, _) = $0.kind { true } else { false } })

            // Restored: it is the owner's best again.
            #expect(
                try await harness.ranking.moderate(fast, action: .restore, reason: "owner showed the card")
                    == "accepted")
            #expect(try await harness.board().map(\.id) == [fast, other])

            // A baseline: shown beside the board, never ranked.
            #expect(
                try await harness.ranking.moderate(other, action: .baseline, reason: "vendor reference run")
                    == "baseline")
            #expect(try await harness.board().map(\.id) == [fast])
            let baselines = try await harness.ranking.boards.baselines(RecordFilter(datasetVersion: ""))
            #expect(baselines.map(\.record.recordID) == [other] && baselines[0].rank == 0)
            #expect(try await harness.ranking.boards.record(other).record.status == .baseline)

            // Removed for good; the owner's remaining record is ranked.
            #expect(
                try await harness.ranking.moderate(fast, action: .remove, reason: "fabricated, confirmed") == "removed")
            #expect(try await harness.board().map(\.id) == [slow])
            await #expect(throws: RankingError.unknownRecord) { try await harness.ranking.boards.record(fast) }

            // Refused: no reason, an impossible transition, an unknown record.
            #expect(
                await serviceErrorCode { _ = try await harness.ranking.moderate(slow, action: .hide, reason: "  ") }
                    == "invalid_reason")
            #expect(
                await serviceErrorCode { _ = try await harness.ranking.moderate(slow, action: .restore, reason: "x") }
                    == "invalid_moderation")
            #expect(
                await serviceErrorCode { _ = try await harness.ranking.moderate("nope", action: .hide, reason: "x") }
                    == "record_not_found")

            let log = try await harness.ranking.audit(after: 0, limit: 0)
            #expect(log.map(\.action) == ["record.hide", "record.restore", "record.baseline", "record.remove"])
            #expect(log.map(\.target) == [fast, fast, other, fast])
            #expect(log[0].reason == "benchmark of a modded card" && log[0].actor == "system")
            #expect(
                log[3].details.contains("\"before\":\"accepted\"") && log[3].details.contains("\"machine_id\":\"me\""))
            #expect(zip(log, log.dropFirst()).allSatisfy { $0.sequence < $1.sequence })
            #expect(
                try await harness.ranking.audit(after: log[1].sequence, limit: 1).map(\.sequence) == [log[2].sequence])
        }
    }

    @Test("a review decision is audited; the log refuses to be changed or emptied", arguments: StorageBackend.available)
    func appendOnly(_ backend: StorageBackend) async throws {
        try await RankingHarness.with(backend) { harness in
            let held = try await harness.run(
                try await harness.start("rig", gpu: "NVIDIA GeForce RTX 9090"), tps: 100)
            #expect(held.state == "held_for_review")
            let review = try #require(
                try await harness.ranking.reviews(cursor: "", limit: 10, includeDecided: false).reviews.first)
            _ = try await harness.ranking.decide(review.reviewID, approve: true, note: "new card, checked by hand")
            let log = try await harness.ranking.audit(after: 0, limit: 10)
            #expect(log.map(\.action) == ["review.approve"] && log[0].reason == "new card, checked by hand")

            for statement in ["UPDATE audit_log SET reason = 'rewritten'", "DELETE FROM audit_log"] {
                await #expect(throws: (any Error).self, "\(statement)") {
                    try await harness.database.transaction(logger: TestEnvironment.logger) { sql in
                        _ = try await sql.execute(statement)
                    }
                }
            }
            #expect(try await harness.ranking.audit(after: 0, limit: 10) == log)
        }
    }
}
