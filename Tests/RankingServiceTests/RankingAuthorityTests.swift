import Crypto
import Foundation
import GRPCCore
import ServiceKit
import Synchronization
import TestSupport
import Testing

@testable import RankingService

/// The world outside RankingService as the authority sees it (AuthService's device, DatasetService's version),
/// changeable by a test.
final class OutsideWorld: Sendable {
    struct State {
        var gpuHash = "gpu-a"
        var datasetActive = true
    }

    let state = Mutex(State())  // read by the authority, changed by the test
    static let checksum = String(repeating: "ab", count: 32)
    /// The dataset's plaintext, from which challenges are answered.
    static let plaintext = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }

    /// A challenge as DatasetService makes one: two spans, a fresh nonce.
    static func challenge() -> SessionChallenge {
        let nonce = SystemRandomSource().bytes(32)
        let spans: [[Int64]] = [[Int64.random(in: 0..<2000), 64], [Int64.random(in: 2000..<4000), 64]]
        return SessionChallenge(nonce: nonce, spans: spans, answer: answer(nonce: nonce, spans: spans))
    }

    /// What a device holding the plaintext answers.
    static func answer(nonce: [UInt8], spans: [[Int64]]) -> String {
        var mac = HMAC<SHA256>(key: SymmetricKey(data: nonce))
        for span in spans { mac.update(data: plaintext[Int(span[0])..<Int(span[0] + span[1])]) }
        return Array(mac.finalize()).hexEncoded
    }
}

/// A RankingAuthority on a real database (SQLite, or PostgreSQL with a Redis rank index), with a manual clock.
struct RankingHarness {
    let ranking: RankingAuthority
    let clock: ManualWallClock
    let world: OutsideWorld
    let database: ServiceDatabase
    let version: String

    static func with(
        _ backend: StorageBackend, policy: RankingPolicy = RankingPolicy(),
        _ body: @Sendable (RankingHarness) async throws -> Void
    ) async throws {
        try await withTestDatabase(backend) { database in
            _ = try await MigrationRunner.apply(RankingMigrations.all, to: database, logger: TestEnvironment.logger)
            let redis = backend == .postgres ? try TestEnvironment.redisClient() : nil
            let ranks: any RankIndex =
                redis.map { RedisRankIndex(client: $0, prefix: TestEnvironment.uniquePrefix("ranking")) }
                ?? InMemoryRankIndex()
            let clock = ManualWallClock(microsecondsSinceEpoch: 1_800_000_000_000_000)
            let world = OutsideWorld()
            let version = "v1"
            let ranking = RankingAuthority(
                database: database, ranks: ranks, events: InProcessEventBus(), logger: TestEnvironment.logger,
                clock: clock, random: SystemRandomSource(), policy: policy,
                device: { _ in DeviceFacts(hardwareHash: "hw", gpuHash: world.state.withLock { $0.gpuHash }) },
                dataset: { requested in
                    guard requested == nil || requested == version else {
                        throw RankingError(code: "unknown_dataset_version", detail: "", status: .notFound)
                    }
                    return DatasetFacts(
                        version: version, active: world.state.withLock { $0.datasetActive },
                        checksum: OutsideWorld.checksum, minimumDurationSeconds: 60)
                },
                challenge: { _ in OutsideWorld.challenge() })
            try await body(
                RankingHarness(ranking: ranking, clock: clock, world: world, database: database, version: version))
            await redis?.close()
        }
    }

    func start(
        _ machine: String, framework: String = "vllm", gpu: String = "NVIDIA GeForce RTX 4090", params: Double = 8,
        model: String = "llama-3-8b", quantization: String = "q4_k_m", frameworkConfig: String = ""
    ) async throws -> SessionRecord {
        try await ranking.start(
            SessionSpec(
                machineID: machine, datasetVersion: version, datasetChecksum: OutsideWorld.checksum.uppercased(),
                framework: framework, modelName: model, modelParams: params, frameworkConfigJSON: frameworkConfig,
                gpu: GPUConfig(name: gpu, count: 1), concurrentCount: 4, displayName: "rig \(machine)",
                quantization: quantization))
    }

    static func sample(tps: Double) -> MetricSample {
        MetricSample(
            at: 0,
            system: SystemSample(cpuUsage: 40, memoryUsage: 60, gpuUsage: 95, gpuMemoryUsage: 80, powerWatts: 300),
            test: TestSample(tps: tps, latency: 2, concurrentCount: 4))
    }

    /// A run of four streams making ~2 s requests: 120 requests in 60 s, `tps` × duration tokens.
    static func results(tps: Double, duration: Double = 60) -> BenchmarkResults {
        BenchmarkResults(
            tps: tps, avgLatency: 2, p50Latency: 1.9, p95Latency: 2.6, p99Latency: 3, concurrentCount: 4,
            totalRequests: 120, successfulRequests: 118, failedRequests: 2,
            totalTokens: Int64((tps * duration).rounded()), duration: duration)
    }

    /// The right answer to a session's dataset challenge.
    static func proof(_ session: SessionRecord) -> String {
        session.challenge.map { OutsideWorld.answer(nonce: $0.nonce, spans: $0.spans) } ?? ""
    }

    /// A 60 s run reporting every 10 s, then a submit one second later.
    func run(
        _ session: SessionRecord, tps: Double, key: String? = nil,
        adjust: (inout BenchmarkResults) -> Void = { _ in }
    ) async throws -> SubmissionResult {
        for _ in 0..<6 {
            clock.advance(by: .seconds(10))
            _ = try await ranking.report(
                Self.sample(tps: tps), session: session.sessionID, machineID: session.spec.machineID)
        }
        clock.advance(by: .seconds(1))
        return try await submit(session, tps: tps, key: key, adjust: adjust)
    }

    func submit(
        _ session: SessionRecord, tps: Double, key: String? = nil, body: String = "body",
        adjust: (inout BenchmarkResults) -> Void = { _ in }
    ) async throws -> SubmissionResult {
        var results = Self.results(tps: tps)
        adjust(&results)
        return try await ranking.submit(
            .init(
                machineID: session.spec.machineID, sessionID: session.sessionID, idempotencyKey: key,
                bodySHA256: body, results: results, metrics: [], datasetProof: Self.proof(session)))
    }

    /// An unranked copy of a record under another id and session (for promotions made by hand), as `adjust` changes it.
    static func copy(
        of record: BenchmarkRecord, id: String, session: String, adjust: (inout BenchmarkRecord) -> Void = { _ in }
    ) -> BenchmarkRecord {
        var copy = record
        copy.recordID = id
        copy.sessionID = session
        copy.ranked = false
        adjust(&copy)
        return copy
    }

    func board() async throws -> [(id: String, rank: Int)] {
        try await ranking.boards.list(RecordFilter(datasetVersion: ""), cursor: "", limit: 200).records.map {
            ($0.record.recordID, $0.rank)
        }
    }
}

@Suite("RankingAuthority on real storage", .timeLimit(.minutes(2)))
struct RankingAuthorityTests {
    @Test(
        "sessions land on the boards with the right ranks, percentiles and ordered events",
        arguments: StorageBackend.available)
    func fullSessions(_ backend: StorageBackend) async throws {
        try await RankingHarness.with(backend) { harness in
            let bus = try await harness.ranking.events.subscribe(to: BoardEngine.eventChannel)
            var ids: [String: String] = [:]
            for (machine, tps) in [("a", 100.0), ("b", 200.0), ("c", 150.0)] {
                let session = try await harness.start(machine, framework: machine == "c" ? "sglang" : "vllm")
                let result = try await harness.run(session, tps: tps)
                #expect(result.state == "accepted", "\(result.reasons)")
                #expect(result.isNewBest)
                ids[machine] = try #require(result.recordID)
            }
            let board = try await harness.board()
            #expect(board.map(\.id) == [ids["b"], ids["c"], ids["a"]])
            #expect(board.map(\.rank) == [1, 2, 3])
            let a = try await harness.ranking.boards.record(ids["a"]!)
            #expect(a.rank == 3 && a.frameworkRank == 2)
            #expect(a.percentile == 33.33)
            let b = try await harness.ranking.boards.record(ids["b"]!)
            #expect(b.percentile == 100 && b.record.score.total > a.record.score.total)

            let vllm = try await harness.ranking.boards.list(
                RecordFilter(datasetVersion: "v1", framework: "VLLM"), cursor: "", limit: 10)
            #expect(vllm.records.map(\.record.recordID) == [ids["b"], ids["a"]] && vllm.total == 2)

            // Paging with a cursor walks the same order.
            let first = try await harness.ranking.boards.list(RecordFilter(datasetVersion: ""), cursor: "", limit: 2)
            let second = try await harness.ranking.boards.list(
                RecordFilter(datasetVersion: ""), cursor: first.next, limit: 2)
            #expect((first.records + second.records).map(\.record.recordID) == board.map(\.id))
            #expect(second.next.isEmpty)

            // The global board announced: a accepted at 1; b at 1 (a moved to 2); c at 2 (a moved to 3).
            let events = try await harness.ranking.boards.events(of: Board.global("v1"), after: 0)
            #expect(events.map(\.sequence) == Array(1...UInt64(events.count)))
            #expect(
                events.map(\.kind) == [
                    .accepted(recordID: ids["a"]!, rank: 1),
                    .accepted(recordID: ids["b"]!, rank: 1), .rankChanged(recordID: ids["a"]!, oldRank: 1, newRank: 2),
                    .accepted(recordID: ids["c"]!, rank: 2), .rankChanged(recordID: ids["a"]!, oldRank: 2, newRank: 3),
                ])

            // The same events went out on the event bus once committed (with the two framework boards' own).
            var published: [BoardEvent] = []
            for await payload in bus {
                published.append(try JSONDecoder().decode(BoardEvent.self, from: Data(payload)))
                if published.count == 9 { break }
            }
            #expect(published.filter { $0.board == Board.global("v1") } == events)

            let stats = try await harness.ranking.boards.stats(version: "")
            #expect(stats.records == 3 && stats.devices == 3 && stats.submissionsToday == 3)
            #expect(stats.byFramework.map(\.key) == ["vllm", "sglang"])
        }
    }

    @Test("equal scores: the earlier submission ranks higher", arguments: StorageBackend.available)
    func ties(_ backend: StorageBackend) async throws {
        try await RankingHarness.with(backend) { harness in
            let first = try await harness.start("early")
            let second = try await harness.start("late")
            let early = try await harness.run(first, tps: 120)
            // The same score from figures that differ where the score does not look (one more token).
            let late = try await harness.run(second, tps: 120) { $0.totalTokens += 1 }
            #expect(early.score == late.score)
            #expect(try await harness.board().map(\.id) == [early.recordID, late.recordID])
        }
    }

    @Test(
        "a better result replaces the device's record; a worse one is kept but not ranked",
        arguments: StorageBackend.available)
    func bestRecord(_ backend: StorageBackend) async throws {
        try await RankingHarness.with(backend) { harness in
            _ = try await harness.run(try await harness.start("other"), tps: 150)
            let slow = try await harness.run(try await harness.start("me"), tps: 100)
            #expect(slow.rank == 2)
            let fast = try await harness.run(try await harness.start("me"), tps: 200)
            #expect(fast.isNewBest && fast.rank == 1)
            let worse = try await harness.run(try await harness.start("me"), tps: 50)
            #expect(worse.state == "accepted" && !worse.isNewBest && worse.rank == 0)
            let board = try await harness.board()
            #expect(board.count == 2 && board[0].id == fast.recordID)
            let history = try await harness.ranking.boards.record(try #require(worse.recordID))
            #expect(history.rank == 0 && !history.record.ranked)

            // Unpublishing the best ranks the owner's next best; deleting it leaves the last one.
            _ = try await harness.ranking.unpublish(try #require(fast.recordID), machineID: "me")
            #expect(try await harness.board().map(\.id) == [board[1].id, slow.recordID])
            await #expect(throws: RankingError.unknownRecord) {
                try await harness.ranking.boards.record(fast.recordID!)
            }
            await #expect(throws: RankingError.notOwner) {
                try await harness.ranking.delete(try #require(slow.recordID), machineID: "other")
            }
            try await harness.ranking.delete(try #require(slow.recordID), machineID: "me")
            #expect(try await harness.board().map(\.id) == [board[1].id, worse.recordID])
        }
    }

    @Test("a rejection lists every failed rule and ranks nothing", arguments: StorageBackend.available)
    func rejection(_ backend: StorageBackend) async throws {
        try await RankingHarness.with(backend) { harness in
            let session = try await harness.start("cheat")
            harness.clock.advance(by: .seconds(5))
            _ = try await harness.ranking.report(
                RankingHarness.sample(tps: 100), session: session.sessionID, machineID: "cheat")
            harness.world.state.withLock {
                $0.gpuHash = "another-gpu"
                $0.datasetActive = false
            }
            let result = try await harness.ranking.submit(
                .init(
                    machineID: "cheat", sessionID: session.sessionID, idempotencyKey: nil, bodySHA256: "x",
                    results: RankingHarness.results(tps: 900, duration: 30), metrics: []))
            #expect(result.state == "rejected" && result.recordID == nil)
            let codes = Set(result.reasons.map(\.code))
            #expect(
                codes == [
                    "duration_too_short", "duration_exceeds_session", "metrics_missing", "result_inconsistent",
                    "gpu_mismatch", "dataset_inactive", "dataset_proof_missing",
                ])
            #expect(try await harness.board().isEmpty)
            let stored = try await harness.ranking.session(session.sessionID, machineID: "cheat")
            #expect(stored.state == .rejected)
            #expect(try await countRows("records", in: harness.database) == 0)
        }
    }

    @Test("an implausible result waits for an operator, who can approve it once", arguments: StorageBackend.available)
    func review(_ backend: StorageBackend) async throws {
        try await RankingHarness.with(backend) { harness in
            for (index, tps) in [95.0, 98, 100, 102, 105].enumerated() {
                _ = try await harness.run(try await harness.start("peer\(index)", gpu: "rtx  4090"), tps: tps)
            }
            let held = try await harness.run(try await harness.start("outlier"), tps: 800)
            #expect(held.state == "held_for_review")
            #expect(held.reasons.map(\.code) == ["implausible_result"])
            #expect(try await harness.board().count == 5)
            await #expect(throws: RankingError.unknownRecord) {
                try await harness.ranking.boards.record(held.recordID!)
            }

            let queue = try await harness.ranking.reviews(cursor: "", limit: 10, includeDecided: false)
            let review = try #require(queue.reviews.first)
            #expect(queue.reviews.count == 1 && review.recordID == held.recordID)
            _ = try await harness.ranking.decide(review.reviewID, approve: true, note: "verified by hand")
            #expect(try await harness.board().first?.id == held.recordID)
            await #expect(throws: RankingError.reviewDecided) {
                try await harness.ranking.decide(review.reviewID, approve: false, note: "")
            }
            #expect(try await harness.ranking.reviews(cursor: "", limit: 10, includeDecided: false).reviews.isEmpty)
            let session = try await harness.ranking.session(held.sessionID, machineID: "outlier")
            #expect(session.state == .accepted)
        }
    }

    @Test(
        "concurrent retries with one idempotency key get one answer and make one record",
        arguments: StorageBackend.available)
    func idempotency(_ backend: StorageBackend) async throws {
        try await RankingHarness.with(backend) { harness in
            let session = try await harness.start("retry")
            for _ in 0..<6 {
                harness.clock.advance(by: .seconds(10))
                _ = try await harness.ranking.report(
                    RankingHarness.sample(tps: 100), session: session.sessionID, machineID: "retry")
            }
            let results = try await withThrowingTaskGroup(of: SubmissionResult.self) { group in
                for _ in 0..<8 { group.addTask { try await harness.submit(session, tps: 100, key: "key-1") } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(results.count { !$0.replayed } == 1)
            let answers = Set(results.map { [$0.state, $0.recordID ?? "", "\($0.score ?? 0)", "\($0.rank)"] })
            #expect(answers.count == 1 && results[0].state == "accepted")
            #expect(try await countRows("records", in: harness.database) == 1)
            await #expect(throws: RankingError.idempotencyKeyReused) {
                try await harness.submit(session, tps: 100, key: "key-1", body: "another body")
            }
            await #expect(throws: RankingError.alreadySubmitted) {
                try await harness.submit(session, tps: 100, key: "key-2")
            }
            await #expect(throws: RankingError.alreadySubmitted) { try await harness.submit(session, tps: 100) }
        }
    }

    @Test("metric reports: bounded, checked, only for the owner's running session", arguments: StorageBackend.available)
    func metrics(_ backend: StorageBackend) async throws {
        var policy = RankingPolicy()
        policy.session.maximumSamples = 3
        try await RankingHarness.with(backend, policy: policy) { harness in
            let session = try await harness.start("m")
            let report = { (machine: String, sample: MetricSample) in
                try await harness.ranking.report(sample, session: session.sessionID, machineID: machine)
            }
            for expected in 1...3 { #expect(try await report("m", RankingHarness.sample(tps: 10)) == expected) }
            #expect(
                await serviceErrorCode { _ = try await report("m", RankingHarness.sample(tps: 10)) }
                    == "too_many_metrics")
            #expect(
                await serviceErrorCode { _ = try await report("intruder", RankingHarness.sample(tps: 10)) }
                    == "unknown_session")
            var bad = RankingHarness.sample(tps: 10)
            bad.system.gpuUsage = .nan
            #expect(await serviceErrorCode { _ = try await report("m", bad) } == "invalid_metric")

            _ = try await harness.submit(session, tps: 10)
            #expect(
                await serviceErrorCode { _ = try await report("m", RankingHarness.sample(tps: 10)) }
                    == "session_not_running")

            let late = try await harness.start("m")
            harness.clock.advance(by: .seconds(7 * 3600))
            #expect(
                await serviceErrorCode {
                    _ = try await harness.ranking.report(
                        RankingHarness.sample(tps: 10), session: late.sessionID, machineID: "m")
                } == "session_expired")
            #expect(await serviceErrorCode { _ = try await harness.submit(late, tps: 10) } == "session_expired")
            #expect(try await harness.ranking.session(late.sessionID, machineID: "m").state == .expired)
        }
    }

    @Test("bad session starts are refused with the reason", arguments: StorageBackend.available)
    func badStarts(_ backend: StorageBackend) async throws {
        try await RankingHarness.with(backend) { harness in
            let good = SessionSpec(
                machineID: "s", datasetVersion: "v1", datasetChecksum: OutsideWorld.checksum, framework: "vllm",
                modelName: "m", modelParams: 7, frameworkConfigJSON: "", gpu: GPUConfig(name: "g"), concurrentCount: 1,
                displayName: "")
            var wrongChecksum = good
            wrongChecksum.datasetChecksum = String(repeating: "cd", count: 32)
            var badFramework = good
            badFramework.framework = "v llm<script>"
            badFramework.modelParams = .infinity
            var unknownVersion = good
            unknownVersion.datasetVersion = "v9"
            #expect(
                await serviceErrorCode { _ = try await harness.ranking.start(wrongChecksum) }
                    == "dataset_checksum_mismatch")
            #expect(await serviceErrorCode { _ = try await harness.ranking.start(badFramework) } == "invalid_session")
            #expect(
                await serviceErrorCode { _ = try await harness.ranking.start(unknownVersion) }
                    == "unknown_dataset_version")
            for _ in 0..<5 { _ = try await harness.ranking.start(good) }
            #expect(await serviceErrorCode { _ = try await harness.ranking.start(good) } == "too_many_sessions")
            harness.world.state.withLock { $0.datasetActive = false }
            #expect(await serviceErrorCode { _ = try await harness.ranking.start(good) } == "dataset_inactive")
            #expect(try await countRows("sessions", in: harness.database) == 5)
        }
    }

    @Test("the rank index is rebuilt from the database at start and on demand", arguments: StorageBackend.available)
    func rebuild(_ backend: StorageBackend) async throws {
        try await RankingHarness.with(backend) { harness in
            for (machine, tps) in [("x", 100.0), ("y", 300.0), ("z", 200.0)] {
                _ = try await harness.run(try await harness.start(machine, framework: "llama.cpp"), tps: tps)
            }
            let before = try await harness.board()
            try await harness.ranking.ranks.removeBoard(Board.global("v1"))
            try await harness.ranking.ranks.remove(before[0].id, from: Board.framework("v1", "llama.cpp"))
            try await harness.ranking.engine.warm()
            #expect(try await harness.ranking.ranks.count(in: Board.framework("v1", "llama.cpp")) == 3)
            #expect(try await harness.ranking.boards.record(before[2].id).rank == 3)
            #expect(try await harness.ranking.engine.rebuild(version: nil) == 3)
            #expect(try await harness.board().map(\.rank) == [1, 2, 3])
        }
    }

    @Test(
        "an index that comes back empty (a restarted Redis) refuses rank reads, is noticed and refilled from the database",
        arguments: StorageBackend.available)
    func emptiedIndex(_ backend: StorageBackend) async throws {
        try await RankingHarness.with(backend) { harness in
            let ranks = harness.ranking.ranks
            // A fresh system: nothing to rebuild, and the index is marked filled once.
            #expect(try await harness.ranking.engine.ensureIndexed() == false)
            for (machine, tps) in [("x", 100.0), ("y", 300.0), ("z", 200.0)] {
                _ = try await harness.run(try await harness.start(machine, framework: "vllm"), tps: tps)
            }
            let before = try await harness.board()
            #expect(try await harness.ranking.engine.ensureIndexed() == false)

            // What a Redis restarted without persistence holds: nothing, the sentinel included.
            for board in [Board.global("v1"), Board.framework("v1", "vllm"), Board.sentinel] {
                try await ranks.removeBoard(board)
            }
            #expect(try await ranks.count(in: Board.global("v1")) == 0)
            // Until it is refilled, reads that would show those records' ranks refuse (503) instead of saying 0.
            await #expect(throws: RankingError.rankIndexRebuilding) {
                try await harness.ranking.boards.record(before[0].id)
            }
            await #expect(throws: RankingError.rankIndexRebuilding) { try await harness.board() }
            #expect(try await harness.ranking.engine.ensureIndexed() == true)
            #expect(try await harness.board().map(\.id) == before.map(\.id))
            #expect(try await ranks.count(in: Board.framework("v1", "vllm")) == 3)
            #expect(try await harness.ranking.boards.record(before[2].id).rank == 3)
            #expect(try await harness.ranking.engine.ensureIndexed() == false)
        }
    }

    @Test(
        "a transaction that fails after moving a board leaves the index and the events as they were",
        arguments: StorageBackend.available)
    func undo(_ backend: StorageBackend) async throws {
        try await RankingHarness.with(backend) { harness in
            let first = try await harness.run(try await harness.start("owner"), tps: 100)
            let candidate = RankingHarness.copy(
                of: try await harness.ranking.boards.record(try #require(first.recordID)).record,
                id: String(repeating: "f", count: 32), session: "another-session"
            ) { $0.score.total = 99 }
            let ranking = harness.ranking
            await #expect(throws: RankingError.unknownSession) {
                try await ranking.engine.changing { sql in
                    try await RankingRepository(sql).insert(candidate)
                    let placed = try await ranking.engine.promote(
                        [candidate], sql: sql, now: harness.clock.microsecondsSinceEpoch())[candidate.recordID]
                    #expect(placed == BoardEngine.Promotion(rank: 1, isNewBest: true))
                    throw RankingError.unknownSession
                }
            }
            #expect(try await harness.board().map(\.id) == [first.recordID])
            for board in [Board.global("v1"), Board.framework("v1", "vllm")] {
                #expect(try await ranking.ranks.count(in: board) == 1)
                #expect(try await ranking.ranks.rank(of: try #require(first.recordID), in: board) == 0)
                #expect(try await ranking.boards.events(of: board, after: 0).count == 1)
            }
        }
    }

    @Test(
        "one board writer batch ranks records in order: an owner's later, better record replaces its earlier one",
        arguments: StorageBackend.available)
    func batch(_ backend: StorageBackend) async throws {
        try await RankingHarness.with(backend) { harness in
            let first = try await harness.run(try await harness.start("seed"), tps: 100)
            let template = try await harness.ranking.boards.record(try #require(first.recordID)).record
            let now = harness.clock.microsecondsSinceEpoch()
            // Stored and queued as submits leave them, without their writer having run: a1 (below the seed), then
            // a2 (the same owner's, above the seed), a3 (the same owner's, below a2), b1 (another owner, last).
            let seedScore = template.score.total
            let planned: [(id: String, machine: String, score: Double)] = [
                ("a1", "owner-a", seedScore - 1), ("a2", "owner-a", seedScore + 10), ("a3", "owner-a", seedScore + 5),
                ("b1", "owner-b", seedScore - 2),
            ]
            let records = planned.map { plan in
                RankingHarness.copy(
                    of: template, id: String(repeating: plan.id, count: 16), session: "session-\(plan.id)"
                ) {
                    $0.machineID = plan.machine
                    $0.score.total = plan.score
                }
            }
            try await harness.database.transaction(logger: TestEnvironment.logger) { sql in
                let repository = RankingRepository(sql)
                for (offset, record) in records.enumerated() {
                    try await repository.insert(record)
                    let answer = SubmissionResult(
                        sessionID: record.sessionID, state: "accepted", recordID: record.recordID,
                        score: record.score.total, scoreVersion: 1, ruleSetVersion: 2, reasons: [], rank: 0,
                        isNewBest: false, rankPending: true)
                    try await repository.enqueue(
                        .init(
                            recordID: record.recordID, sessionID: record.sessionID,
                            outcome: try RankingRepository.json(answer), enqueuedAt: now + Int64(offset)),
                        version: record.datasetVersion)
                }
            }
            let promoted = try await harness.ranking.engine.promotePending(version: "v1")
            let id = { (name: String) in String(repeating: name, count: 16) }
            #expect(promoted[id("a1")] == BoardEngine.Promotion(rank: 2, isNewBest: true))
            #expect(promoted[id("a2")] == BoardEngine.Promotion(rank: 1, isNewBest: true))
            #expect(promoted[id("a3")] == BoardEngine.Promotion(rank: 0, isNewBest: false))
            #expect(promoted[id("b1")] == BoardEngine.Promotion(rank: 3, isNewBest: true))
            #expect(try await harness.board().map(\.id) == [id("a2"), first.recordID, id("b1")])
            let seed = try #require(first.recordID)
            let events = try await harness.ranking.boards.events(of: Board.global("v1"), after: 1).map(\.kind)
            #expect(
                events == [
                    .accepted(recordID: id("a1"), rank: 2),
                    .removed(recordID: id("a1")), .accepted(recordID: id("a2"), rank: 1),
                    .rankChanged(recordID: seed, oldRank: 1, newRank: 2),
                    .accepted(recordID: id("b1"), rank: 3),
                ])
            // Nothing is left pending, and each session's stored answer has its rank now.
            #expect(try await harness.ranking.engine.promotePending(version: "v1").isEmpty)
            let later = try await harness.run(try await harness.start("owner-c"), tps: 90)
            #expect(later.rankPending == nil && later.isNewBest && later.rank > 0)
        }
    }

    @Test(
        "retention drops abandoned sessions, the samples of rejected results and old events, and keeps the rest",
        arguments: StorageBackend.available)
    func retention(_ backend: StorageBackend) async throws {
        var policy = RankingPolicy()
        policy.retention.recordSamples = nil
        try await RankingHarness.with(backend, policy: policy) { harness in
            func samples(_ session: String) async throws -> Int {
                try await harness.database.withExecutor(logger: TestEnvironment.logger) {
                    try await RankingRepository($0).samples(of: session).count
                }
            }
            func sessionExists(_ session: String) async throws -> Bool {
                try await harness.database.withExecutor(logger: TestEnvironment.logger) {
                    try await RankingRepository($0).session(session, lock: false) != nil
                }
            }
            let accepted = try await harness.start("good")
            #expect(try await harness.run(accepted, tps: 100).state == "accepted")
            let rejected = try await harness.start("bad")
            harness.clock.advance(by: .seconds(5))
            _ = try await harness.ranking.report(
                RankingHarness.sample(tps: 100), session: rejected.sessionID, machineID: "bad")
            let refused = try await harness.ranking.submit(
                .init(
                    machineID: "bad", sessionID: rejected.sessionID, idempotencyKey: nil, bodySHA256: "x",
                    results: RankingHarness.results(tps: 900, duration: 30), metrics: []))
            #expect(refused.state == "rejected")
            let abandoned = try await harness.start("gone")
            _ = try await harness.ranking.report(
                RankingHarness.sample(tps: 100), session: abandoned.sessionID, machineID: "gone")

            // Nothing is old enough yet.
            #expect(try await harness.ranking.housekeeping() == RankingRetention.Purged())
            #expect(try await samples(rejected.sessionID) == 1)

            // Past the abandoned window (a session lives 6 h, plus 24 h) but inside the samples' 30 days.
            harness.clock.advance(by: .seconds(31 * 3600))
            var purged = try await harness.ranking.housekeeping()
            #expect(purged.abandonedSessions == 1 && purged.samples == 0)
            #expect(try await sessionExists(abandoned.sessionID) == false)
            #expect(try await samples(rejected.sessionID) == 1)
            #expect(try await samples(accepted.sessionID) == 6)

            // Past 30 days: the rejected result's samples go; the record's stay (its charts), and so does the record.
            harness.clock.advance(by: .seconds(30 * 86_400))
            purged = try await harness.ranking.housekeeping()
            #expect(purged.samples == 1 && purged.abandonedSessions == 0)
            #expect(try await samples(rejected.sessionID) == 0)
            #expect(try await samples(accepted.sessionID) == 6)
            #expect(try await sessionExists(rejected.sessionID))
            #expect(try await harness.board().count == 1)
            // The board's events are older than a day, but the newest 10,000 of a board always stay.
            #expect(purged.boardEvents == 0)
            let record = try #require(try await harness.board().first?.id)
            #expect(try await harness.ranking.boards.series(of: record).count == 6)
        }
    }
}
