import Foundation
import HTTPTypes
import ServiceKit
import TestSupport
import Testing

/// The web pages over HTTP: what they show, their filters and links, their headers and caching, and hostile
/// strings stored through the API coming back as text.
@Suite("Web pages", .timeLimit(.minutes(3)), .enabled(if: ExternalTools.hasPythonPackages))
struct SitePagesTests {
    static let hostile = [
        "<script>alert(1)</script>", "\"><img src=x onerror=alert(2)>", "javascript:alert(3)",
        "\u{202E}gnp.exe\u{202C} rig",
    ]

    /// A result with a chosen display name and model on `version`, through a signed session.
    static func result(
        _ gateway: AuthGateway, version: String, checksum: String, name: String, model: String, tps: Double,
        framework: String = "vllm"
    ) async throws -> String {
        let client = BenchmarkClient(gateway: gateway, device: try await gateway.activeDevice())
        let started = try await client.call(
            .post, "/api/v1/benchmarks/start",
            [
                "dataset_version": version, "dataset_checksum": checksum, "framework": framework,
                "model_name": model, "model_params": 8,
                "gpu_config": ["name": "RTX 4090", "count": 1, "memory_gb": 24],
                "concurrent_count": 4, "display_name": name, "quantization": model == "llama-3-8b" ? "q4_k_m" : "",
            ])
        let session = try #require(started["session_id"], "\(started.text)")
        for _ in 0..<3 {
            _ = try await client.call(.post, "/api/v1/benchmarks/\(session)/metrics", BenchmarkClient.metrics(tps: tps))
        }
        let submitted = try await client.submit(
            session: session,
            body: try BenchmarkClient.submitText(tps: tps, proof: try await client.proof(session: session)), key: nil)
        return try #require(submitted["record_id"], "\(submitted.text)")
    }

    @Test("board, record, comparison, statistics and datasets show what a person needs; hostile strings are text")
    func pages() async throws {
        try await AuthGateway.with(.sqlite) { gateway in
            let (version, checksum) = try await RankingRoutesTests.dataset(gateway)
            var ids: [String] = []
            for (index, (name, model)) in [
                (Self.hostile[0], "llama-3-8b"), (Self.hostile[1], Self.hostile[1]), (Self.hostile[3], Self.hostile[2]),
            ].enumerated() {
                ids.append(
                    try await Self.result(
                        gateway, version: version, checksum: checksum, name: name, model: model,
                        tps: 100 + Double(index) * 10, framework: index == 0 ? "sglang" : "vllm"))
            }
            // Anonymous (three devices is what the harness's one address allows a day).
            let commented = try await gateway.request(
                .post, "/api/v1/benchmarks/\(ids[0])/comments", json: ["content": "<script>alert('c')</script> nice"])
            #expect(commented.status == .created, "\(commented.text)")

            let board = try await gateway.request(.get, "/?dataset_version=\(version)")
            #expect(board.status == .ok && board.headers[.contentType] == "text/html; charset=utf-8")
            let policy = try #require(board.headers[.contentSecurityPolicy])
            #expect(policy.contains("script-src 'self'") && !policy.contains("unsafe-inline"))
            for id in ids { #expect(board.text.contains("/records/\(id)")) }
            Self.expectInert(board.text)
            #expect(board.text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
            #expect(board.text.contains("&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"))
            #expect(board.text.contains("<bdi>\u{202E}gnp.exe\u{202C} rig</bdi>"))
            #expect(board.text.contains("<th scope=\"col\">Rank</th>"))

            // Cached like the JSON routes: an ETag, then 304.
            let etag = try #require(board.headers[.eTag])
            var headers: HTTPFields = [:]
            headers[.ifNoneMatch] = etag
            let again = try await gateway.request(.get, "/?dataset_version=\(version)", headers: headers)
            #expect(again.status == .notModified && again.headers[.contentSecurityPolicy] != nil)

            let filtered = try await gateway.request(.get, "/?dataset_version=\(version)&framework=sglang")
            #expect(filtered.text.contains("/records/\(ids[0])") && !filtered.text.contains("/records/\(ids[1])"))
            for narrowing in ["model=LLAMA-3-8B", "quantization=Q4_K_M"] {
                let page = try await gateway.request(.get, "/?dataset_version=\(version)&\(narrowing)")
                #expect(
                    page.text.contains("/records/\(ids[0])") && !page.text.contains("/records/\(ids[2])"),
                    "\(narrowing)")
                let json = try await gateway.request(.get, "/api/v1/benchmarks?dataset_version=\(version)&\(narrowing)")
                #expect((json.json["records"] as? [Any])?.count == 1, "\(narrowing): \(json.text)")
            }
            // Sorted by tokens per second (ids[2] is the fastest), in the JSON and on the page; paging keeps the order.
            let fastest = try await gateway.request(
                .get, "/api/v1/benchmarks?dataset_version=\(version)&sort=tps&limit=1")
            let first = (fastest.json["records"] as? [[String: Any]])?.first?["record_id"] as? String
            #expect(first == ids[2], "\(fastest.text)")
            let cursor = try #require(fastest.json["next_cursor"] as? String)
            let second = try await gateway.request(
                .get, "/api/v1/benchmarks?dataset_version=\(version)&sort=tps&limit=1&cursor=\(cursor)")
            #expect((second.json["records"] as? [[String: Any]])?.first?["record_id"] as? String == ids[1])
            let mixed = try await gateway.request(
                .get, "/api/v1/benchmarks?dataset_version=\(version)&limit=1&cursor=\(cursor)")
            #expect(mixed.status == .badRequest, "a tokens-per-second cursor does not continue the board's order")
            let sortedPage = try await gateway.request(.get, "/?dataset_version=\(version)&sort=tps")
            #expect(
                sortedPage.text.contains(
                    "aria-sort=\"descending\"><a href=\"/?dataset_version=\(version)&amp;sort=tps\""))
            // A form leaves unfilled fields empty: the same page without them.
            let unfilled = try await gateway.request(.get, "/?framework=sglang&gpu=&model=")
            #expect(unfilled.status == .seeOther && unfilled.headers[.location] == "/?framework=sglang")
            let bad = try await gateway.request(.get, "/?model_params_min=lots")
            #expect(bad.status == .badRequest && bad.headers[.contentType] == "text/html; charset=utf-8")

            let record = try await gateway.request(.get, "/records/\(ids[0])")
            #expect(record.status == .ok && record.text.contains("<svg role=\"img\""), "\(record.text.prefix(300))")
            // The run's live reports as a line (three reports were made).
            #expect(record.text.contains("<polyline class=\"series\""))
            #expect(record.text.contains("&lt;script&gt;alert(&#39;c&#39;)&lt;/script&gt; nice"))
            Self.expectInert(record.text)
            let missing = try await gateway.request(.get, "/records/nope")
            #expect(missing.status == .notFound && missing.text.contains("<h1>"))

            let compare = try await gateway.request(.get, "/compare?records=\(ids[0]),\(ids[1])")
            #expect(compare.status == .ok && compare.text.contains("Tokens per second"))
            Self.expectInert(compare.text)
            let tooMany = try await gateway.request(
                .get, "/compare?records=" + Array(repeating: ids[0], count: 9).joined(separator: ","))
            #expect(tooMany.status == .badRequest)

            let stats = try await gateway.request(.get, "/stats?dataset_version=\(version)")
            #expect(stats.status == .ok && stats.text.contains("sglang") && stats.text.contains("<svg"))
            let datasets = try await gateway.request(.get, "/datasets")
            #expect(datasets.status == .ok && datasets.text.contains(version) && datasets.text.contains(checksum))

            // The flag button works without script: a form post, answered with a page; the operator sees the flag.
            var form: HTTPFields = [:]
            form[.contentType] = "application/x-www-form-urlencoded"
            let flagged = try await gateway.request(
                .post, "/records/\(ids[1])/flag", raw: "reason=copied+figures%21", headers: form)
            #expect(flagged.status == .ok && flagged.text.contains("Thank you"), "\(flagged.text)")
            #expect(flagged.headers[.contentSecurityPolicy] != nil)
            let flags = try await gateway.request(.get, "/api/v1/admin/flags", headers: try await gateway.adminKey())
            #expect(flags.text.contains(ids[1]) && flags.text.contains("copied figures!"), "\(flags.text)")
            let unknown = try await gateway.request(.post, "/records/nope/flag", raw: "reason=why+not", headers: form)
            #expect(unknown.status == .notFound && unknown.headers[.contentType] == "text/html; charset=utf-8")

            let css = try await gateway.request(.get, "/assets/site.css")
            #expect(css.status == .ok && css.headers[.contentType] == "text/css; charset=utf-8")
            let script = try await gateway.request(.get, "/assets/board.js")
            #expect(script.status == .ok && !script.text.contains("innerHTML"))
        }
    }

    /// No markup from a stored string: the only script is ours, no event handler attribute, no javascript: link.
    static func expectInert(_ html: String) {
        #expect(html.components(separatedBy: "<script").count - 1 == (html.contains("/assets/board.js") ? 1 : 0))
        // Text may say "onerror=", but never as an attribute of a tag of its own.
        #expect(!html.contains("<img") && !html.contains("href=\"javascript:"))
        #expect(!html.contains("\"><img"))
    }
}
