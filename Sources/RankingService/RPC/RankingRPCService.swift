import Crypto
import Foundation
import GRPCCore
import LeaderboardAPI
import ServiceKit
import SwiftProtobuf

/// `leaderboard.ranking.v1.RankingService`: maps protobuf messages to ``RankingAuthority`` and back.
struct RankingRPCService: Leaderboard_Ranking_V1_RankingService.SimpleServiceProtocol {
    let ranking: RankingAuthority
    let events: any EventBus
    /// How often a watcher looks for stored events when no wake-up arrives (a lost pub/sub message costs this).
    var watchPoll: Duration = .seconds(2)
    /// The server's key for DeepStressModel result uploads.
    var resultKey: DeepStressModelCrypto.ResultKey?

    func startSession(request: Leaderboard_Ranking_V1_StartSessionRequest, context: ServerContext) async throws
        -> Leaderboard_Ranking_V1_Session
    {
        let session = try await ranking.start(
            SessionSpec(
                machineID: request.machineID, datasetVersion: request.datasetVersion,
                datasetChecksum: request.datasetChecksum, framework: request.framework, modelName: request.modelName,
                modelParams: request.modelParams, frameworkConfigJSON: request.frameworkConfigJson,
                gpu: GPUConfig(
                    name: request.gpuConfig.name, count: Int(request.gpuConfig.count),
                    memoryGB: request.gpuConfig.memoryGb, gpuHash: request.gpuConfig.gpuHash,
                    extraJSON: request.gpuConfig.extraJson),
                concurrentCount: Int(request.concurrentCount), displayName: request.displayName,
                quantization: request.quantization))
        return Self.session(session)
    }

    func reportMetrics(request: Leaderboard_Ranking_V1_ReportMetricsRequest, context: ServerContext) async throws
        -> Leaderboard_Ranking_V1_ReportMetricsResponse
    {
        let count = try await ranking.report(
            Self.sample(request.sample), session: request.sessionID, machineID: request.machineID)
        return .with { $0.metricSamples = Int32(count) }
    }

    func submitResult(request: Leaderboard_Ranking_V1_SubmitResultRequest, context: ServerContext) async throws
        -> Leaderboard_Ranking_V1_SubmissionOutcome
    {
        Self.outcome(try await Self.counted { try await judge(request) })
    }

    private func judge(_ request: Leaderboard_Ranking_V1_SubmitResultRequest) async throws -> SubmissionResult {
        // Callers other than the gateway may leave the body hash out: the deterministic encoding stands in.
        var digestInput = request
        digestInput.idempotencyKey = ""
        digestInput.bodySha256 = Data()
        let hash =
            request.bodySha256.isEmpty
            ? Array(SHA256.hash(data: try Self.deterministicBytes(digestInput))).hexEncoded
            : Array(request.bodySha256).hexEncoded
        return try await ranking.submit(
            .init(
                machineID: request.machineID, sessionID: request.sessionID,
                idempotencyKey: request.idempotencyKey.isEmpty ? nil : request.idempotencyKey, bodySHA256: hash,
                results: Self.results(request.results), metrics: request.metrics.map(Self.sample),
                datasetProof: request.datasetProof,
                requests: request.requests.map {
                    RequestRecord(outputTokens: $0.outputTokens, latency: $0.latency, success: $0.success)
                }))
    }

    /// Runs a submit and counts how it ended (`leaderboard_submissions_total`): the state it was judged to, once per
    /// rule it broke; refused before judging (a bad session, a replayed file, an outage) as `refused` with the error's
    /// code. A replayed answer is not counted again.
    static func counted(_ judge: () async throws -> SubmissionResult) async throws -> SubmissionResult {
        do {
            let result = try await judge()
            guard !result.replayed else { return result }
            let reasons = Set(result.reasons.map(\.code))
            for reason in reasons.isEmpty ? ["none"] : reasons.sorted() {
                MetricFamilies.submissions.counter(result.state, reason).increment()
            }
            return result
        } catch let error as any CodedServiceError {
            MetricFamilies.submissions.counter("refused", error.code).increment()
            throw error
        } catch {
            MetricFamilies.submissions.counter("refused", RPCStatusName.of(error)).increment()
            throw error
        }
    }

    static func outcome(_ result: SubmissionResult) -> Leaderboard_Ranking_V1_SubmissionOutcome {
        .with {
            $0.sessionID = result.sessionID
            $0.state = Self.state(SessionState(rawValue: result.state) ?? .submitted)
            $0.recordID = result.recordID ?? ""
            $0.score = result.score ?? 0
            $0.scoreVersion = "\(result.scoreVersion)"
            $0.ruleSetVersion = "\(result.ruleSetVersion)"
            $0.reasons = result.reasons.map(Self.reason)
            $0.rank = Int64(result.rank)
            $0.isNewBest = result.isNewBest
            $0.replayed = result.replayed
            $0.rankPending = result.rankPending ?? false
        }
    }

    func getSession(request: Leaderboard_Ranking_V1_GetSessionRequest, context: ServerContext) async throws
        -> Leaderboard_Ranking_V1_Session
    {
        Self.session(try await ranking.session(request.sessionID, machineID: request.machineID))
    }

    func submitExternalResult(request: Leaderboard_Ranking_V1_SubmitExternalResultRequest, context: ServerContext)
        async throws -> Leaderboard_Ranking_V1_SubmissionOutcome
    {
        Self.outcome(try await Self.counted { try await judgeExternal(request) })
    }

    private func judgeExternal(_ request: Leaderboard_Ranking_V1_SubmitExternalResultRequest) async throws
        -> SubmissionResult
    {
        guard request.source == "deepstressmodel" else {
            throw RankingError(
                code: "unknown_source", detail: "Result files are accepted from DeepStressModel only.",
                status: .invalidArgument)
        }
        guard let resultKey else {
            throw RankingError(
                code: "result_key_unavailable", detail: "This server has no result encryption key.",
                status: .unavailable)
        }
        let file = Array(request.resultFile)
        let opened: DeepStressModelCrypto.OpenedResult
        do {
            opened = try DeepStressModelCrypto.openResult(file, apiKey: request.apiKey, key: resultKey)
        } catch let failure as DeepStressModelCrypto.Failure {
            throw RankingError(
                code: failure.code, detail: failure.detail,
                status: failure.code == "api_key_mismatch" ? .permissionDenied : .invalidArgument)
        }
        let now = ranking.clock.microsecondsSinceEpoch() / 1_000_000
        let policy = ranking.policy
        guard opened.timestamp >= now - policy.externalWindowSeconds,
            opened.timestamp <= now + policy.externalSkewSeconds
        else {
            throw RankingError(
                code: "result_expired",
                detail:
                    "The result was signed at \(opened.timestamp) (Unix seconds), not within \(policy.externalWindowSeconds / 60) minutes before this server's time \(now): upload a result right after its run, with the computer's clock set right.",
                status: .failedPrecondition)
        }
        return try await ranking.submitExternal(
            .init(
                machineID: request.machineID,
                result: try DeepStressModelResult.read(opened.plaintext, machineID: request.machineID),
                nonce: opened.nonce, signedAt: opened.timestamp,
                fileSHA256: Array(SHA256.hash(data: file)).hexEncoded))
    }

    func listRecords(request: Leaderboard_Ranking_V1_ListRecordsRequest, context: ServerContext) async throws
        -> Leaderboard_Ranking_V1_ListRecordsResponse
    {
        let filter = Self.filter(request.filter)
        guard let order = request.sort.isEmpty ? .score : RecordOrder(rawValue: request.sort) else {
            throw RankingError(code: "invalid_sort", detail: "sort must be score or tps.", status: .invalidArgument)
        }
        let page = try await ranking.boards.list(
            filter, order: order, cursor: request.page.cursor, limit: Int(request.page.limit))
        // Baselines go with the first page of a board (the filters that make one board: version and framework).
        let baselines =
            request.page.cursor.isEmpty && filter.isWholeBoard ? try await ranking.boards.baselines(filter) : []
        return .with {
            $0.records = page.records.map(Self.record)
            $0.page.nextCursor = page.next
            $0.total = Int64(page.total)
            $0.sequence = page.sequence
            $0.baselines = baselines.map(Self.record)
        }
    }

    func listDeviceRecords(request: Leaderboard_Ranking_V1_ListDeviceRecordsRequest, context: ServerContext)
        async throws -> Leaderboard_Ranking_V1_ListRecordsResponse
    {
        let page = try await ranking.records(
            of: request.machineID, cursor: request.page.cursor, limit: Int(request.page.limit))
        return .with {
            $0.records = page.records.map { placed in
                var record = Self.record(placed)
                record.status = placed.record.status.rawValue
                return record
            }
            $0.page.nextCursor = page.next
            $0.total = Int64(page.records.count)
        }
    }

    func getResultEncryptionKey(
        request: Leaderboard_Ranking_V1_GetResultEncryptionKeyRequest, context: ServerContext
    ) async throws -> Leaderboard_Ranking_V1_ResultEncryptionKey {
        guard let resultKey else {
            throw RankingError(code: "no_result_key", detail: "This server has no result key.", status: .unavailable)
        }
        return .with {
            $0.publicKeyPem = resultKey.publicKeyPEM
            $0.fingerprint = resultKey.fingerprint
        }
    }

    func moderateRecord(request: Leaderboard_Ranking_V1_ModerateRecordRequest, context: ServerContext) async throws
        -> Leaderboard_Ranking_V1_ModerateRecordResponse
    {
        let action: RankingAuthority.Moderation
        switch request.action {
        case .hide: action = .hide
        case .restore: action = .restore
        case .baseline: action = .baseline
        case .remove: action = .remove
        default:
            throw RankingError(
                code: "invalid_moderation", detail: "action must be hide, restore, baseline or remove.",
                status: .invalidArgument)
        }
        let status = try await ranking.moderate(request.recordID, action: action, reason: request.reason)
        return .with {
            $0.recordID = request.recordID
            $0.status = status
        }
    }

    func listAuditEntries(request: Leaderboard_Common_V1_ListAuditEntriesRequest, context: ServerContext)
        async throws -> Leaderboard_Common_V1_ListAuditEntriesResponse
    {
        let entries = try await ranking.audit(after: request.afterSequence, limit: Int(request.limit))
        return .with {
            $0.entries = entries.map { entry in
                .with {
                    $0.sequence = entry.sequence
                    $0.at = .init(microsecondsSinceEpoch: entry.at)
                    $0.actor = entry.actor
                    $0.action = entry.action
                    $0.target = entry.target
                    $0.reason = entry.reason
                    $0.detailsJson = entry.details
                }
            }
        }
    }

    func getRecord(request: Leaderboard_Ranking_V1_GetRecordRequest, context: ServerContext) async throws
        -> Leaderboard_Ranking_V1_Record
    {
        Self.record(try await ranking.boards.record(request.recordID))
    }

    func getRecordSeries(request: Leaderboard_Ranking_V1_GetRecordRequest, context: ServerContext) async throws
        -> Leaderboard_Ranking_V1_RecordSeries
    {
        let samples = try await ranking.boards.series(of: request.recordID)
        return .with {
            $0.recordID = request.recordID
            $0.samples = samples.map { sample in
                .with {
                    $0.at = .init(microsecondsSinceEpoch: sample.at)
                    $0.system = .with {
                        $0.cpuUsage = sample.system.cpuUsage
                        $0.memoryUsage = sample.system.memoryUsage
                        $0.gpuUsage = sample.system.gpuUsage
                        $0.gpuMemoryUsage = sample.system.gpuMemoryUsage
                        $0.gpuTemperature = sample.system.gpuTemperature
                        $0.powerWatts = sample.system.powerWatts
                    }
                    $0.test = .with {
                        $0.tps = sample.test.tps
                        $0.latency = sample.test.latency
                        $0.concurrentCount = Int32(clamping: sample.test.concurrentCount)
                        $0.completedRequests = sample.test.completedRequests
                        $0.failedRequests = sample.test.failedRequests
                        $0.totalTokens = sample.test.totalTokens
                    }
                }
            }
        }
    }

    func lookupRecord(request: Leaderboard_Ranking_V1_LookupRecordRequest, context: ServerContext) async throws
        -> Leaderboard_Ranking_V1_RecordRef
    {
        let record = try await ranking.boards.record(request.recordID).record
        return .with {
            $0.recordID = record.recordID
            $0.ownerMachineID = record.machineID
            $0.datasetVersion = record.datasetVersion
            $0.framework = record.framework
        }
    }

    func listSimilarRecords(request: Leaderboard_Ranking_V1_ListSimilarRecordsRequest, context: ServerContext)
        async throws -> Leaderboard_Ranking_V1_ListRecordsResponse
    {
        let records = try await ranking.boards.similar(to: request.recordID, limit: Int(request.limit))
        return .with {
            $0.records = records.map(Self.record)
            $0.total = Int64(records.count)
        }
    }

    func getStats(request: Leaderboard_Ranking_V1_GetStatsRequest, context: ServerContext) async throws
        -> Leaderboard_Ranking_V1_Stats
    {
        let stats = try await ranking.boards.stats(version: request.datasetVersion)
        func group(_ group: BoardStats.Group) -> Leaderboard_Ranking_V1_GroupStats {
            .with {
                $0.key = group.key
                $0.score = Self.distribution(group.score)
                $0.tps = Self.distribution(group.tps)
            }
        }
        return .with {
            $0.datasetVersion = stats.datasetVersion
            $0.records = Int64(stats.records)
            $0.devices = Int64(stats.devices)
            $0.submissionsToday = Int64(stats.submissionsToday)
            $0.score = Self.distribution(stats.score)
            $0.byFramework = stats.byFramework.map(group)
            $0.byGpu = stats.byGPU.map(group)
        }
    }

    func exportRecords(
        request: Leaderboard_Ranking_V1_ExportRecordsRequest, response: RPCWriter<Leaderboard_Ranking_V1_Record>,
        context: ServerContext
    ) async throws {
        try await ranking.boards.export(Self.filter(request.filter)) { page in
            for record in page { try await response.write(Self.record(record)) }
        }
    }

    func unpublishRecord(request: Leaderboard_Ranking_V1_OwnerRecordRequest, context: ServerContext) async throws
        -> Leaderboard_Ranking_V1_Record
    {
        Self.record(PlacedRecord(record: try await ranking.unpublish(request.recordID, machineID: request.machineID)))
    }

    func deleteRecord(request: Leaderboard_Ranking_V1_OwnerRecordRequest, context: ServerContext) async throws
        -> Leaderboard_Ranking_V1_DeleteRecordResponse
    {
        try await ranking.delete(request.recordID, machineID: request.machineID)
        return .with { $0.recordID = request.recordID }
    }

    func listReviews(request: Leaderboard_Ranking_V1_ListReviewsRequest, context: ServerContext) async throws
        -> Leaderboard_Ranking_V1_ListReviewsResponse
    {
        let page = try await ranking.reviews(
            cursor: request.page.cursor, limit: Int(request.page.limit), includeDecided: request.includeDecided)
        var reviews: [Leaderboard_Ranking_V1_Review] = []
        for review in page.reviews { reviews.append(try await self.review(review)) }
        return .with {
            $0.reviews = reviews
            $0.page.nextCursor = page.next
        }
    }

    func decideReview(request: Leaderboard_Ranking_V1_DecideReviewRequest, context: ServerContext) async throws
        -> Leaderboard_Ranking_V1_Review
    {
        try await review(try await ranking.decide(request.reviewID, approve: request.approve, note: request.note))
    }

    func rebuildRanking(request: Leaderboard_Ranking_V1_RebuildRankingRequest, context: ServerContext) async throws
        -> Leaderboard_Ranking_V1_RebuildRankingResponse
    {
        let count = try await ranking.engine.rebuild(
            version: request.datasetVersion.isEmpty ? nil : request.datasetVersion)
        return .with { $0.recordsIndexed = Int64(count) }
    }

    /// Stored events of one board in order: those after `after_sequence`, then live ones. The bus only wakes the
    /// watcher; the events themselves come from the database, so every replica sends the same sequence.
    func watchLeaderboard(
        request: Leaderboard_Ranking_V1_WatchLeaderboardRequest,
        response: RPCWriter<Leaderboard_Ranking_V1_LeaderboardEvent>, context: ServerContext
    ) async throws {
        let board = try await ranking.boards.board(version: request.datasetVersion, framework: request.framework)
        let version = try await ranking.boards.version(request.datasetVersion)
        let subscription = try await events.subscribe(to: BoardEngine.eventChannel)
        let start = request.hasAfterSequence ? request.afterSequence : try await ranking.boards.lastSequence(of: board)
        let framework = request.framework.lowercased()
        try await followStored(
            context, after: start, subscription: subscription, poll: watchPoll,
            isRelevant: { (try? JSONDecoder().decode(BoardEvent.self, from: Data($0)))?.board == board },
            deliver: { after in
                var position = after
                while true {
                    let batch = try await ranking.boards.events(of: board, after: position)
                    for event in batch {
                        try await response.write(try await self.event(event, version: version, framework: framework))
                        position = event.sequence
                    }
                    if batch.count < 500 { return position }
                }
            })
    }

    // MARK: mapping

    static func deterministicBytes(_ message: some SwiftProtobuf.Message) throws -> [UInt8] {
        var options = BinaryEncodingOptions()
        options.useDeterministicOrdering = true
        return try message.serializedBytes(options: options)
    }

    func event(_ event: BoardEvent, version: String, framework: String) async throws
        -> Leaderboard_Ranking_V1_LeaderboardEvent
    {
        var message = Leaderboard_Ranking_V1_LeaderboardEvent.with {
            $0.sequence = event.sequence
            $0.datasetVersion = version
            $0.framework = framework
            $0.at = .init(microsecondsSinceEpoch: event.at)
        }
        switch event.kind {
        case .accepted(let id, let rank):
            var record = (try? await ranking.boards.record(id)).map(Self.record) ?? .with { $0.recordID = id }
            // The rank when it was accepted, on this board (it may have moved since).
            if framework.isEmpty { record.rank = Int64(rank) } else { record.frameworkRank = Int64(rank) }
            message.recordAccepted = record
        case .rankChanged(let id, let old, let new):
            message.rankChanged = .with {
                $0.recordID = id
                $0.oldRank = Int64(old)
                $0.newRank = Int64(new)
            }
        case .removed(let id):
            message.recordRemoved = id
        }
        return message
    }

    func review(_ review: ReviewRecord) async throws -> Leaderboard_Ranking_V1_Review {
        let record = try await ranking.database.withExecutor(logger: ranking.logger) {
            try await RankingRepository($0).record(review.recordID)
        }
        return .with {
            $0.reviewID = review.reviewID
            $0.sessionID = review.sessionID
            $0.machineID = review.machineID
            if let record {
                $0.results = Self.results(record.results)
                $0.score = record.score.total
            }
            $0.reasons = review.reasons.map(Self.reason)
            $0.createdAt = .init(microsecondsSinceEpoch: review.createdAt)
            $0.decision =
                switch review.decision {
                case .pending: .pending
                case .approved: .approved
                case .rejected: .rejected
                }
            $0.note = review.note
            if let decided = review.decidedAt { $0.decidedAt = .init(microsecondsSinceEpoch: decided) }
        }
    }

    static func filter(_ filter: Leaderboard_Ranking_V1_RecordFilter) -> RecordFilter {
        RecordFilter(
            datasetVersion: filter.datasetVersion, framework: filter.framework, gpu: filter.gpu,
            modelParamsMin: filter.modelParamsMin, modelParamsMax: filter.modelParamsMax, model: filter.model,
            quantization: filter.quantization)
    }

    static func sample(_ sample: Leaderboard_Ranking_V1_MetricSample) -> MetricSample {
        MetricSample(
            at: sample.hasAt ? sample.at.microsecondsSinceEpoch : 0,
            system: SystemSample(
                cpuUsage: sample.system.cpuUsage, memoryUsage: sample.system.memoryUsage,
                gpuUsage: sample.system.gpuUsage, gpuMemoryUsage: sample.system.gpuMemoryUsage,
                gpuTemperature: sample.system.gpuTemperature, powerWatts: sample.system.powerWatts),
            test: TestSample(
                tps: sample.test.tps, latency: sample.test.latency, concurrentCount: Int(sample.test.concurrentCount),
                completedRequests: sample.test.completedRequests, failedRequests: sample.test.failedRequests,
                totalTokens: sample.test.totalTokens))
    }

    static func results(_ results: Leaderboard_Ranking_V1_BenchmarkResults) -> BenchmarkResults {
        BenchmarkResults(
            tps: results.tps, avgLatency: results.avgLatency, p50Latency: results.p50Latency,
            p95Latency: results.p95Latency, p99Latency: results.p99Latency,
            concurrentCount: Int(results.concurrentCount), totalRequests: results.totalRequests,
            successfulRequests: results.successfulRequests, failedRequests: results.failedRequests,
            totalTokens: results.totalTokens, duration: results.duration)
    }

    static func results(_ results: BenchmarkResults) -> Leaderboard_Ranking_V1_BenchmarkResults {
        .with {
            $0.tps = results.tps
            $0.avgLatency = results.avgLatency
            $0.p50Latency = results.p50Latency
            $0.p95Latency = results.p95Latency
            $0.p99Latency = results.p99Latency
            $0.concurrentCount = Int32(clamping: results.concurrentCount)
            $0.totalRequests = results.totalRequests
            $0.successfulRequests = results.successfulRequests
            $0.failedRequests = results.failedRequests
            $0.totalTokens = results.totalTokens
            $0.duration = results.duration
        }
    }

    static func record(_ placed: PlacedRecord) -> Leaderboard_Ranking_V1_Record {
        let record = placed.record
        return .with {
            $0.recordID = record.recordID
            $0.machineID = record.machineID
            $0.displayName = record.displayName
            $0.framework = record.framework
            $0.modelName = record.modelName
            $0.modelParams = record.modelParams
            $0.gpuConfig = gpu(record.gpu)
            $0.concurrentCount = Int32(clamping: record.concurrentCount)
            $0.datasetVersion = record.datasetVersion
            $0.results = results(record.results)
            $0.score = record.score.total
            $0.scoreVersion = "\(record.score.formulaVersion)"
            $0.performanceScore = record.score.performance
            $0.efficiencyScore = record.score.efficiency
            $0.stabilityScore = record.score.stability
            $0.submittedAt = .init(microsecondsSinceEpoch: record.submittedAt)
            $0.rank = Int64(placed.rank)
            $0.frameworkRank = Int64(placed.frameworkRank)
            $0.percentile = placed.percentile
            $0.published = record.published
            $0.quantization = record.quantization
            $0.gpuModel = record.gpuModel
            $0.baseline = record.status == .baseline
        }
    }

    static func gpu(_ gpu: GPUConfig) -> Leaderboard_Ranking_V1_GpuConfig {
        .with {
            $0.name = gpu.name
            $0.count = Int32(clamping: gpu.count)
            $0.memoryGb = gpu.memoryGB
            $0.gpuHash = gpu.gpuHash
            $0.extraJson = gpu.extraJSON
        }
    }

    static func session(_ session: SessionRecord) -> Leaderboard_Ranking_V1_Session {
        let outcome = session.outcome.flatMap { try? RankingRepository.decode(SubmissionResult.self, $0) }
        return .with {
            $0.sessionID = session.sessionID
            $0.machineID = session.spec.machineID
            $0.state = state(session.state)
            $0.datasetVersion = session.spec.datasetVersion
            $0.framework = session.spec.framework
            $0.modelName = session.spec.modelName
            $0.startedAt = .init(microsecondsSinceEpoch: session.startedAt)
            $0.expiresAt = .init(microsecondsSinceEpoch: session.expiresAt)
            if let submitted = session.submittedAt { $0.submittedAt = .init(microsecondsSinceEpoch: submitted) }
            $0.metricsIntervalSeconds = Int32(session.metricsIntervalSeconds)
            $0.metricSamples = Int32(session.samples)
            $0.recordID = session.recordID ?? ""
            $0.reasons = outcome?.reasons.map(reason) ?? []
            if let challenge = session.challenge {
                $0.datasetChallenge = .with {
                    $0.nonce = Data(challenge.nonce)
                    $0.spans = challenge.spans.compactMap { pair in
                        guard pair.count == 2 else { return nil }
                        return .with {
                            $0.offset = pair[0]
                            $0.length = pair[1]
                        }
                    }
                }
            }
        }
    }

    static func state(_ state: SessionState) -> Leaderboard_Ranking_V1_SessionState {
        switch state {
        case .running: .running
        case .submitted: .submitted
        case .accepted: .accepted
        case .rejected: .rejected
        case .heldForReview: .heldForReview
        case .expired: .expired
        }
    }

    static func reason(_ violation: RuleViolation) -> Leaderboard_Common_V1_Reason {
        .with {
            $0.code = violation.code
            $0.detail = violation.detail
        }
    }

    static func distribution(_ distribution: BoardStats.Distribution) -> Leaderboard_Ranking_V1_Distribution {
        .with {
            $0.count = Int64(distribution.count)
            $0.min = distribution.min
            $0.p25 = distribution.p25
            $0.p50 = distribution.p50
            $0.p75 = distribution.p75
            $0.p90 = distribution.p90
            $0.max = distribution.max
        }
    }
}
