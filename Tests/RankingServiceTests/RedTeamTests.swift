import Foundation
import ServiceKit
import TestSupport
import Testing

@testable import RankingService

/// Fabrication strategies a cheater with one verified device can try, each against the real authority and storage,
/// and honest runs at realistic figures that must all be ranked (docs/VALIDATION.md, "Red team").
@Suite("Red team: fabricated results never reach the board", .timeLimit(.minutes(3)))
struct RedTeamTests {
    /// What a strategy did to the system: the submit's answer, or the error code a call failed with.
    enum Result {
        case judged(SubmissionResult)
        case refused(String)
    }

    struct Strategy: Sendable {
        let name: String
        /// "rejected" or "held_for_review" (with `code` among the reasons), or "refused" (the call failed with
        /// `code`).
        let expected: String
        let code: String
        let attack: @Sendable (RankingHarness) async throws -> Result
    }

    /// A 60 s run reporting `sampleTPS` every 10 s, then a submit of `results` one second later.
    static func run(
        _ harness: RankingHarness, _ session: SessionRecord, results: BenchmarkResults, sampleTPS: Double? = nil,
        sampleLatency: Double = 2, proof: String? = nil, requests: [RequestRecord] = []
    ) async throws -> Result {
        for _ in 0..<6 {
            harness.clock.advance(by: .seconds(10))
            var sample = RankingHarness.sample(tps: sampleTPS ?? results.tps)
            sample.test.latency = sampleLatency
            _ = try await harness.ranking.report(sample, session: session.sessionID, machineID: session.spec.machineID)
        }
        harness.clock.advance(by: .seconds(1))
        return try await submit(harness, session, results: results, proof: proof, requests: requests)
    }

    static func submit(
        _ harness: RankingHarness, _ session: SessionRecord, results: BenchmarkResults, proof: String? = nil,
        requests: [RequestRecord] = []
    ) async throws -> Result {
        do {
            return .judged(
                try await harness.ranking.submit(
                    .init(
                        machineID: session.spec.machineID, sessionID: session.sessionID, idempotencyKey: nil,
                        bodySHA256: UUID().uuidString, results: results, metrics: [],
                        datasetProof: proof ?? RankingHarness.proof(session), requests: requests)))
        } catch let error as RankingError {
            return .refused(error.code)
        }
    }

    static let strategies: [Strategy] = [
        Strategy(name: "an invented GPU", expected: "held_for_review", code: "unknown_gpu") { harness in
            try await run(
                harness, try await harness.start("inventor", gpu: "NVIDIA GeForce RTX 9090 Ti Super"),
                results: RankingHarness.results(tps: 150))
        },
        Strategy(name: "a real GPU with inflated throughput", expected: "rejected", code: "exceeds_physical_bound") {
            harness in
            // 5,000 tokens/s of an 8B Q4 model on one RTX 4090 (four streams reach at most 1,008).
            try await run(harness, try await harness.start("inflator"), results: RankingHarness.results(tps: 5000))
        },
        Strategy(
            name: "a fast single stream with a consistent story", expected: "rejected", code: "exceeds_physical_bound"
        ) {
            harness in
            // 120 requests of 0.2 s each: 1,000 tokens/s per stream, four times what bandwidth allows.
            var results = RankingHarness.results(tps: 200)
            results.totalRequests = 60
            results.successfulRequests = 60
            results.failedRequests = 0
            results.avgLatency = 0.2
            results.p50Latency = 0.2
            results.p95Latency = 0.25
            results.p99Latency = 0.3
            return try await run(
                harness, try await harness.start("streamer"), results: results, sampleLatency: 0.2)
        },
        Strategy(name: "figures copied from another device's record", expected: "rejected", code: "duplicate_result") {
            harness in
            let original = try await run(
                harness, try await harness.start("honest-a"), results: RankingHarness.results(tps: 123))
            guard case .judged(let first) = original, first.state == "accepted" else { return original }
            return try await run(harness, try await harness.start("copier"), results: RankingHarness.results(tps: 123))
        },
        Strategy(
            name: "a forked session: two runs at once on one device", expected: "held_for_review",
            code: "overlapping_runs"
        ) {
            harness in
            let one = try await harness.start("forker")
            let two = try await harness.start("forker")
            for _ in 0..<6 {
                harness.clock.advance(by: .seconds(10))
                for session in [one, two] {
                    _ = try await harness.ranking.report(
                        RankingHarness.sample(tps: 140), session: session.sessionID, machineID: "forker")
                }
            }
            harness.clock.advance(by: .seconds(1))
            _ = try await submit(harness, one, results: RankingHarness.results(tps: 140))
            return try await submit(harness, two, results: RankingHarness.results(tps: 141))
        },
        Strategy(name: "a replayed session with better figures", expected: "refused", code: "already_submitted") {
            harness in
            let session = try await harness.start("replayer")
            _ = try await run(harness, session, results: RankingHarness.results(tps: 100))
            return try await submit(harness, session, results: RankingHarness.results(tps: 180))
        },
        Strategy(name: "skipping the dataset (no proof)", expected: "rejected", code: "dataset_proof_missing") {
            harness in
            try await run(
                harness, try await harness.start("skipper"), results: RankingHarness.results(tps: 152), proof: "")
        },
        Strategy(name: "a guessed dataset proof", expected: "rejected", code: "dataset_proof_invalid") { harness in
            try await run(
                harness, try await harness.start("guesser"), results: RankingHarness.results(tps: 153),
                proof: String(repeating: "0", count: 64))
        },
        Strategy(name: "another session's dataset proof", expected: "rejected", code: "dataset_proof_invalid") {
            harness in
            let old = try await harness.start("reuser")
            let new = try await harness.start("reuser")
            return try await run(
                harness, new, results: RankingHarness.results(tps: 154), proof: RankingHarness.proof(old))
        },
        Strategy(name: "a fast-forwarded clock", expected: "rejected", code: "duration_exceeds_session") { harness in
            // Ten minutes claimed after one minute of session.
            try await run(
                harness, try await harness.start("clockwork"), results: RankingHarness.results(tps: 157, duration: 600))
        },
        Strategy(name: "a consistent but impossible series", expected: "rejected", code: "exceeds_physical_bound") {
            harness in
            // Every report and the result agree on 3,000 tokens/s of a 70B FP16 model on one RTX 4090.
            try await run(
                harness,
                try await harness.start("painter", params: 70, model: "llama-3-70b", quantization: "fp16"),
                results: RankingHarness.results(tps: 3000))
        },
        Strategy(name: "throughput the token count does not support", expected: "rejected", code: "result_inconsistent")
        {
            harness in
            var results = RankingHarness.results(tps: 158)
            results.tps = 400
            return try await run(harness, try await harness.start("inflater"), results: results, sampleTPS: 400)
        },
        Strategy(name: "more throughput than the streams can make", expected: "rejected", code: "result_inconsistent") {
            harness in
            // 4 streams of 10 s requests producing 60 tokens each make 24 tokens/s, not 300.
            var results = RankingHarness.results(tps: 300)
            results.totalRequests = 300
            results.successfulRequests = 300
            results.failedRequests = 0
            results.avgLatency = 10
            results.p50Latency = 10
            results.p95Latency = 11
            results.p99Latency = 12
            return try await run(
                harness, try await harness.start("overbooker"), results: results, sampleLatency: 10)
        },
        Strategy(name: "request records that do not add up", expected: "rejected", code: "requests_inconsistent") {
            harness in
            let records = (0..<50).map { _ in RequestRecord(outputTokens: 100, latency: 2, success: true) }
            return try await run(
                harness, try await harness.start("bookkeeper"), results: RankingHarness.results(tps: 155),
                requests: records)
        },
        Strategy(name: "more concurrency than the session declared", expected: "rejected", code: "value_out_of_range") {
            harness in
            var results = RankingHarness.results(tps: 156)
            results.concurrentCount = 400
            return try await run(harness, try await harness.start("crowd"), results: results)
        },
        Strategy(name: "a cold group just under the bound", expected: "held_for_review", code: "near_physical_bound") {
            harness in
            // 237 tokens/s per stream: 94 % of what an RTX 4090 allows for 8B at Q4, and nobody to compare with.
            try await run(
                harness, try await harness.start("edge-rider", framework: "exllamav2"),
                results: RankingHarness.results(tps: 930))
        },
        Strategy(name: "a model too big for the GPU", expected: "held_for_review", code: "exceeds_gpu_memory") {
            harness in
            try await run(
                harness, try await harness.start("offloader", params: 70, model: "llama-3-70b", quantization: "fp8"),
                results: RankingHarness.results(tps: 20))
        },
        Strategy(name: "an unknown mixture of experts", expected: "held_for_review", code: "bound_unknown") { harness in
            try await run(
                harness, try await harness.start("moe", params: 40, model: "acme-moe-40b"),
                results: RankingHarness.results(tps: 151))
        },
    ]

    /// Honest runs at realistic figures: each must be accepted, none held.
    struct Honest: Sendable {
        let name: String
        let gpu: String
        let model: String
        let params: Double
        let quantization: String
        let tps: Double
    }

    static let honest: [Honest] = [
        Honest(
            name: "run-synthetic's defaults", gpu: "NVIDIA GeForce RTX 4090", model: "synthetic-7b", params: 7,
            quantization: "q4_k_m", tps: 101),
        Honest(
            name: "DeepStressModel's vector (2× RTX 4090, FP16 7B)", gpu: "NVIDIA GeForce RTX 4090 24.0GB *2",
            model: "qwen2.5-7b-instruct", params: 7, quantization: "FP16", tps: 352),
        Honest(
            name: "H100 SXM, 70B at FP8", gpu: "NVIDIA H100 80GB HBM3", model: "llama-3-70b", params: 70,
            quantization: "fp8", tps: 120),
        Honest(
            name: "2× A100 80GB, Mixtral at FP16", gpu: "NVIDIA A100-SXM4-80GB *2", model: "mixtral-8x7b-instruct",
            params: 46.7, quantization: "fp16", tps: 200),
        Honest(
            name: "Apple M2 Ultra, 8B at Q4", gpu: "Apple M2 Ultra", model: "llama3:8b-instruct-q4_K_M",
            params: 8, quantization: "", tps: 60),
        Honest(
            name: "T4, 7B at Q4", gpu: "Tesla T4", model: "mistral-7b-instruct-q4_0", params: 7, quantization: "",
            tps: 80),
        Honest(
            name: "RX 7900 XTX, 13B at Q5", gpu: "AMD Radeon RX 7900 XTX", model: "llama-2-13b", params: 13,
            quantization: "q5_k_m", tps: 90),
        Honest(
            name: "RTX 3090, Qwen3-30B-A3B at Q4", gpu: "NVIDIA GeForce RTX 3090", model: "Qwen3-30B-A3B",
            params: 30.5, quantization: "q4_k_m", tps: 210),
    ]

    @Test(
        "every fabrication strategy is rejected or held with its reason; every honest run is ranked",
        arguments: StorageBackend.available)
    func redTeam(_ backend: StorageBackend) async throws {
        try await RankingHarness.with(backend) { harness in
            var stopped = 0
            for strategy in Self.strategies {
                let result = try await strategy.attack(harness)
                switch result {
                case .judged(let outcome):
                    let codes = outcome.reasons.map(\.code)
                    #expect(outcome.state == strategy.expected, "\(strategy.name): \(outcome.state) \(outcome.reasons)")
                    #expect(codes.contains(strategy.code), "\(strategy.name): \(codes)")
                    if outcome.state == strategy.expected, codes.contains(strategy.code) { stopped += 1 }
                case .refused(let code):
                    #expect(
                        strategy.expected == "refused" && code == strategy.code, "\(strategy.name): refused \(code)")
                    if strategy.expected == "refused", code == strategy.code { stopped += 1 }
                }
            }
            var ranked = 0
            for (index, run) in Self.honest.enumerated() {
                let session = try await harness.start(
                    "honest-\(index)", framework: "honest-\(index)", gpu: run.gpu, params: run.params, model: run.model,
                    quantization: run.quantization)
                let result = try await Self.run(harness, session, results: RankingHarness.results(tps: run.tps))
                guard case .judged(let outcome) = result else {
                    Issue.record("\(run.name): \(result)")
                    continue
                }
                #expect(outcome.state == "accepted", "\(run.name): \(outcome.reasons)")
                if outcome.state == "accepted", outcome.rank > 0 { ranked += 1 }
            }
            #expect(stopped == Self.strategies.count)
            #expect(ranked == Self.honest.count)
            print(
                "red team (\(backend)): \(stopped) of \(Self.strategies.count) fabrication strategies stopped; \(ranked) of \(Self.honest.count) honest runs ranked"
            )
        }
    }
}
