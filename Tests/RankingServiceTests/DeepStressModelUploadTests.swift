import Foundation
import GRPCCore
import LeaderboardAPI
import ServiceKit
import SwiftProtobuf
import TestSupport
import Testing

@testable import RankingService

/// RankingService judging DeepStressModel uploads: the real client's file (Tests/Fixtures/deepstressmodel, made on
/// 2026-11-23, so the clock is set to then), tampered files, replays, and results that contradict themselves or the
/// dataset.
@Suite("DeepStressModel uploads, judged like submits", .timeLimit(.minutes(3)))
struct DeepStressModelUploadTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/deepstressmodel")
    static let apiKey = "test-api-key-0123456789abcdefghijklmnop"
    /// `signature_data.timestamp` of the real upload.
    static let signedAt: Int64 = 1_795_394_408

    static func bytes(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: fixtures.appendingPathComponent(name)))
    }

    /// The real result as an object, to change and seal again.
    static func plainResult() throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(try bytes("result_plain.json"))) as? [String: Any])
    }

    struct Harness {
        let rpc: RankingRPCService
        let ranking: RankingAuthority
        let clock: ManualWallClock
        let database: ServiceDatabase
        let key: DeepStressModelCrypto.ResultKey

        /// Sessions stored (an upload that is refused before judging stores none).
        func sessions() async throws -> Int64 {
            try await database.withExecutor(logger: TestEnvironment.logger) {
                try await $0.first("SELECT COUNT(*) AS n FROM sessions")?.integer("n") ?? -1
            }
        }

        func upload(_ file: [UInt8], apiKey: String = DeepStressModelUploadTests.apiKey) async throws
            -> SubmissionResult
        {
            let outcome = try await DeepStressModelUploadTests.call(rpc, file, apiKey: apiKey)
            let state =
                switch outcome.state {
                case .accepted: "accepted"
                case .rejected: "rejected"
                case .heldForReview: "held_for_review"
                default: "other"
                }
            return SubmissionResult(
                sessionID: outcome.sessionID, state: state,
                recordID: outcome.recordID.isEmpty ? nil : outcome.recordID, score: outcome.score, scoreVersion: 1,
                ruleSetVersion: 2, reasons: outcome.reasons.map { RuleViolation(code: $0.code, detail: $0.detail) },
                rank: Int(outcome.rank), isNewBest: outcome.isNewBest)
        }

        /// `result` sealed as the client seals it, signed now.
        func seal(_ result: [String: Any], nonce: String = SystemRandomSource().bytes(16).hexEncoded) throws
            -> [UInt8]
        {
            try DeepStressModelCrypto.sealResult(
                Array(try JSONSerialization.data(withJSONObject: result)), apiKey: DeepStressModelUploadTests.apiKey,
                publicKeyPEM: key.publicKeyPEM, timestamp: clock.microsecondsSinceEpoch() / 1_000_000, nonce: nonce,
                random: SystemRandomSource())
        }
    }

    /// `SubmitExternalResult` as the gateway calls it, errors as the service throws them.
    static func call(_ rpc: RankingRPCService, _ file: [UInt8], apiKey: String) async throws
        -> Leaderboard_Ranking_V1_SubmissionOutcome
    {
        try await withServerContextRPCCancellationHandle { handle in
            try await rpc.submitExternalResult(
                request: .with {
                    $0.machineID = "dsm-device"
                    $0.source = "deepstressmodel"
                    $0.resultFile = Data(file)
                    $0.apiKey = apiKey
                    $0.metadataJson = "{}"
                },
                context: ServerContext(
                    descriptor: Leaderboard_Ranking_V1_RankingService.Method.SubmitExternalResult.descriptor,
                    remotePeer: "test", localPeer: "test", cancellation: handle))
        }
    }

    /// Version 1.0.0 is the 20 prompts the real run used (as its records carry them), named as its package was.
    static func with(_ body: @Sendable (Harness) async throws -> Void) async throws {
        let records = try #require(try plainResult()["results"] as? [[String: Any]])
        let prompts = Dictionary(
            uniqueKeysWithValues: try records.map { record in
                (
                    Int64(try #require(record["id"] as? Int)),
                    (try #require(record["input"] as? String), Int64(try #require(record["input_chars"] as? Int)))
                )
            })
        let key = try DeepStressModelCrypto.ResultKey(
            pem: String(decoding: try bytes("server_rsa_private.pem"), as: UTF8.self))
        try await withTestDatabase(.sqlite) { database in
            _ = try await MigrationRunner.apply(RankingMigrations.all, to: database, logger: TestEnvironment.logger)
            let clock = ManualWallClock(microsecondsSinceEpoch: (signedAt + 20) * 1_000_000)
            let ranking = RankingAuthority(
                database: database, ranks: InMemoryRankIndex(), events: InProcessEventBus(),
                logger: TestEnvironment.logger, clock: clock, random: SystemRandomSource(), policy: RankingPolicy(),
                device: { _ in DeviceFacts(hardwareHash: "hw", gpuHash: "gpu") },
                dataset: { requested in
                    guard requested == "1.0.0" else {
                        throw RankingError(code: "unknown_dataset_version", detail: "", status: .notFound)
                    }
                    return DatasetFacts(
                        version: "1.0.0", active: true, checksum: String(repeating: "ab", count: 32),
                        minimumDurationSeconds: 0)
                },
                challenge: { _ in OutsideWorld.challenge() },
                checkPrompts: { _, claims in
                    var check = PromptCheck(
                        datasetName: "DSM-Benchmark-Mini-20", items: prompts.count, unknownIDs: [], unknownCount: 0,
                        mismatchedIDs: [], mismatchedCount: 0)
                    for claim in claims {
                        guard let known = prompts[claim.id] else {
                            check.unknownIDs.append(claim.id)
                            check.unknownCount += 1
                            continue
                        }
                        if known != (claim.input, claim.inputChars) {
                            check.mismatchedIDs.append(claim.id)
                            check.mismatchedCount += 1
                        }
                    }
                    return check
                })
            try await body(
                Harness(
                    rpc: RankingRPCService(ranking: ranking, events: InProcessEventBus(), resultKey: key),
                    ranking: ranking, clock: clock, database: database, key: key))
        }
    }

    @Test("the real client's upload is judged, ranked #1 and mapped field by field")
    func realUpload() async throws {
        try await Self.with { harness in
            let outcome = try await harness.upload(try Self.bytes("result_upload.dat"))
            #expect(outcome.state == "accepted" && outcome.rank == 1, "\(outcome.reasons)")
            let placed = try await harness.ranking.boards.record(try #require(outcome.recordID))
            let record = placed.record
            #expect(record.framework == "vllm" && record.modelName == "qwen2.5-7b-instruct" && record.modelParams == 7)
            #expect(record.gpu.name == "NVIDIA GeForce RTX 4090" && record.gpu.count == 2 && record.gpu.memoryGB == 24)
            #expect(record.gpuModel == "nvidia-rtx-4090" && record.quantization == "fp16")
            #expect(record.displayName == "测试机-4090" && record.datasetVersion == "1.0.0")
            // Generated tokens over total_time (the client's own tps is requests per second), from the records.
            #expect(record.results.totalTokens == 1326 && record.results.totalRequests == 20)
            #expect(abs(record.results.tps - 1326 / 3.7604401111602783) < 1e-9)
            #expect(abs(record.results.avgLatency - 2.084822106361389) < 1e-9)
            // The client starts every request at once: twenty ran together, whatever "concurrency" it copied.
            #expect(record.results.concurrentCount == 20 && record.concurrentCount == 20)
            #expect(placed.rank == 1)
        }
    }

    @Test("a result file's nonce is used once: the same file, or another with its nonce, is refused")
    func replay() async throws {
        try await Self.with { harness in
            _ = try await harness.upload(try Self.bytes("result_upload.dat"))
            await #expect(throws: RankingError.resultReplayed) {
                try await harness.upload(try Self.bytes("result_upload.dat"))
            }
            let sameNonce = try harness.seal(try Self.plainResult(), nonce: "cf062e542a9aa29d727c8d7ca824f315")
            await #expect(throws: RankingError.resultReplayed) { try await harness.upload(sameNonce) }
            #expect(try await harness.sessions() == 1)
        }
    }

    @Test("a file signed outside the window is refused and nothing stored")
    func freshness() async throws {
        try await Self.with { harness in
            harness.clock.advance(by: .seconds(1800))
            await #expect(throws: RankingError.self) { try await harness.upload(try Self.bytes("result_upload.dat")) }
            let future = ManualWallClock(microsecondsSinceEpoch: (Self.signedAt - 301) * 1_000_000)
            let early = RankingRPCService(
                ranking: RankingAuthority(
                    database: harness.database, ranks: InMemoryRankIndex(), events: InProcessEventBus(),
                    logger: TestEnvironment.logger, clock: future, random: SystemRandomSource(),
                    policy: RankingPolicy(), device: harness.ranking.device, dataset: harness.ranking.dataset,
                    challenge: harness.ranking.challenge), events: InProcessEventBus(), resultKey: harness.key)
            do {
                _ = try await Self.call(early, try Self.bytes("result_upload.dat"), apiKey: Self.apiKey)
                Issue.record("a file signed after the server's time was accepted")
            } catch let error as RankingError {
                #expect(error.code == "result_expired" && error.status == .failedPrecondition)
            }
            #expect(try await harness.sessions() == 0)
        }
    }

    @Test("a tampered file is refused with its reason and its status, and nothing is stored")
    func tampered() async throws {
        try await Self.with { harness in
            let original = try #require(
                try JSONSerialization.jsonObject(with: Data(try Self.bytes("result_upload.dat"))) as? [String: Any])
            func changed(_ change: (inout [String: Any]) -> Void) throws -> [UInt8] {
                var file = original
                change(&file)
                return Array(try JSONSerialization.data(withJSONObject: file))
            }
            func flip(_ text: String) -> String {
                var characters = Array(text)
                characters[10] = characters[10] == "A" ? "B" : "A"
                return String(characters)
            }
            let otherKey = try DeepStressModelCrypto.ResultKey.generate()
            let cases: [(String, [UInt8], String, String, RPCError.Code)] = [
                (
                    "another API key", try Self.bytes("result_upload.dat"), "dsm_another-key-0123456789abcdef",
                    "api_key_mismatch", .permissionDenied
                ),
                (
                    "another server's key",
                    try DeepStressModelCrypto.sealResult(
                        try Self.bytes("result_plain.json"), apiKey: Self.apiKey, publicKeyPEM: otherKey.publicKeyPEM,
                        timestamp: Self.signedAt, nonce: "00112233445566778899aabbccddeeff",
                        random: SystemRandomSource()), Self.apiKey, "wrong_result_key", .invalidArgument
                ),
                (
                    "the signature",
                    try changed { $0["signature"] = flip(try! #require($0["signature"] as? String)) }, Self.apiKey,
                    "signature_mismatch", .invalidArgument
                ),
                (
                    "the nonce",
                    try changed {
                        var signed = $0["signature_data"] as! [String: Any]
                        signed["nonce"] = "ffffffffffffffffffffffffffffffff"
                        $0["signature_data"] = signed
                    }, Self.apiKey, "signature_mismatch", .invalidArgument
                ),
                (
                    "the timestamp",
                    try changed {
                        var signed = $0["signature_data"] as! [String: Any]
                        signed["timestamp"] = Self.signedAt + 1
                        $0["signature_data"] = signed
                    }, Self.apiKey, "signature_mismatch", .invalidArgument
                ),
                (
                    "the log hash",
                    try changed {
                        var signed = $0["signature_data"] as! [String: Any]
                        signed["log_hash"] = flip(signed["log_hash"] as! String)
                        $0["signature_data"] = signed
                    }, Self.apiKey, "log_hash_mismatch", .invalidArgument
                ),
                (
                    "the format", try changed { $0["format_version"] = "2.0" }, Self.apiKey, "invalid_result_file",
                    .invalidArgument
                ),
                ("not JSON", Array("[[[[".utf8), Self.apiKey, "invalid_result_file", .invalidArgument),
            ]
            for (name, file, apiKey, code, status) in cases {
                do {
                    _ = try await harness.upload(file, apiKey: apiKey)
                    Issue.record("\(name): accepted")
                } catch let error as RankingError {
                    #expect(error.code == code && error.status == status, "\(name): \(error)")
                }
            }
            #expect(try await harness.sessions() == 0)
        }
    }

    @Test("a result that contradicts its records or the dataset is rejected with every reason, and kept as rejected")
    func contradictions() async throws {
        try await Self.with { harness in
            var summary = try Self.plainResult()
            summary["total_tests"] = 40
            summary["avg_latency"] = 0.5
            var prompts = try Self.plainResult()
            var records = try #require(prompts["results"] as? [[String: Any]])
            records[0]["input"] = "a prompt of my own choosing"
            records[1]["id"] = 999
            prompts["results"] = records
            var partial = try Self.plainResult()
            var kept = try #require(partial["results"] as? [[String: Any]])
            kept.removeLast()
            partial["results"] = kept
            partial["total_tests"] = 19
            partial["successful_tests"] = 19
            for (result, expected) in [
                (summary, ["result_inconsistent"]),
                (prompts, ["dataset_prompts_mismatch", "dataset_prompts_mismatch", "dataset_incomplete"]),
            ] {
                let outcome = try await harness.upload(try harness.seal(result))
                #expect(outcome.state == "rejected" && outcome.reasons.map(\.code) == expected, "\(outcome.reasons)")
            }
            let outcome = try await harness.upload(try harness.seal(partial))
            #expect(
                outcome.state == "rejected" && outcome.reasons.map(\.code).contains("dataset_incomplete"),
                "\(outcome.reasons)")
            #expect(try await harness.sessions() == 3)
            #expect(
                try await harness.ranking.boards.list(RecordFilter(datasetVersion: "1.0.0"), cursor: "", limit: 10)
                    .records
                    .isEmpty)

            // Without the model's size a record cannot be made: refused, nothing stored.
            var nameless = try Self.plainResult()
            nameless["model_info"] = nil
            nameless["model"] = "my-model"
            await #expect(throws: RankingError.self) { try await harness.upload(try harness.seal(nameless)) }
            #expect(try await harness.sessions() == 3)
        }
    }

    @Test(
        "the client's GPU text, framework names and model sizes map to ours",
        arguments: [
            ("NVIDIA GeForce RTX 4090 24.0GB *2", "NVIDIA GeForce RTX 4090", 2, 24.0),
            ("NVIDIA A100-SXM4-80GB 80.0GB *8", "NVIDIA A100-SXM4-80GB", 8, 80.0),
            ("", "unknown", 1, 0.0),
            (
                "NVIDIA GeForce RTX 4090 24.0GB *1 , NVIDIA GeForce RTX 3090 24.0GB *1",
                "NVIDIA GeForce RTX 4090 24.0GB *1 , NVIDIA GeForce RTX 3090 24.0GB *1", 2, 0.0
            ),
        ])
    func mapping(text: String, name: String, count: Int, memory: Double) {
        let gpu = DeepStressModelResult.gpu(text)
        #expect(gpu.name == name && gpu.count == count && gpu.memoryGB == memory)
        #expect(DeepStressModelResult.frameworkName("vLLM") == "vllm")
        #expect(DeepStressModelResult.frameworkName("LM Studio") == "lm-studio")
        #expect(DeepStressModelResult.frameworkName("llama.cpp") == "llama.cpp")
        #expect(DeepStressModelResult.parameters(inName: "Qwen2.5-0.5B-Instruct") == 0.5)
        #expect(DeepStressModelResult.parameters(inName: "qwen2.5-7b-instruct") == 7)
        #expect(DeepStressModelResult.parameters(inName: "my-model") == nil)
    }
}
