import AsyncAlgorithms
import Crypto
import Foundation
import GRPCCore
import HTTPTypes
import Hummingbird
import LeaderboardAPI
import NIOCore
import ServiceKit
import SwiftProtobuf
import UntrustedInput

/// The RankingService client the routes call.
typealias RankingClient = any Leaderboard_Ranking_V1_RankingService.ClientProtocol

extension HTTPField.Name {
    static let idempotencyKey = Self("Idempotency-Key")!
    static let idempotentReplayed = Self("Idempotent-Replayed")!
}

/// `/api/v1/benchmarks/*` (signed sessions, metric reports and submits; public boards, records, similar systems,
/// export), `/api/v1/stats` and `/api/v1/admin/reviews|ranking`. Formats and codes: docs/RANKING.md.
enum RankingRoutes {
    /// Most bytes of one submit: results plus a whole session's series.
    static let submitBodyLimit = 8 << 20

    static func add(
        to router: Router<GatewayRequestContext>, dependencies: GatewayDependencies, auth: AuthClient,
        ranking: RankingClient, interactions: InteractionClient
    ) {
        let signed = DeviceSignatureMiddleware(auth: auth, dependencies: dependencies)
        let changesBoards = CacheInvalidationMiddleware(cache: dependencies.cache, scopes: [.ranking])
        func limited(_ policy: RateLimitPolicy) -> ClientRateLimitMiddleware {
            ClientRateLimitMiddleware(policy: policy, rateLimiter: dependencies.rateLimiter, clock: dependencies.clock)
        }
        func cached(_ query: QuerySpec) -> ResponseCacheMiddleware {
            ResponseCacheMiddleware(dependencies: dependencies, scope: .ranking, query: query)
        }
        let benchmarks = router.group("/api/v1/benchmarks")

        benchmarks.group("/start").add(middleware: signed).post { request, context in
            var request = request
            let body = try await JSONBody.read(&request)
            let session = try await ranking.startSession(
                try startRequest(body, machineID: context.requireDevice().machineID))
            return jsonResponse(sessionJSON(session), status: .created, headers: ResponseHeaders.noStore)
        }
        benchmarks.group("/{id}/metrics").add(middleware: signed).post { request, context in
            var request = request
            let body = try await JSONBody.read(&request)
            let machineID = try context.requireDevice().machineID
            let reply = try await ranking.reportMetrics(
                .with {
                    $0.machineID = machineID
                    $0.sessionID = context.parameters.get("id") ?? ""
                    $0.sample = try sample(body)
                })
            return jsonResponse(
                ["metric_samples": Int(reply.metricSamples)], status: .accepted, headers: ResponseHeaders.noStore)
        }
        benchmarks.group("/{id}/status").add(middleware: signed).get { _, context in
            let machineID = try context.requireDevice().machineID
            let session = try await ranking.getSession(
                .with {
                    $0.machineID = machineID
                    $0.sessionID = context.parameters.get("id") ?? ""
                })
            return jsonResponse(sessionJSON(session), status: .ok, headers: ResponseHeaders.noStore)
        }
        let submitting = DeviceSignatureMiddleware(
            auth: auth, dependencies: dependencies, maximumBodySize: submitBodyLimit)
        benchmarks.group("/{id}/submit").add(middleware: changesBoards).add(middleware: submitting).post {
            request, context in
            try await submit(request, context: context, ranking: ranking, session: context.parameters.get("id"))
        }
        benchmarks.group("").add(middleware: changesBoards).add(middleware: submitting).post { request, context in
            try await submit(request, context: context, ranking: ranking, session: nil)
        }

        benchmarks.group("").add(middleware: cached(RouteQueries.board)).get { request, context in
            try await list(
                try request.query(RouteQueries.board), context: context, ranking: ranking, interactions: interactions,
                framework: nil)
        }
        benchmarks.group("").add(middleware: cached(RouteQueries.frameworkBoard)).get("/frameworks/{framework}") {
            request, context in
            try await list(
                try request.query(RouteQueries.frameworkBoard), context: context, ranking: ranking,
                interactions: interactions, framework: try context.parameters.require("framework"))
        }
        // Not cached (an export streams the whole board); its own budget per client instead.
        benchmarks.group("").add(middleware: limited(dependencies.policies.exports)).get("/export") { request, _ in
            try await export(try request.query(RouteQueries.export), ranking: ranking)
        }
        benchmarks.group("").add(middleware: cached(.none)).get("/{id}") { _, context in
            let record = try await ranking.getRecord(.with { $0.recordID = context.parameters.get("id") ?? "" })
            let counts = await InteractionRoutes.counts(
                of: [record.recordID], interactions: interactions, context: context)
            return jsonResponse(
                InteractionRoutes.withCounts(recordJSON(record), counts[record.recordID]), status: .ok,
                headers: publicCache)
        }
        benchmarks.group("").add(middleware: cached(RouteQueries.similar)).get("/{id}/similar") { request, context in
            let query = try request.query(RouteQueries.similar)
            let page = try await ranking.listSimilarRecords(
                .with {
                    $0.recordID = context.parameters.get("id") ?? ""
                    $0.limit = Int32(clamping: query.integer("limit") ?? 0)
                })
            return jsonResponse(["records": page.records.map(recordJSON)], status: .ok, headers: publicCache)
        }
        benchmarks.group("/{id}/unpublish").add(middleware: changesBoards).add(middleware: signed).post { _, context in
            let machineID = try context.requireDevice().machineID
            let record = try await ranking.unpublishRecord(
                .with {
                    $0.machineID = machineID
                    $0.recordID = context.parameters.get("id") ?? ""
                })
            return jsonResponse(recordJSON(record), status: .ok, headers: ResponseHeaders.noStore)
        }
        benchmarks.group("/{id}").add(middleware: changesBoards).add(middleware: signed).delete { _, context in
            let machineID = try context.requireDevice().machineID
            _ = try await ranking.deleteRecord(
                .with {
                    $0.machineID = machineID
                    $0.recordID = context.parameters.get("id") ?? ""
                })
            return Response(status: .noContent, headers: ResponseHeaders.noStore)
        }

        // The public key DeepStressModel users install to upload results here (docs/AUTH.md, "Client keys").
        router.group("/api/v1/keys/result-encryption.pem").add(middleware: limited(dependencies.policies.publicReads))
            .get { _, _ in
                let key = try await ranking.getResultEncryptionKey(.init())
                return Response(
                    status: .ok,
                    headers: [
                        .contentType: "application/x-pem-file", .cacheControl: "public, max-age=300",
                        .eTag: "\"\(key.fingerprint)\"", .xContentTypeOptions: "nosniff",
                    ],
                    body: .init(byteBuffer: ByteBuffer(string: key.publicKeyPem)))
            }

        router.group("/api/v1/stats").add(middleware: cached(RouteQueries.datasetVersionOnly)).get { request, _ in
            let query = try request.query(RouteQueries.datasetVersionOnly)
            let stats = try await ranking.getStats(.with { $0.datasetVersion = query["dataset_version"] ?? "" })
            return jsonResponse(statsJSON(stats), status: .ok, headers: publicCache)
        }

        // The device's own records, whatever their state: public JSON names no device, so this is how an owner
        // finds what to manage (docs/GOVERNANCE.md, "Privacy").
        router.group("/api/v1/devices/records").add(middleware: signed).get { request, context in
            let query = try request.query(RouteQueries.pageOnly)
            let machineID = try context.requireDevice().machineID
            let page = try await ranking.listDeviceRecords(
                .with {
                    $0.machineID = machineID
                    $0.page = query.page
                })
            return jsonResponse(
                [
                    "records": page.records.map { record -> [String: Any] in
                        var json = recordJSON(record)
                        json["status"] = record.status
                        return json
                    },
                    "next_cursor": page.page.nextCursorJSON,
                ], status: .ok, headers: ResponseHeaders.noStore)
        }

        let admin = router.group("/api/v1/admin")
            .add(
                middleware: APIKeyMiddleware(
                    auth: auth, permission: .admin, rateLimiter: dependencies.rateLimiter, clock: dependencies.clock))
        admin.get("/reviews") { request, _ in
            let query = try request.query(RouteQueries.reviews)
            let page = try await ranking.listReviews(
                .with {
                    $0.page = query.page
                    $0.includeDecided = query.flag("include_decided") ?? false
                })
            return jsonResponse(
                [
                    "reviews": page.reviews.map(reviewJSON),
                    "next_cursor": page.page.nextCursorJSON,
                ], status: .ok, headers: ResponseHeaders.noStore)
        }
        for (action, approve) in [("approve", true), ("reject", false)] {
            admin.group("/reviews/{id}/\(action)").add(middleware: changesBoards).post { request, context in
                var request = request
                let body = try await JSONBody.read(&request)
                let review = try await ranking.decideReview(
                    .with {
                        $0.reviewID = context.parameters.get("id") ?? ""
                        $0.approve = approve
                        $0.note = try body.optionalString("note") ?? ""
                    })
                return jsonResponse(reviewJSON(review), status: .ok, headers: ResponseHeaders.noStore)
            }
        }
        admin.group("/records/{id}/moderation").add(middleware: changesBoards).post { request, context in
            var request = request
            let body = try await JSONBody.read(&request)
            let action: Leaderboard_Ranking_V1_ModerationAction
            switch try body.string("action") {
            case "hide": action = .hide
            case "restore": action = .restore
            case "baseline": action = .baseline
            case "remove": action = .remove
            default:
                throw Problem(
                    .badRequest, code: "invalid_moderation", detail: "action must be hide, restore, baseline or remove."
                )
            }
            let reply = try await ranking.moderateRecord(
                .with {
                    $0.recordID = context.parameters.get("id") ?? ""
                    $0.action = action
                    $0.reason = try body.string("reason")
                })
            return jsonResponse(
                ["record_id": reply.recordID, "status": reply.status], status: .ok, headers: ResponseHeaders.noStore)
        }
        admin.group("/ranking/rebuild").add(middleware: changesBoards).post { request, _ in
            let query = try request.query(RouteQueries.datasetVersionOnly)
            let reply = try await ranking.rebuildRanking(.with { $0.datasetVersion = query["dataset_version"] ?? "" })
            return jsonResponse(
                ["records_indexed": Int(reply.recordsIndexed)], status: .ok, headers: ResponseHeaders.noStore)
        }
    }

    /// Boards change with every accepted submit: clients and proxies may keep them, but must revalidate (ETag → 304).
    static let publicCache: HTTPFields = [.cacheControl: "public, no-cache"]

    // MARK: submit

    /// Judges a submit: 201 accepted (a record), 202 held for review, 422 rejected with every failed rule. A retry
    /// with the same `Idempotency-Key` and body gets the same answer, marked `Idempotent-Replayed: true`.
    static func submit(
        _ request: Request, context: GatewayRequestContext, ranking: RankingClient, session: String?
    ) async throws -> Response {
        var request = request
        let raw = try await collectBody(&request, limit: submitBodyLimit)
        let body = try await JSONBody.read(&request, limit: submitBodyLimit)
        let message = try submitRequest(
            body, raw: raw, session: session, machineID: try context.requireDevice().machineID,
            idempotencyKey: request.headers[.idempotencyKey] ?? "")
        return try submitResponse(try await ranking.submitResult(message))
    }

    /// The submit's message, from its JSON body. Kept out of ``submit(_:context:ranking:session:)`` and never inlined
    /// into it: with this work inside the async function, Swift 6.3's optimiser crashed (signal 11, "While splitting
    /// coroutine") in release builds, so no image could be built.
    @inline(never)
    static func submitRequest(
        _ body: JSONBody, raw: ByteBuffer, session: String?, machineID: String, idempotencyKey: String
    ) throws -> Leaderboard_Ranking_V1_SubmitResultRequest {
        let sessionID = try session ?? body.string("session_id")
        let results = try body.object("results")
        let metrics = try body.optionalObjects("metrics") ?? []
        let requests = try body.optionalObjects("requests") ?? []
        let proof = try body.optionalString("dataset_proof") ?? ""
        return try .with {
            $0.machineID = machineID
            $0.sessionID = sessionID
            $0.idempotencyKey = idempotencyKey
            $0.results = try benchmarkResults(results)
            $0.metrics = try metrics.map(sample)
            $0.datasetProof = proof
            $0.requests = try requests.map(requestRecord)
            $0.bodySha256 = Data(SHA256.hash(data: raw.readableBytesView))
        }
    }

    /// 201 (ranked or not), 202 (held for review), or the 422 problem listing every failed rule.
    @inline(never)
    static func submitResponse(_ outcome: Leaderboard_Ranking_V1_SubmissionOutcome) throws -> Response {
        var headers = ResponseHeaders.noStore
        if outcome.replayed { headers[.idempotentReplayed] = "true" }
        switch outcome.state {
        case .rejected:
            var problem = Problem(
                .unprocessableContent, code: "submission_rejected",
                detail: "The submission failed \(outcome.reasons.count) validation rule(s); see reasons.")
            problem.members = ["session_id": outcome.sessionID, "rule_set_version": outcome.ruleSetVersion]
            problem.reasons = outcome.reasons.map { ["code": $0.code, "detail": $0.detail] }
            problem.headers = headers
            throw problem
        case .heldForReview:
            return jsonResponse(outcomeJSON(outcome), status: .accepted, headers: headers)
        default:
            return jsonResponse(outcomeJSON(outcome), status: .created, headers: headers)
        }
    }

    // MARK: listings

    static func filter(_ query: DeclaredQuery, framework: String?) -> Leaderboard_Ranking_V1_RecordFilter {
        .with {
            $0.datasetVersion = query["dataset_version"] ?? ""
            $0.framework = framework ?? query["framework"] ?? ""
            $0.gpu = query["gpu"] ?? ""
            $0.modelParamsMin = query.number("model_params_min") ?? 0
            $0.modelParamsMax = query.number("model_params_max") ?? 0
            $0.model = query["model"] ?? ""
            $0.quantization = query["quantization"] ?? ""
        }
    }

    static func list(
        _ query: DeclaredQuery, context: GatewayRequestContext, ranking: RankingClient,
        interactions: InteractionClient, framework: String?
    ) async throws -> Response {
        let page = try await ranking.listRecords(
            .with {
                $0.filter = filter(query, framework: framework)
                $0.page = query.page
                $0.sort = query["sort"] ?? ""
            })
        let counts = await InteractionRoutes.counts(
            of: page.records.map(\.recordID), interactions: interactions, context: context)
        return jsonResponse(
            [
                "records": page.records.map { InteractionRoutes.withCounts(recordJSON($0), counts[$0.recordID]) },
                "total": Int(page.total),
                "next_cursor": page.page.nextCursorJSON,
                // Reference results beside the board (first page only): shown, never ranked.
                "baselines": page.baselines.map(recordJSON),
            ], status: .ok, headers: publicCache)
    }

    /// Every ranked record matching the filters, streamed as CSV or a JSON array (`?format=csv|json`).
    static func export(_ query: DeclaredQuery, ranking: RankingClient) async throws -> Response {
        let format = query["format"] ?? "json"
        let filter = filter(query, framework: nil)
        let csv = format == "csv"
        let pieces = try await PieceStream.start { channel in
            try await ranking.exportRecords(.with { $0.filter = filter }) { response in
                var first = true
                for try await record in response.messages {
                    var text = first ? (csv ? csvHeader : "[") : (csv ? "" : ",")
                    text += csv ? csvLine(record) : compactJSON(recordJSON(record))
                    await channel.send(ByteBuffer(string: text))
                    first = false
                }
                await channel.send(ByteBuffer(string: first ? (csv ? csvHeader : "[]") : (csv ? "" : "]")))
            }
        }
        var headers: HTTPFields = [
            .contentType: csv ? "text/csv; charset=utf-8" : "application/json", .cacheControl: "public, max-age=60",
        ]
        headers[.contentDisposition] = "attachment; filename=\"leaderboard.\(format)\""
        return Response(status: .ok, headers: headers, body: pieces.body())
    }

    static let csvColumns = [
        "rank", "record_id", "display_name", "framework", "model_name", "model_params", "gpu", "gpu_count",
        "concurrent_count", "dataset_version", "score", "tps", "avg_latency", "p99_latency", "submitted_at",
    ]
    static let csvHeader = csvColumns.joined(separator: ",") + "\r\n"

    static func csvLine(_ record: Leaderboard_Ranking_V1_Record) -> String {
        let fields = [
            "\(record.rank)", record.recordID, record.displayName, record.framework, record.modelName,
            "\(record.modelParams)", record.gpuConfig.name, "\(record.gpuConfig.count)", "\(record.concurrentCount)",
            record.datasetVersion, "\(record.score)", "\(record.results.tps)", "\(record.results.avgLatency)",
            "\(record.results.p99Latency)", record.submittedAt.rfc3339 ?? "",
        ]
        return fields.map(csvField).joined(separator: ",") + "\r\n"
    }

    /// RFC 4180 quoting; a leading `= + - @` is prefixed with `'` so spreadsheets do not run it as a formula.
    static func csvField(_ text: String) -> String {
        var value = text
        if let first = value.first, "=+-@".contains(first), Double(value) == nil { value = "'" + value }
        guard value.contains(where: { ",\"\r\n".contains($0) }) else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    // MARK: request bodies

    static func startRequest(_ body: JSONBody, machineID: String) throws -> Leaderboard_Ranking_V1_StartSessionRequest {
        let gpu = try body.object("gpu_config")
        return try .with {
            $0.machineID = machineID
            $0.datasetVersion = try body.string("dataset_version")
            $0.datasetChecksum = try body.string("dataset_checksum")
            $0.framework = try body.string("framework")
            $0.modelName = try body.string("model_name")
            $0.modelParams = try body.double("model_params")
            $0.frameworkConfigJson = try body.jsonText("framework_config")
            $0.gpuConfig = try .with {
                $0.name = try gpu.string("name")
                $0.count = try gpu.optionalInt32("count") ?? 1
                $0.memoryGb = try gpu.optionalDouble("memory_gb") ?? 0
                $0.gpuHash = try gpu.optionalString("gpu_hash") ?? ""
                $0.extraJson = try gpu.remainder(excluding: ["name", "count", "memory_gb", "gpu_hash"])
            }
            $0.concurrentCount = try body.int32("concurrent_count")
            $0.displayName = try body.optionalString("display_name") ?? ""
            $0.quantization = try body.optionalString("quantization") ?? ""
        }
    }

    static func requestRecord(_ body: JSONBody) throws -> Leaderboard_Ranking_V1_RequestRecord {
        try .with {
            guard let tokens = try body.optionalInt64("output_tokens") else { throw body.missing("output_tokens") }
            $0.outputTokens = tokens
            $0.latency = try body.double("latency")
            $0.success = try body.optionalBool("success") ?? true
        }
    }

    static func sample(_ body: JSONBody) throws -> Leaderboard_Ranking_V1_MetricSample {
        let system = try body.object("system")
        let test = try body.object("test")
        return try .with {
            $0.system = try .with {
                $0.cpuUsage = try system.double("cpu_usage")
                $0.memoryUsage = try system.double("memory_usage")
                $0.gpuUsage = try system.double("gpu_usage")
                $0.gpuMemoryUsage = try system.optionalDouble("gpu_memory_usage") ?? 0
                $0.gpuTemperature = try system.optionalDouble("gpu_temperature") ?? 0
                $0.powerWatts = try system.optionalDouble("power_watts") ?? 0
            }
            $0.test = try .with {
                $0.tps = try test.double("tps")
                $0.latency = try test.double("latency")
                $0.concurrentCount = try test.int32("concurrent_count")
                $0.completedRequests = try test.optionalInt64("completed_requests") ?? 0
                $0.failedRequests = try test.optionalInt64("failed_requests") ?? 0
                $0.totalTokens = try test.optionalInt64("total_tokens") ?? 0
            }
            if let at = try body.optionalTimestamp("at") { $0.at = at }
        }
    }

    static func benchmarkResults(_ body: JSONBody) throws -> Leaderboard_Ranking_V1_BenchmarkResults {
        try .with {
            $0.tps = try body.double("tps")
            $0.avgLatency = try body.double("avg_latency")
            $0.p50Latency = try body.optionalDouble("p50_latency") ?? 0
            $0.p95Latency = try body.optionalDouble("p95_latency") ?? 0
            $0.p99Latency = try body.optionalDouble("p99_latency") ?? 0
            $0.concurrentCount = try body.int32("concurrent_count")
            $0.totalRequests = try body.optionalInt64("total_requests") ?? 0
            $0.successfulRequests = try body.optionalInt64("successful_requests") ?? 0
            $0.failedRequests = try body.optionalInt64("failed_requests") ?? 0
            $0.totalTokens = try body.optionalInt64("total_tokens") ?? 0
            $0.duration = try body.double("duration")
            // A client's own score is accepted and ignored: the server computes the score.
            _ = try body.optionalDouble("score")
        }
    }

    // MARK: response bodies

    static func stateName(_ state: Leaderboard_Ranking_V1_SessionState) -> String {
        switch state {
        case .running: "running"
        case .submitted: "submitted"
        case .accepted: "accepted"
        case .rejected: "rejected"
        case .heldForReview: "held_for_review"
        case .expired: "expired"
        default: "unknown"
        }
    }

    static func reasonsJSON(_ reasons: [Leaderboard_Common_V1_Reason]) -> [[String: String]] {
        reasons.map { ["code": $0.code, "detail": $0.detail] }
    }

    static func sessionJSON(_ session: Leaderboard_Ranking_V1_Session) -> [String: Any] {
        [
            "session_id": session.sessionID, "state": stateName(session.state),
            "dataset_version": session.datasetVersion, "framework": session.framework,
            "model_name": session.modelName, "started_at": jsonValue(session.startedAt.rfc3339),
            "expires_at": jsonValue(session.expiresAt.rfc3339), "submitted_at": jsonValue(session.submittedAt.rfc3339),
            "metrics_interval_seconds": Int(session.metricsIntervalSeconds),
            "metric_samples": Int(session.metricSamples),
            "record_id": jsonValue(session.recordID.isEmpty ? nil : session.recordID),
            "reasons": reasonsJSON(session.reasons),
            "dataset_challenge": session.hasDatasetChallenge
                ? [
                    "algorithm": "HMAC-SHA256",
                    "nonce": Array(session.datasetChallenge.nonce).hexEncoded,
                    "spans": session.datasetChallenge.spans.map {
                        ["offset": Int($0.offset), "length": Int($0.length)]
                    },
                ] as [String: Any] : NSNull(),
        ]
    }

    static func outcomeJSON(_ outcome: Leaderboard_Ranking_V1_SubmissionOutcome) -> [String: Any] {
        [
            "session_id": outcome.sessionID, "state": stateName(outcome.state),
            "record_id": jsonValue(outcome.recordID.isEmpty ? nil : outcome.recordID), "score": outcome.score,
            "score_version": outcome.scoreVersion, "rule_set_version": outcome.ruleSetVersion,
            "rank": Int(outcome.rank), "is_new_best": outcome.isNewBest, "rank_pending": outcome.rankPending,
            "reasons": reasonsJSON(outcome.reasons),
        ]
    }

    static func recordJSON(_ record: Leaderboard_Ranking_V1_Record) -> [String: Any] {
        let results = record.results
        return [
            // No machine id: a device is known in public by its display name only (docs/SECURITY.md).
            "record_id": record.recordID, "display_name": record.displayName,
            "framework": record.framework, "model_name": record.modelName, "model_params": record.modelParams,
            "gpu_config": [
                "name": record.gpuConfig.name, "count": Int(record.gpuConfig.count),
                "memory_gb": record.gpuConfig.memoryGb,
            ] as [String: Any],
            "concurrent_count": Int(record.concurrentCount), "dataset_version": record.datasetVersion,
            "tps": results.tps,
            "results": [
                "tps": results.tps, "avg_latency": results.avgLatency, "p50_latency": results.p50Latency,
                "p95_latency": results.p95Latency, "p99_latency": results.p99Latency,
                "concurrent_count": Int(results.concurrentCount), "total_requests": Int(results.totalRequests),
                "successful_requests": Int(results.successfulRequests), "failed_requests": Int(results.failedRequests),
                "total_tokens": Int(results.totalTokens), "duration": results.duration,
            ] as [String: Any],
            "score": record.score, "score_version": record.scoreVersion,
            "scores": [
                "performance": record.performanceScore, "efficiency": record.efficiencyScore,
                "stability": record.stabilityScore,
            ],
            "submitted_at": jsonValue(record.submittedAt.rfc3339),
            "rank": record.rank > 0 ? Int(record.rank) : NSNull(),
            "framework_rank": record.frameworkRank > 0 ? Int(record.frameworkRank) : NSNull(),
            "percentile": record.rank > 0 ? record.percentile : NSNull(), "published": record.published,
            "quantization": jsonValue(record.quantization.isEmpty ? nil : record.quantization),
            "gpu_model": jsonValue(record.gpuModel.isEmpty ? nil : record.gpuModel),
            "baseline": record.baseline,
        ]
    }

    static func distributionJSON(_ distribution: Leaderboard_Ranking_V1_Distribution) -> [String: Any] {
        [
            "count": Int(distribution.count), "min": distribution.min, "p25": distribution.p25, "p50": distribution.p50,
            "p75": distribution.p75, "p90": distribution.p90, "max": distribution.max,
        ]
    }

    static func statsJSON(_ stats: Leaderboard_Ranking_V1_Stats) -> [String: Any] {
        func groups(_ groups: [Leaderboard_Ranking_V1_GroupStats]) -> [[String: Any]] {
            groups.map { ["key": $0.key, "score": distributionJSON($0.score), "tps": distributionJSON($0.tps)] }
        }
        return [
            "dataset_version": stats.datasetVersion, "records": Int(stats.records), "devices": Int(stats.devices),
            "submissions_today": Int(stats.submissionsToday), "score": distributionJSON(stats.score),
            "by_framework": groups(stats.byFramework), "by_gpu": groups(stats.byGpu),
        ]
    }

    static func reviewJSON(_ review: Leaderboard_Ranking_V1_Review) -> [String: Any] {
        [
            "review_id": review.reviewID, "session_id": review.sessionID, "machine_id": review.machineID,
            "score": review.score, "tps": review.results.tps, "reasons": reasonsJSON(review.reasons),
            "created_at": jsonValue(review.createdAt.rfc3339),
            "decision": review.decision == .approved
                ? "approved" : review.decision == .rejected ? "rejected" : "pending",
            "note": review.note, "decided_at": jsonValue(review.decidedAt.rfc3339),
        ]
    }
}
