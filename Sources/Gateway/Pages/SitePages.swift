import Foundation
import HTTPTypes
import Hummingbird
import LeaderboardAPI
import Logging
import Mustache
import NIOCore
import ServiceKit
import SwiftProtobuf
import UntrustedInput

/// The leaderboard for people with a browser (docs/GATEWAY.md, "Web pages"): the board with filters and paging,
/// each record, comparisons, statistics and datasets, rendered on the server from the same RPCs as the JSON routes,
/// cached and rate-limited like them, under a Content-Security-Policy that allows only our own script and styles.
enum SitePages {
    static let recordsLimit = 8

    static func add(
        to router: Router<GatewayRequestContext>, dependencies: GatewayDependencies, ranking: RankingClient,
        interactions: InteractionClient, datasets: DatasetClient
    ) {
        let pages = router.group().add(middleware: PageHeadersMiddleware())
        func cached(_ scope: CacheScope, _ query: QuerySpec) -> RouterGroup<GatewayRequestContext> {
            pages.group().add(
                middleware: ResponseCacheMiddleware(
                    dependencies: dependencies, scope: scope, query: query, answersEarly: false))
        }
        cached(.ranking, RouteQueries.board).get("/") { request, context in
            let query = try request.query(RouteQueries.board)
            return try await board(query, context: context, ranking: ranking, interactions: interactions)
        }
        cached(.ranking, .none).get("/records/{id}") { _, context in
            try await record(
                context.parameters.get("id") ?? "", context: context, ranking: ranking, interactions: interactions)
        }
        cached(.ranking, compareQuery).get("/compare") { request, _ in
            try await compare(try request.query(compareQuery), ranking: ranking)
        }
        cached(.ranking, RouteQueries.datasetVersionOnly).get("/stats") { request, _ in
            let query = try request.query(RouteQueries.datasetVersionOnly)
            return try await stats(query["dataset_version"] ?? "", ranking: ranking)
        }
        cached(.datasets, .none).get("/datasets") { _, _ in try await datasetsPage(datasets) }
        // The flag button: a form any person may send (rate-limited like anonymous comments; an operator reviews
        // every flag), answered with a page.
        pages.group().add(
            middleware: ClientRateLimitMiddleware(
                policy: dependencies.policies.comments, rateLimiter: dependencies.rateLimiter,
                clock: dependencies.clock)
        ).post("/records/{id}/flag") { request, context in
            try await flag(request, context: context, interactions: interactions)
        }
        router.get("/assets/site.css") { _, _ in asset(SiteAssets.css, type: "text/css; charset=utf-8") }
        router.get("/assets/board.js") { _, _ in asset(SiteAssets.boardScript, type: "text/javascript; charset=utf-8") }
    }

    static let compareQuery = QuerySpec([.init("records", .text(maximumLength: 400), code: "invalid_filter")])

    // MARK: pages

    static func board(
        _ query: DeclaredQuery, context: GatewayRequestContext, ranking: RankingClient,
        interactions: InteractionClient
    ) async throws -> Response {
        let filter = RankingRoutes.filter(query, framework: nil)
        let sort = query["sort"] ?? "score"
        let page = try await ranking.listRecords(
            .with {
                $0.filter = filter
                $0.page = query.page
                $0.sort = sort
            })
        let counts = await InteractionRoutes.counts(
            of: page.records.map(\.recordID), interactions: interactions, context: context)
        let version = page.records.first?.datasetVersion ?? filter.datasetVersion
        // Links keep the filters: the next page in the same order, and the column headers that sort.
        let filters = (RouteQueries.filtersWithoutFramework + [RouteQueries.framework]).map(\.name).compactMap {
            name in query[name].map { (name, $0) }
        }
        let next =
            page.page.nextCursor.isEmpty
            ? nil : "/?" + formQuery(filters + [("sort", sort), ("cursor", page.page.nextCursor)])
        let byScore = "/?" + formQuery(filters)
        let byTPS = "/?" + formQuery(filters + [("sort", "tps")])
        let frameworks = Array(Set(page.records.map(\.framework))).sorted()
        let heading = filter.framework.isEmpty ? "Global board" : "Board: \(filter.framework)"
        return render(
            "board",
            [
                "title": heading, "heading": heading, "nav_board": true,
                "version": version.isEmpty ? "latest" : version, "total": Int(page.total),
                "records": page.records.map { row($0, counts: counts[$0.recordID]) },
                "baselines": page.baselines.map { row($0, counts: nil) },
                "has_baselines": !page.baselines.isEmpty, "next": next ?? false,
                "sort_score": byScore, "sort_tps": byTPS, "sorted_by_tps": sort == "tps",
                "sorted_by_score": sort != "tps",
                "filter_framework": filter.framework, "filter_gpu": filter.gpu, "filter_model": filter.model,
                "filter_quantization": filter.quantization,
                "filter_min": query["model_params_min"] ?? "", "filter_max": query["model_params_max"] ?? "",
                "filter_version": filter.datasetVersion, "frameworks": frameworks,
            ])
    }

    static func record(
        _ id: String, context: GatewayRequestContext, ranking: RankingClient, interactions: InteractionClient
    ) async throws -> Response {
        let record = try await ranking.getRecord(.with { $0.recordID = id })
        let counts = await InteractionRoutes.counts(of: [id], interactions: interactions, context: context)[id]
        let comments =
            (try? await interactions.listComments(
                .with {
                    $0.recordID = id
                    $0.page.limit = 50
                }))?.comments ?? []
        let similar =
            (try? await ranking.listSimilarRecords(
                .with {
                    $0.recordID = id
                    $0.limit = 5
                }))?.records ?? []
        let series = (try? await ranking.getRecordSeries(.with { $0.recordID = id }))?.samples ?? []
        let results = record.results
        var view = row(record, counts: counts)
        let start = series.first.map { Double($0.at.microsecondsSinceEpoch) } ?? 0
        let seconds = series.map { (Double($0.at.microsecondsSinceEpoch) - start) / 1_000_000 }
        view["tps_series_svg"] = SiteCharts.line(
            zip(seconds, series).map { ($0, $1.test.tps) }, title: "Tokens per second as reported during the run",
            unit: "tokens/s over seconds")
        view["gpu_series_svg"] = SiteCharts.line(
            zip(seconds, series).map { ($0, $1.system.gpuUsage) }, title: "GPU use during the run",
            unit: "% over seconds")
        view["has_series"] = series.count >= 2
        view["title"] = record.displayName
        view["percentile"] = record.rank > 0 ? "percentile \(number(record.percentile, 1))" : "not ranked"
        view["submitted_at"] = record.submittedAt.rfc3339 ?? ""
        view["gpu_model"] = record.gpuModel
        view["params"] = number(record.modelParams, 1)
        view["quantization"] = record.quantization.isEmpty ? "not stated" : record.quantization
        view["concurrency"] = Int(record.concurrentCount)
        view["version"] = record.datasetVersion
        let latencies: [(String, Double)] = [
            ("mean", results.avgLatency), ("p50", results.p50Latency), ("p95", results.p95Latency),
            ("p99", results.p99Latency),
        ]
        view["latencies"] = latencies.map { number($0.1, 3) }.joined(separator: " / ")
        view["requests"] = "\(results.successfulRequests) of \(results.totalRequests) succeeded"
        view["tokens"] = Int(results.totalTokens)
        view["duration"] = number(results.duration, 1)
        view["validation"] =
            "Accepted under rule set v2 (docs/VALIDATION.md)" + (record.baseline ? "; a reference result" : "")
        view["dislikes"] = counts.map { Int($0.dislikes) } ?? 0
        let shown = comments.filter { !$0.hasDeletedAt }
        view["comments_count"] = shown.count
        view["comments"] = shown.map { comment -> [String: Any] in
            ["author": comment.authorName, "created_at": comment.createdAt.rfc3339 ?? "", "content": comment.content]
        }
        view["similar"] = similar.map { row($0, counts: nil) }
        view["has_similar"] = !similar.isEmpty
        view["compare_ids"] = ([id] + similar.prefix(3).map(\.recordID)).joined(separator: ",")
        let parts: [(String, Double)] = [
            ("Performance", record.performanceScore), ("Efficiency", record.efficiencyScore),
            ("Stability", record.stabilityScore),
        ]
        view["score_svg"] = SiteCharts.bars(
            parts.map { SiteCharts.Bar(label: $0.0, value: $0.1, text: number($0.1 * 100, 1)) },
            title: "Score parts (0–100)")
        view["latency_svg"] = SiteCharts.bars(
            latencies.map { SiteCharts.Bar(label: $0.0, value: $0.1, text: number($0.1, 3) + " s") },
            title: "Latency (seconds)")
        return render("record", view)
    }

    static func flag(_ request: Request, context: GatewayRequestContext, interactions: InteractionClient)
        async throws -> Response
    {
        let id = context.parameters.get("id") ?? ""
        let body = try await request.body.collect(upTo: 4 << 10)
        let form = try QueryParameters.parse(String(decoding: body.readableBytesView, as: UTF8.self))
        let reason = (form["reason"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        _ = try await interactions.flagContent(
            .with {
                $0.target = .record
                $0.targetID = id
                $0.reason = reason
                $0.caller = InteractionRoutes.caller(context)
            })
        var response = render(
            "message",
            [
                "title": "Thank you", "detail": "Your report was received; an operator reviews it.",
                "back": "/records/\(id)",
            ])
        response.headers[.cacheControl] = "no-store"
        return response
    }

    static func compare(_ query: DeclaredQuery, ranking: RankingClient) async throws -> Response {
        let ids = (query["records"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        guard (1...recordsLimit).contains(ids.count) else {
            throw Problem(
                .badRequest, code: "invalid_filter", detail: "Compare 1 to \(recordsLimit) records: ?records=a,b,….")
        }
        var records: [Leaderboard_Ranking_V1_Record] = []
        for id in ids { records.append(try await ranking.getRecord(.with { $0.recordID = String(id) })) }
        func line(_ label: String, _ value: (Leaderboard_Ranking_V1_Record) -> String) -> [String: Any] {
            ["label": label, "values": records.map(value)]
        }
        return render(
            "compare",
            [
                "title": "Comparison", "columns": records.map { row($0, counts: nil) },
                "lines": [
                    line("Rank") { $0.rank > 0 ? "#\($0.rank)" : "–" }, line("Score") { number($0.score, 2) },
                    line("Tokens/s") { number($0.results.tps, 1) },
                    line("Latency p50 (s)") { number($0.results.p50Latency, 3) },
                    line("Latency p99 (s)") { number($0.results.p99Latency, 3) },
                    line("GPU") { gpu($0) }, line("Model") { "\($0.modelName) (\(number($0.modelParams, 1)) B)" },
                    line("Quantization") { $0.quantization.isEmpty ? "–" : $0.quantization },
                    line("Framework") { $0.framework }, line("Concurrency") { "\($0.concurrentCount)" },
                    line("Dataset version") { $0.datasetVersion },
                ],
                "tps_svg": SiteCharts.bars(
                    records.map {
                        .init(label: $0.displayName, value: $0.results.tps, text: number($0.results.tps, 1))
                    },
                    title: "Tokens per second"),
                "score_svg": SiteCharts.bars(
                    records.map { .init(label: $0.displayName, value: $0.score, text: number($0.score, 2)) },
                    title: "Score"),
                "latency_svg": SiteCharts.bars(
                    records.map {
                        .init(
                            label: $0.displayName, value: $0.results.p50Latency,
                            text: number($0.results.p50Latency, 3) + " s")
                    }, title: "Median latency (seconds)"),
            ])
    }

    static func stats(_ version: String, ranking: RankingClient) async throws -> Response {
        let stats = try await ranking.getStats(.with { $0.datasetVersion = version })
        func section(_ id: String, _ what: String, _ groups: [Leaderboard_Ranking_V1_GroupStats]) -> [String: Any] {
            [
                "id": id, "what": what,
                "svg": SiteCharts.ranges(
                    groups.map {
                        .init(
                            label: $0.key, min: $0.tps.min, p25: $0.tps.p25, median: $0.tps.p50, p75: $0.tps.p75,
                            max: $0.tps.max)
                    }, title: "Tokens per second by \(what): middle half, median and range"),
                "groups": groups.map {
                    [
                        "key": $0.key, "count": Int($0.tps.count), "min": number($0.tps.min, 1),
                        "p25": number($0.tps.p25, 1), "p50": number($0.tps.p50, 1), "p75": number($0.tps.p75, 1),
                        "max": number($0.tps.max, 1), "score": number($0.score.p50, 2),
                    ]
                },
            ]
        }
        return render(
            "stats",
            [
                "title": "Statistics", "nav_stats": true, "version": stats.datasetVersion,
                "records": Int(stats.records), "devices": Int(stats.devices), "today": Int(stats.submissionsToday),
                "score_median": number(stats.score.p50, 2),
                "score_iqr": "\(number(stats.score.p25, 2))–\(number(stats.score.p75, 2))",
                "sections": [
                    section("by-framework", "framework", stats.byFramework), section("by-gpu", "GPU", stats.byGpu),
                ],
            ])
    }

    static func datasetsPage(_ datasets: DatasetClient) async throws -> Response {
        let page = try await datasets.listDatasets(
            .with {
                $0.page.limit = 100
                $0.includeInactive = false
            })
        var versions: [[String: Any]] = []
        for version in page.versions {
            let full = try? await datasets.getDataset(
                .with {
                    $0.version = version.version
                    $0.includeManifest = true
                })
            let manifest = full?.manifest
            versions.append([
                "version": version.version, "name": version.name, "description": version.description_p,
                "size": manifest.map { bytes($0.plaintextSize) } ?? "–",
                "chunks": manifest.map { $0.chunks.count } ?? 0,
                "checksum": manifest?.plaintextSha256 ?? "", "activated_at": version.activatedAt.rfc3339 ?? "",
            ])
        }
        return render("datasets", ["title": "Datasets", "nav_datasets": true, "versions": versions])
    }

    // MARK: pieces

    /// A board row's values, formatted.
    static func row(_ record: Leaderboard_Ranking_V1_Record, counts: Leaderboard_Interaction_V1_ReactionCounts?)
        -> [String: Any]
    {
        [
            "record_id": record.recordID, "rank": record.rank > 0 ? "\(record.rank)" : "",
            "display_name": record.displayName,
            "score": number(record.score, 2), "tps": number(record.results.tps, 1),
            "latency": number(record.results.p50Latency > 0 ? record.results.p50Latency : record.results.avgLatency, 3),
            "gpu": gpu(record),
            "model": "\(record.modelName) · \(number(record.modelParams, 1)) B"
                + (record.quantization.isEmpty ? "" : " · \(record.quantization)"),
            "framework": record.framework, "likes": counts.map { Int($0.likes) } ?? 0,
            "comments": counts.map { Int($0.comments) } ?? 0, "baseline": record.baseline,
        ]
    }

    /// `a=1&b=x%20y`, with `+` encoded too (a form query reads it as a space).
    static func formQuery(_ pairs: [(String, String)]) -> String {
        var components = URLComponents()
        components.queryItems = pairs.map { URLQueryItem(name: $0.0, value: $0.1) }
        return (components.percentEncodedQuery ?? "").replacingOccurrences(of: "+", with: "%2B")
    }

    static func gpu(_ record: Leaderboard_Ranking_V1_Record) -> String {
        record.gpuConfig.count > 1 ? "\(record.gpuConfig.count)× \(record.gpuConfig.name)" : record.gpuConfig.name
    }

    static func number(_ value: Double, _ digits: Int) -> String {
        value.isFinite ? String(format: "%.\(digits)f", value) : "–"
    }

    static func bytes(_ count: Int64) -> String {
        ByteCountFormatter.string(fromByteCount: count, countStyle: .binary)
    }

    static func render(_ template: String, _ values: [String: Any], status: HTTPResponse.Status = .ok) -> Response {
        guard let html = SiteTemplates.library?.render(values, withTemplate: template) else {
            return Response(status: .internalServerError)
        }
        return Response(
            status: status,
            headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "public, no-cache"],
            body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    static func asset(_ text: String, type: String) -> Response {
        Response(
            status: .ok,
            headers: [.contentType: type, .cacheControl: "public, max-age=300", .xContentTypeOptions: "nosniff"],
            body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}

/// The headers every page carries, cached or not: only our own script, styles and connections; no framing; no
/// sniffing; no referrer beyond our origin. A page's error is a page too (the JSON routes keep problem+json).
struct PageHeadersMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    static let policy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

    func handle(
        _ request: Request, context: GatewayRequestContext,
        next: (Request, GatewayRequestContext) async throws -> Response
    ) async throws -> Response {
        var response: Response
        do {
            // A filter form leaves the fields a person did not fill in empty: the same page without them (one URL,
            // one cache entry, and "" is no number).
            if let raw = request.uri.query, let query = try? QueryParameters.parse(raw),
                query.pairs.contains(where: { $0.value.isEmpty })
            {
                let kept = SitePages.formQuery(query.pairs.filter { !$0.value.isEmpty }.map { ($0.name, $0.value) })
                let suffix = kept.isEmpty ? "" : "?" + kept
                response = Response(
                    status: .seeOther, headers: [.location: request.uri.path + suffix, .cacheControl: "no-store"])
            } else {
                response = try await next(request, context)
            }
        } catch {
            let problem = Problem.from(error)
            if problem.status.code >= 500 {
                context.logger.error("page failed", metadata: ["error": "\(String(reflecting: error))"])
            }
            response = SitePages.render(
                "problem", ["title": problem.status.reasonPhrase, "detail": problem.detail], status: problem.status)
            response.headers[.cacheControl] = "no-store"
            for field in problem.headers { response.headers[field.name] = field.value }
        }
        response.headers[.contentSecurityPolicy] = Self.policy
        response.headers[.xContentTypeOptions] = "nosniff"
        response.headers[.referrerPolicy] = "same-origin"
        return response
    }
}
