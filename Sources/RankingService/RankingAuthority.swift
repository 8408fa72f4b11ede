import Crypto
import Foundation
import GRPCCore
import Logging
import ServiceKit
import Synchronization
import UntrustedInput

/// Benchmark sessions and their submits (judged, scored, stored, handed to the board writer), and what owners and
/// operators do to records afterwards. Both the RPC service and the tests use it; board reads go through
/// ``boards`` and every board change through ``engine``.
struct RankingAuthority: Sendable {
    let database: ServiceDatabase
    let ranks: any RankIndex
    let events: any EventBus
    let logger: Logger
    let clock: any WallClock
    let random: any RandomSource
    let policy: RankingPolicy
    let rules = ValidationRules.v2
    let formula = ScoreFormula.v1
    let device: @Sendable (_ machineID: String) async throws -> DeviceFacts
    /// A version's facts; nil version means the latest active one. Throws the dataset service's not-found errors.
    let dataset: @Sendable (_ version: String?) async throws -> DatasetFacts
    /// A new proof-of-dataset challenge for a version (DatasetService's `CreateDatasetChallenge`).
    let challenge: @Sendable (_ version: String) async throws -> SessionChallenge
    /// What GPUs can do (docs/VALIDATION.md, "Physical bounds").
    var catalog = HardwareCatalog.shipped
    /// DatasetService's check of an uploaded result's prompts against a version (`CheckPrompts`).
    var checkPrompts:
        @Sendable (_ version: String, _ prompts: [DeepStressModelResult.PromptClaim]) async throws ->
            PromptCheck = { _, _ in
                throw RankingError.promptsUnavailable
            }

    /// Ranks pending records in batches, one round at a time per dataset version (shared by every copy).
    let writer = PromotionWriter()
    /// Each version's score reference, fixed by its first submit (``RankingRepository/reference(for:now:)``).
    let references = ScoreReferences()

    /// Reads of boards and records.
    var boards: BoardReader {
        BoardReader(database: database, ranks: ranks, logger: logger, clock: clock, policy: policy, dataset: dataset)
    }

    /// The writer of boards: rank index, board events, promotions.
    var engine: BoardEngine {
        BoardEngine(
            database: database, ranks: ranks, events: events, logger: logger, clock: clock,
            watchedPlaces: policy.watchedPlaces, writer: writer)
    }

    // MARK: sessions

    func start(_ request: SessionSpec) async throws -> SessionRecord {
        let spec = try request.validated()
        let dataset = try await dataset(spec.datasetVersion)
        guard dataset.active else { throw RankingError.datasetInactive }
        guard dataset.checksum.lowercased() == spec.datasetChecksum else { throw RankingError.checksumMismatch }
        let device = try await device(spec.machineID)
        let challenge = try await challenge(dataset.version)
        let now = clock.microsecondsSinceEpoch()
        var session = SessionRecord(
            sessionID: random.bytes(16).hexEncoded, spec: spec, state: .running, hardwareHash: device.hardwareHash,
            gpuHash: spec.gpu.gpuHash.isEmpty ? device.gpuHash : spec.gpu.gpuHash.lowercased(), startedAt: now,
            expiresAt: now + Int64(policy.session.lifetime.components.seconds) * 1_000_000,
            metricsIntervalSeconds: policy.session.metricsIntervalSeconds, samples: 0)
        session.challenge = challenge
        let resolved = {
            var resolved = session
            resolved.spec.datasetVersion = dataset.version
            return resolved
        }()
        try await database.transaction(logger: logger) { sql in
            let repository = RankingRepository(sql)
            guard try await repository.runningSessions(of: spec.machineID, at: now) < policy.openSessions else {
                throw RankingError.tooManySessions
            }
            try await repository.insert(resolved)
        }
        logger.info(
            "benchmark session started",
            metadata: [
                "session": "\(resolved.sessionID)", "machine": "\(spec.machineID)", "dataset": "\(dataset.version)",
            ])
        return resolved
    }

    /// The caller's own session (another device's is "unknown", so ids cannot be probed).
    func session(_ id: String, machineID: String) async throws -> SessionRecord {
        let found = try await database.withExecutor(logger: logger) { try await RankingRepository($0).session(id) }
        guard let found, found.spec.machineID == machineID else { throw RankingError.unknownSession }
        var session = found
        session.state = found.status.effectiveState(at: clock.microsecondsSinceEpoch())
        return session
    }

    /// Appends one live report, stamped with the server's time so a client cannot invent its cadence.
    func report(_ sample: MetricSample, session id: String, machineID: String) async throws -> Int {
        try Self.checkLive(sample)
        let now = clock.microsecondsSinceEpoch()
        let stamped = {
            var stamped = sample
            stamped.at = now
            return stamped
        }()
        // Checked under the write lock, so a submit landing at the same time cannot be followed by a report.
        return try await database.transaction(logger: logger) { sql -> Int in
            let repository = RankingRepository(sql)
            guard let session = try await repository.session(id, lock: true), session.spec.machineID == machineID
            else { throw RankingError.unknownSession }
            try session.status.acceptingMetrics(at: now, policy: policy.session)
            guard
                let count = try await repository.appendSample(stamped, to: id, maximum: policy.session.maximumSamples)
            else { throw RankingError.unknownSession }
            return count
        }
    }

    /// A live report must be real numbers in range; the client hears about a bad one at once.
    static func checkLive(_ sample: MetricSample) throws(RankingError) {
        let usages = [
            ("system.cpu_usage", sample.system.cpuUsage), ("system.memory_usage", sample.system.memoryUsage),
            ("system.gpu_usage", sample.system.gpuUsage), ("system.gpu_memory_usage", sample.system.gpuMemoryUsage),
        ]
        for (name, value) in usages where !(value.isFinite && (0...100).contains(value)) {
            throw RankingError.invalidMetric("\(name) must be a percentage from 0 to 100.")
        }
        for (name, value) in [
            ("system.gpu_temperature", sample.system.gpuTemperature), ("system.power_watts", sample.system.powerWatts),
        ] where !(value.isFinite && value >= 0 && value < 1_000_000) {
            throw RankingError.invalidMetric("\(name) must be a finite number of at least 0.")
        }
        for (name, value) in [("test.tps", sample.test.tps), ("test.latency", sample.test.latency)]
        where !(value.isFinite && value > 0) {
            throw RankingError.invalidMetric("\(name) must be a finite number above 0.")
        }
        if sample.test.concurrentCount <= 0 {
            throw RankingError.invalidMetric("test.concurrent_count must be above 0.")
        }
        if sample.test.completedRequests < 0 || sample.test.failedRequests < 0 || sample.test.totalTokens < 0 {
            throw RankingError.invalidMetric("test request and token counts must be at least 0.")
        }
    }

    // MARK: submit

    struct Submission: Sendable {
        var machineID: String
        var sessionID: String
        var idempotencyKey: String?
        /// SHA-256 (hex) of the request body as sent, to tell a retry from a different body under the same key.
        var bodySHA256: String
        var results: BenchmarkResults
        var metrics: [MetricSample]
        /// The answer to the session's dataset challenge.
        var datasetProof = ""
        /// Per-request records, when the client sends them.
        var requests: [RequestRecord] = []
    }

    /// Judges a submission once: rejected (every failed rule), held for review, or accepted and placed on the
    /// boards. A retry with the same idempotency key and body gets the first answer again.
    func submit(_ submission: Submission) async throws -> SubmissionResult {
        if let key = submission.idempotencyKey,
            !(1...255).contains(key.utf8.count) || key.utf8.contains(where: { $0 < 0x21 || $0 > 0x7e })
        {
            throw RankingError.invalidIdempotencyKey
        }
        guard submission.requests.count <= Self.maximumRequestRecords else {
            throw RankingError.tooManyRequestRecords(Self.maximumRequestRecords)
        }
        guard submission.metrics.count <= policy.session.maximumSamples else {
            throw RankingError.tooManyMetrics(policy.session.maximumSamples)
        }
        guard Self.isEncodable(submission) else {
            throw RankingError.invalidNumber
        }
        let session = try await session(submission.sessionID, machineID: submission.machineID)
        if let replay = try Self.replay(session, submission) {
            return try await settled(replay, version: session.spec.datasetVersion)
        }
        let device = try await device(submission.machineID)
        let dataset = try await knownDataset(session.spec.datasetVersion)
        let judged = try await database.transaction(logger: logger) { sql -> SubmissionResult in
            let repository = RankingRepository(sql)
            guard var session = try await repository.session(submission.sessionID, lock: true) else {
                throw RankingError.unknownSession
            }
            if let replay = try Self.replay(session, submission) { return replay }
            let now = clock.microsecondsSinceEpoch()
            _ = try session.status.submitting(at: now)
            let series = try await repository.samples(of: session.sessionID)
            let claim = HardwareClaim.resolve(spec: session.spec, catalog: catalog)
            var facts = SubmissionFacts(
                startedAt: session.startedAt, submittedAt: now, alreadySubmitted: false,
                metricsIntervalSeconds: session.metricsIntervalSeconds,
                sessionConcurrency: session.spec.concurrentCount,
                sessionFingerprint: .init(hardwareHash: session.hardwareHash, gpuHash: session.gpuHash),
                currentFingerprint: .init(hardwareHash: device.hardwareHash, gpuHash: device.gpuHash),
                datasetActive: dataset?.active ?? false, claimedChecksum: session.spec.datasetChecksum,
                datasetChecksum: dataset?.checksum ?? "",
                datasetMinimumDurationSeconds: dataset?.minimumDurationSeconds ?? 0,
                dailyLimit: policy.dailyLimit, results: submission.results, series: series,
                clientSeries: submission.metrics, hardware: claim, expectedProof: session.challenge?.answer,
                givenProof: submission.datasetProof, requests: submission.requests)
            session.idempotencyKey = submission.idempotencyKey
            session.bodySHA256 = submission.bodySHA256
            return try await judge(
                &session, facts: &facts, claim: claim,
                testStartedAt: Self.testStart(session: session, duration: submission.results.duration, now: now),
                sql: sql, now: now)
        }
        let result = try await settled(judged, version: session.spec.datasetVersion)
        logger.info(
            "benchmark submitted",
            metadata: [
                "session": "\(result.sessionID)", "state": "\(result.state)", "score": "\(result.score ?? 0)",
                "reasons": "\(result.reasons.map(\.code))",
            ])
        return result
    }

    /// A version's facts, nil when it does not exist (the dataset rules then fail); DatasetService being unreachable
    /// fails the call (503), so the client retries instead of having its result rejected for our outage.
    private func knownDataset(_ version: String) async throws -> DatasetFacts? {
        do {
            return try await self.dataset(version)
        } catch let error as RPCError where error.code == .notFound {
            return nil
        } catch let error as any CodedServiceError where error.status == .notFound {
            return nil
        }
    }

    /// An opened result file of another client (DeepStressModel), for the device its key belongs to.
    struct ExternalUpload: Sendable {
        var machineID: String
        var result: DeepStressModelResult
        /// The file's signed nonce: the session the upload becomes is named after it, so a nonce is used once.
        var nonce: String
        /// Unix seconds the file was signed at.
        var signedAt: Int64
        /// SHA-256 (hex) of the file as uploaded.
        var fileSHA256: String
    }

    /// Judges an uploaded result like a native submit (docs/DEEPSTRESSMODEL.md, "Validation"): it becomes a session
    /// of its own, submitted at once, whose record goes through the same rules (those that need a session's history
    /// replaced by ``ExternalEvidence``), scoring, boards and events. A second upload with the file's nonce is
    /// refused, whatever its content.
    func submitExternal(_ upload: ExternalUpload) async throws -> SubmissionResult {
        let spec: SessionSpec
        do {
            spec = try upload.result.spec.validated()
        } catch {
            throw RankingError.resultIncomplete(error.detail)
        }
        let sessionID = Self.externalSessionID(nonce: upload.nonce)
        guard try await existingSession(sessionID) == nil else { throw RankingError.resultReplayed }
        let device = try await device(upload.machineID)
        let dataset = try await knownDataset(spec.datasetVersion)
        let result = upload.result
        var evidence = ExternalEvidence(inconsistencies: result.inconsistencies, claimedName: result.datasetName)
        if result.runEnd > upload.signedAt * 1_000_000 + 120_000_000 {
            evidence.inconsistencies.append("the run ends after the result was signed")
        }
        if dataset != nil {
            let check = try await checkPrompts(spec.datasetVersion, result.prompts)
            evidence.datasetName = check.datasetName
            evidence.datasetItems = check.items
            evidence.unknownPrompts = check.unknownIDs
            evidence.unknownCount = check.unknownCount
            evidence.mismatchedPrompts = check.mismatchedIDs
            evidence.mismatchedCount = check.mismatchedCount
            // Record ids are distinct (a repeated one is an inconsistency), so these are the version's prompts run.
            evidence.prompts = Set(result.prompts.map(\.id)).count - check.unknownCount
        }
        var outcome: SubmissionResult
        let gathered = evidence
        do {
            outcome = try await database.transaction(logger: logger) { sql -> SubmissionResult in
                let now = clock.microsecondsSinceEpoch()
                // The run began `duration` before it ended, no earlier than a session could have started.
                let began = min(
                    now, max(result.runStart, now - Int64(policy.session.lifetime.components.seconds) * 1_000_000))
                var session = SessionRecord(
                    sessionID: sessionID, spec: spec, state: .submitted, hardwareHash: device.hardwareHash,
                    gpuHash: device.gpuHash, startedAt: began, expiresAt: now,
                    metricsIntervalSeconds: policy.session.metricsIntervalSeconds, samples: 0)
                session.bodySHA256 = upload.fileSHA256
                try await RankingRepository(sql).insert(session)
                let claim = HardwareClaim.resolve(spec: spec, catalog: catalog)
                var facts = SubmissionFacts(
                    startedAt: began, submittedAt: now, sessionConcurrency: spec.concurrentCount,
                    sessionFingerprint: .init(hardwareHash: device.hardwareHash, gpuHash: device.gpuHash),
                    currentFingerprint: .init(hardwareHash: device.hardwareHash, gpuHash: device.gpuHash),
                    datasetActive: dataset?.active ?? false, claimedChecksum: "", datasetChecksum: "",
                    datasetMinimumDurationSeconds: dataset?.minimumDurationSeconds ?? 0, dailyLimit: policy.dailyLimit,
                    results: result.results, series: [], hardware: claim, requests: result.requests,
                    external: gathered)
                return try await judge(
                    &session, facts: &facts, claim: claim,
                    testStartedAt: max(began, now - Int64(result.results.duration * 1_000_000)), sql: sql, now: now)
            }
        } catch {
            // Two uploads of one nonce at the same moment: the second insert fails on the session's key.
            if (try? await existingSession(sessionID)) != nil { throw RankingError.resultReplayed }
            throw error
        }
        outcome = try await settled(outcome, version: spec.datasetVersion)
        logger.info(
            "external result judged",
            metadata: [
                "session": "\(outcome.sessionID)", "machine": "\(upload.machineID)", "state": "\(outcome.state)",
                "score": "\(outcome.score ?? 0)", "reasons": "\(outcome.reasons.map(\.code))",
            ])
        return outcome
    }

    /// The session an upload with this nonce becomes (32 hex digits, like every session id).
    static func externalSessionID(nonce: String) -> String {
        Array(SHA256.hash(data: Array("external-result:\(nonce)".utf8))).prefix(16).hexEncoded
    }

    private func existingSession(_ id: String) async throws -> SessionRecord? {
        try await database.withExecutor(logger: logger) { try await RankingRepository($0).session(id) }
    }

    /// Scores, judges and stores the submission of a locked session, in its transaction: the record (accepted and
    /// placed on its boards, or held with a review) or the rejection, and the session's stored outcome.
    private func judge(
        _ session: inout SessionRecord, facts: inout SubmissionFacts, claim: HardwareClaim, testStartedAt: Int64,
        sql: any SQLExecutor, now: Int64
    ) async throws -> SubmissionResult {
        let repository = RankingRepository(sql)
        let results = facts.results
        facts.submissionsToday = try await repository.submissions(
            by: session.spec.machineID, since: now - 86_400_000_000)
        let reference = try await references.reference(for: session.spec.datasetVersion) {
            try await repository.reference(for: session.spec.datasetVersion, now: now)
        }
        var record = BenchmarkRecord(
            recordID: random.bytes(16).hexEncoded, sessionID: session.sessionID, machineID: session.spec.machineID,
            displayName: session.spec.displayName, framework: session.spec.framework,
            modelName: session.spec.modelName, modelParams: session.spec.modelParams, gpu: session.spec.gpu,
            concurrentCount: session.spec.concurrentCount, datasetVersion: session.spec.datasetVersion,
            results: results, score: formula.score(results, series: facts.series, reference: reference),
            ruleSetVersion: rules.version, submittedAt: now, status: .accepted, published: true, ranked: false,
            quantization: claim.quantization?.name ?? "", gpuModel: claim.gpu?.id ?? "", testStartedAt: testStartedAt)
        record.gpu.count = claim.gpuCount
        facts.peerTPS = try await repository.peerTPS(of: record)
        facts.duplicateOf = try await repository.record(withFingerprint: record.fingerprint)
        facts.overlappingRuns = try await repository.overlappingRuns(
            of: record.machineID, from: record.testStartedAt, to: now)
        var result = SubmissionResult(
            sessionID: session.sessionID, state: "", recordID: nil, score: nil, scoreVersion: formula.version,
            ruleSetVersion: rules.version, reasons: [], rank: 0, isNewBest: false)
        switch rules.validate(facts) {
        case .rejected(let violations):
            session.state = .rejected
            result.reasons = violations
        case .heldForReview(let violations):
            session.state = .heldForReview
            record.status = .held
            try await repository.insert(record)
            try await repository.insert(
                ReviewRecord(
                    reviewID: random.bytes(12).hexEncoded, sessionID: session.sessionID, recordID: record.recordID,
                    machineID: record.machineID, reasons: violations, createdAt: now, decision: .pending, note: "",
                    decidedAt: nil))
            result.recordID = record.recordID
            result.score = record.score.total
            result.reasons = violations
        case .accepted:
            session.state = .accepted
            try await repository.insert(record)
            result.recordID = record.recordID
            result.score = record.score.total
            result.rankPending = true
        }
        result.state = session.state.rawValue
        session.submittedAt = now
        session.outcome = try RankingRepository.json(result)
        session.recordID = result.recordID
        try await repository.update(session)
        if result.rankPending == true, let outcome = session.outcome {
            // Ranked by the version's board writer after this commits (``settled(_:version:)``), with its other records.
            try await repository.enqueue(
                .init(recordID: record.recordID, sessionID: session.sessionID, outcome: outcome, enqueuedAt: now),
                version: record.datasetVersion)
        }
        return result
    }

    /// The answer with its rank once the record's board writer batch has committed. When the batch cannot run (the
    /// database or the rank index is down), the accepted answer says its rank is pending: the record is stored and
    /// any replica's upkeep ranks it within seconds (docs/RANKING.md, "The board writer").
    func settled(_ answer: SubmissionResult, version: String) async throws -> SubmissionResult {
        guard answer.rankPending == true, let recordID = answer.recordID else { return answer }
        var settled = answer
        do {
            if let promotion = try await engine.promotePending(version: version)[recordID] {
                settled.place(rank: promotion.rank, isNewBest: promotion.isNewBest)
                return settled
            }
            // Another batch (this replica's earlier round or another replica's) ranked it: its stored answer says.
            let stored = try await database.withExecutor(logger: logger) {
                try await RankingRepository($0).session(answer.sessionID)?.outcome
            }
            if let stored {
                let final = try RankingRepository.decode(SubmissionResult.self, stored)
                if final.rankPending != true { settled.place(rank: final.rank, isNewBest: final.isNewBest) }
            }
        } catch {
            logger.warning(
                "an accepted record's rank is pending: its board writer batch failed",
                metadata: ["record": "\(recordID)", "error": "\(error)"])
        }
        return settled
    }

    /// Most per-request records one submit carries (a long run at high concurrency).
    static let maximumRequestRecords = 100_000

    /// When the test began: `duration` before the submit, but not before the session (microseconds).
    static func testStart(session: SessionRecord, duration: Double, now: Int64) -> Int64 {
        guard duration.isFinite, duration > 0 else { return now }
        let micros = min(Double(now - session.startedAt), duration * 1_000_000)
        return now - Int64(max(0, micros))
    }

    /// The stored answer when this is a retry with the same key and body; a conflict when the key is reused for
    /// another body or the session was already submitted without it; nil when the session takes a submit.
    static func replay(_ session: SessionRecord, _ submission: Submission) throws -> SubmissionResult? {
        guard session.submittedAt != nil, let outcome = session.outcome else { return nil }
        guard let key = submission.idempotencyKey, key == session.idempotencyKey else {
            throw RankingError.alreadySubmitted
        }
        guard submission.bodySHA256 == session.bodySHA256 else { throw RankingError.idempotencyKeyReused }
        var result = try RankingRepository.decode(SubmissionResult.self, outcome)
        result.replayed = true
        return result
    }

    static func isEncodable(_ submission: Submission) -> Bool {
        (try? JSONEncoder().encode(submission.results)) != nil
            && (try? JSONEncoder().encode(submission.metrics)) != nil
    }

    // MARK: owner actions

    /// The device's own records (not rejected ones), newest first, with their places if ranked.
    func records(of machineID: String, cursor: String, limit: Int) async throws -> (
        records: [PlacedRecord], next: String
    ) {
        let limit = try boards.pageSize(limit)
        let after = try Cursor.decode(cursor).map { parts -> (Int64, String) in
            guard parts.count == 2, let time = Int64(parts[0]) else { throw RankingError.invalidCursor }
            return (time, parts[1])
        }
        let rows = try await database.withExecutor(logger: logger) {
            try await RankingRepository($0).records(of: machineID, after: after, limit: limit + 1)
        }
        let page = Array(rows.prefix(limit))
        let next =
            rows.count > limit ? page.last.map { Cursor.encode(["\($0.submittedAt)", $0.recordID]) } ?? "" : ""
        return (try await boards.place(page), next)
    }

    func unpublish(_ recordID: String, machineID: String) async throws -> BenchmarkRecord {
        try await engine.changing { sql -> BenchmarkRecord in
            let repository = RankingRepository(sql)
            var record = try await owned(recordID, machineID: machineID, repository: repository)
            guard record.published else { return record }
            record.published = false
            try await repository.setFlags(
                record.recordID, status: record.status, published: false, ranked: record.ranked)
            try await engine.demote(record, sql: sql, now: clock.microsecondsSinceEpoch())
            record.ranked = false
            return record
        }
    }

    func delete(_ recordID: String, machineID: String) async throws {
        try await engine.changing { sql in
            let repository = RankingRepository(sql)
            let record = try await owned(recordID, machineID: machineID, repository: repository)
            try await engine.demote(record, sql: sql, now: clock.microsecondsSinceEpoch())
            try await repository.delete(record: record.recordID)
        }
        logger.notice("record deleted by its owner", metadata: ["record": "\(recordID)", "machine": "\(machineID)"])
    }

    private func owned(_ recordID: String, machineID: String, repository: RankingRepository) async throws
        -> BenchmarkRecord
    {
        guard let record = try await repository.record(recordID, lock: true), record.status != .rejected else {
            throw RankingError.unknownRecord
        }
        guard record.machineID == machineID else { throw RankingError.notOwner }
        return record
    }

    // MARK: operators

    enum Moderation: String, Sendable, CaseIterable {
        case hide, restore, baseline, remove
    }

    /// An operator's decision on a record, with a reason, written to the audit log in the same transaction: hide
    /// (off the boards, the owner's next best takes its place), restore (a hidden record or a baseline ranks again
    /// if it is its owner's best), baseline (shown beside the boards, never ranked) or remove (deleted). Boards and
    /// their events follow as for an owner's unpublish or delete. Returns the record's status after it ("removed").
    func moderate(_ recordID: String, action: Moderation, reason: String) async throws -> String {
        guard let reason = AuditTrail.validReason(reason) else {
            throw RankingError.invalidReason
        }
        let status = try await engine.changing { sql -> String in
            let repository = RankingRepository(sql)
            guard let found = try await repository.record(recordID, lock: true),
                [.accepted, .hidden, .baseline].contains(found.status)
            else { throw RankingError.unknownRecord }
            let now = clock.microsecondsSinceEpoch()
            let allowed: Set<RecordStatus> =
                switch action {
                case .hide: [.accepted, .baseline]
                case .restore: [.hidden, .baseline]
                case .baseline: [.accepted, .hidden]
                case .remove: [.accepted, .hidden, .baseline]
                }
            guard allowed.contains(found.status) else {
                throw RankingError.invalidModeration(status: found.status.rawValue, action: action.rawValue)
            }
            var record = found
            let outcome: String
            switch action {
            case .hide, .baseline:
                record.status = action == .hide ? .hidden : .baseline
                try await engine.demote(record, sql: sql, now: now)
                try await repository.moderate(record.recordID, status: record.status, reason: reason)
                outcome = record.status.rawValue
            case .restore:
                record.status = .accepted
                record.ranked = false
                try await repository.moderate(record.recordID, status: .accepted, reason: "")
                _ = try await engine.promote([record], sql: sql, now: now)
                outcome = RecordStatus.accepted.rawValue
            case .remove:
                try await engine.demote(record, sql: sql, now: now)
                try await repository.delete(record: record.recordID)
                outcome = "removed"
            }
            try await AuditTrail.append(
                sql, at: now, action: "record.\(action.rawValue)", target: record.recordID, reason: reason,
                details: try RankingRepository.json(
                    [
                        "before": found.status.rawValue, "after": outcome, "display_name": found.displayName,
                        "machine_id": found.machineID, "dataset_version": found.datasetVersion,
                        "framework": found.framework, "score": String(found.score.total),
                    ]))
            return outcome
        }
        logger.notice(
            "record moderated",
            metadata: [
                "record": "\(recordID)", "action": "\(action.rawValue)", "actor": "\(AuditTrail.actor)",
            ])
        return status
    }

    /// The audit log, oldest first, after `sequence`.
    func audit(after sequence: Int64, limit: Int) async throws -> [AuditEntry] {
        try await AuditTrail.read(database, logger: logger, after: sequence, limit: limit)
    }

    // MARK: reviews

    func reviews(cursor: String, limit: Int, includeDecided: Bool) async throws -> (
        reviews: [ReviewRecord], next: String
    ) {
        let limit = try boards.pageSize(limit)
        let after = try Cursor.decode(cursor).map { parts -> (Int64, String) in
            guard parts.count == 2, let time = Int64(parts[0]) else { throw RankingError.invalidCursor }
            return (time, parts[1])
        }
        let rows = try await database.withExecutor(logger: logger) {
            try await RankingRepository($0).reviews(after: after, limit: limit + 1, includeDecided: includeDecided)
        }
        let page = Array(rows.prefix(limit))
        let next = rows.count > limit ? page.last.map { Cursor.encode(["\($0.createdAt)", $0.reviewID]) } ?? "" : ""
        return (page, next)
    }

    func decide(_ reviewID: String, approve: Bool, note: String) async throws -> ReviewRecord {
        guard note.count <= 2000 else {
            throw RankingError.invalidNote
        }
        let review = try await engine.changing { sql -> ReviewRecord in
            let repository = RankingRepository(sql)
            guard var review = try await repository.review(reviewID, lock: true) else {
                throw RankingError.unknownReview
            }
            guard review.decision == .pending else { throw RankingError.reviewDecided }
            let now = clock.microsecondsSinceEpoch()
            review.decision = approve ? .approved : .rejected
            review.note = note
            review.decidedAt = now
            try await repository.decide(review)
            if var session = try await repository.session(review.sessionID, lock: true) {
                session.state = try session.status.reviewed(approve: approve)
                try await repository.update(session)
            }
            if var record = try await repository.record(review.recordID, lock: true) {
                record.status = approve ? .accepted : .rejected
                try await repository.setFlags(
                    record.recordID, status: record.status, published: record.published, ranked: false)
                if approve { _ = try await engine.promote([record], sql: sql, now: now) }
            }
            try await AuditTrail.append(
                sql, at: now, action: approve ? "review.approve" : "review.reject", target: review.reviewID,
                reason: note,
                details: try RankingRepository.json(
                    ["record_id": review.recordID, "reasons": review.reasons.map(\.code).joined(separator: ",")]))
            return review
        }
        logger.notice("review decided", metadata: ["review": "\(reviewID)", "approved": "\(approve)"])
        return review
    }

    /// Forgets sessions abandoned a day ago and events older than a day beyond each board's newest 10,000.
    /// Applies the retention windows (``RankingRetention``) in one transaction and counts what went.
    @discardableResult
    func housekeeping() async throws -> RankingRetention.Purged {
        let now = clock.microsecondsSinceEpoch()
        let retention = policy.retention
        let purged = try await database.transaction(logger: logger) { sql in
            let repository = RankingRepository(sql)
            var purged = RankingRetention.Purged()
            if let window = retention.boardEvents {
                purged.boardEvents = try await repository.purgeEvents(
                    before: window.cutoff(now: now), keep: RankingRetention.eventsKept)
            }
            if let window = retention.abandonedSessions {
                purged.abandonedSessions = try await repository.purgeAbandoned(before: window.cutoff(now: now))
            }
            if let window = retention.unrankedSamples {
                purged.samples += try await repository.purgeUnrankedSamples(submittedBefore: window.cutoff(now: now))
            }
            if let window = retention.recordSamples {
                purged.samples += try await repository.purgeRecordSamples(submittedBefore: window.cutoff(now: now))
            }
            return purged
        }
        for (kind, count) in [
            ("board_events", purged.boardEvents), ("abandoned_sessions", purged.abandonedSessions),
            ("metric_samples", purged.samples),
        ] where count > 0 {
            MetricFamilies.retentionDeleted.counter("ranking", kind).increment(by: Int64(count))
        }
        if purged != RankingRetention.Purged() {
            logger.info(
                "ranking retention",
                metadata: [
                    "board_events": "\(purged.boardEvents)", "abandoned_sessions": "\(purged.abandonedSessions)",
                    "metric_samples": "\(purged.samples)",
                ])
        }
        let pending = try await database.withExecutor(logger: logger) {
            try await RankingRepository($0).pendingReviewCount()
        }
        MetricFamilies.reviewsPending.gauge().set(Double(pending))
        return purged
    }
}

/// Score references by dataset version. A version's reference is written once, by its first submit, and never
/// changes, so each process reads it from the database once (two statements fewer in every submit's transaction).
final class ScoreReferences: Sendable {
    private let known = Mutex<[String: ScoreReference]>([:])  // shared by every submit of the process

    func reference(
        for version: String, read: () async throws -> ScoreReference
    ) async throws -> ScoreReference {
        if let found = known.withLock({ $0[version] }) { return found }
        let reference = try await read()
        known.withLock { $0[version] = reference }
        return reference
    }
}
