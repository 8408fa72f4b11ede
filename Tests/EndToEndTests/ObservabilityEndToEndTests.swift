import Crypto
import Foundation
import LeaderboardClient
import ServiceKit
import TestSupport
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The metrics and traces of a running system (docs/OPERATIONS.md): five processes, one per target, each scraped on
/// its ops listener and exporting spans to a local OTLP receiver after a device benchmarks through the gateway; the
/// alert rules and the dashboard name only metrics that exist.
@Suite(
    "Observability through the real binary", .serialized, .timeLimit(.minutes(5)),
    .enabled(if: ExternalTools.hasPythonPackages))
struct ObservabilityEndToEndTests {
    /// The names of our metrics an expression uses (every family is prefixed with one of these).
    static func metricNames(in text: String) -> Set<String> {
        let pattern = try! Regex(#"\b(?:leaderboard|grpc|http_server|process)_[a-z0-9_]+"#)
        let labels: Set = ["grpc_service", "grpc_method", "grpc_code"]
        return Set(text.matches(of: pattern).map { String(text[$0.range]) }).subtracting(labels)
    }

    @Test("every process exports RED per RPC, pools, process and business metrics; one trace spans a submit")
    func fiveProcesses() async throws {
        let directory = EndToEnd.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let storage = try await EndToEnd.productionSettings()
        let spans = directory + "/spans.jsonl"
        let receiver = try ChildProcess(
            ExternalTools.python, [ExternalTools.pythonScripts.appendingPathComponent("otlp_receiver.py").path, spans])
        defer { receiver.kill() }
        let receiverPort = try await eventually(within: .seconds(20)) {
            receiver.standardOutput.contains("listening on ") || !receiver.isRunning
        }
        try #require(receiverPort && receiver.isRunning, "\(receiver.standardError)")
        let port = receiver.standardOutput.split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines)
        let common =
            storage + [
                "--pow-difficulty", "8", "--ranking-metrics-interval", "10", "--rate-limit-challenge", "3/min",
                "--metrics-on-http", "false", "--otlp-endpoint", "http://127.0.0.1:\(port ?? "")",
            ]
        let (started, grpcPorts) = try await EndToEnd.startEachTarget(in: directory, settings: common)
        let processes = Dictionary(uniqueKeysWithValues: started.map { ($0.target, $0.process) })
        defer { for process in processes.values where process.process.isRunning { process.process.terminate() } }
        let gateway = try #require(processes[.gateway])
        let auth = try #require(processes[.auth])
        let base = try await gateway.httpBase()
        _ = try await EndToEnd.waitFor(base + "/health/ready", status: 200)
        var ops: [Target: String] = [:]
        for (target, process) in processes { ops[target] = try await process.httpBase("ops") }

        // /metrics left the public listener, and is on the ops listener.
        #expect(try await EndToEnd.send("GET", base + "/metrics").status == 404)
        #expect(try await EndToEnd.send("GET", ops[.gateway]! + "/metrics").status == 200)

        // A dataset, a device, a benchmark, board reads (the second a cache hit), a download, a rate-limit refusal.
        let version = "obs-\(UUID().uuidString.prefix(8).lowercased())"
        let operatorKey = try await EndToEnd.operatorKey(
            storage.isEmpty ? ["--data-dir", "\(directory)/auth"] : storage)
        let plaintext = try await EndToEnd.uploadPromptDataset(
            in: directory, version: version, grpc: "127.0.0.1:\(grpcPorts[.dataset]!)", operatorKey: operatorKey)
        let credentials = try await EndToEnd.activeDevice(base: base) {
            try DatasetEndToEndTests.lastLink(in: auth.standardError + auth.standardOutput)
        }
        let device = DeviceCredentials(machineID: credentials.machineID, secret: credentials.secret)
        let outcome = try await RankingEndToEndTests.benchmark(
            device, base: base, version: version, checksum: Array(SHA256.hash(data: plaintext)).hexEncoded,
            plaintext: plaintext, tps: 90)
        #expect(outcome["state"] as? String == "accepted")
        for _ in 0..<2 { _ = try await EndToEnd.send("GET", base + "/api/v1/benchmarks?framework=llama.cpp") }
        let secretFile = directory + "/secret"
        try credentials.secret.write(toFile: secretFile, atomically: true, encoding: .utf8)
        let download = try LeaderboardProcess(
            [
                "client", "datasets", "download", "--server", base, "--machine-id", credentials.machineID,
                "--secret-file", secretFile, "--out", directory + "/out.jsonl",
            ])
        #expect(try await download.exitStatus(within: .seconds(60)) == 0, "\(download.standardError)")
        var limited = false
        for _ in 0..<10 where !limited {
            limited = try await EndToEnd.send("GET", base + "/api/v1/devices/challenge").status == 429
        }
        #expect(limited)

        // A live board watcher, counted by its board.
        let watcher = LeaderboardClient(baseURL: try #require(URL(string: base)))
        let watching = Task {
            for try await _ in watcher.watchBoard(framework: "llama.cpp") {}
        }
        defer { watching.cancel() }
        let watched = try await eventually(within: .seconds(20)) {
            let scrape = PrometheusText(try await EndToEnd.send("GET", ops[.gateway]! + "/metrics").text)
            return scrape.value("leaderboard_websocket_clients", ["board": "\(version)/llama.cpp"]) == 1
        }
        #expect(watched)

        var scrapes: [Target: PrometheusText] = [:]
        for (target, address) in ops {
            let answer = try await EndToEnd.send("GET", address + "/metrics")
            #expect(answer.status == 200)
            #expect(answer.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true)
            scrapes[target] = PrometheusText(answer.text)
        }
        let ranking = "leaderboard.ranking.v1.RankingService"
        func at(_ target: Target, _ name: String, _ labels: [String: String] = [:]) -> Double {
            scrapes[target]?.value(name, labels) ?? 0
        }
        // RED per RPC, on both sides of the wire.
        let submit = ["grpc_service": ranking, "grpc_method": "SubmitResult", "grpc_code": "OK"]
        #expect(at(.gateway, "grpc_client_handled_total", submit) == 1)
        #expect(at(.ranking, "grpc_server_handled_total", submit) == 1)
        #expect(
            at(
                .ranking, "grpc_server_handling_seconds_count",
                ["grpc_service": ranking, "grpc_method": "SubmitResult"])
                == 1)
        #expect(
            at(
                .ranking, "grpc_client_handled_total",
                [
                    "grpc_service": "leaderboard.auth.v1.AuthService", "grpc_method": "GetDeviceStatus",
                    "grpc_code": "OK",
                ])
                >= 1)
        #expect(at(.gateway, "http_server_requests_total", ["method": "POST", "status": "201"]) >= 2)
        #expect(at(.gateway, "http_server_request_duration_seconds_count") >= 10)
        // Business figures where they happen.
        #expect(at(.ranking, "leaderboard_submissions_total", ["outcome": "accepted", "reason": "none"]) == 1)
        #expect(at(.gateway, "leaderboard_cache_lookups_total", ["result": "hit"]) >= 1)
        #expect(at(.gateway, "leaderboard_rate_limited_total", ["policy": "challenge"]) >= 1)
        #expect(at(.auth, "leaderboard_mails_total", ["outcome": "logged"]) >= 1)
        #expect(at(.dataset, "leaderboard_dataset_bytes_served_total") >= Double(plaintext.count))
        // Storage, and the process, everywhere.
        for target in [Target.auth, .dataset, .ranking, .interaction] {
            #expect(at(target, "leaderboard_db_transactions_total", ["service": target.rawValue]) >= 1, "\(target)")
            #expect(at(target, "leaderboard_db_connections_in_use", ["service": target.rawValue]) >= 0)
            #expect(at(target, "leaderboard_dependency_up", ["service": target.rawValue]) >= 1, "\(target)")
        }
        for target in Target.allCases {
            #expect(at(target, "process_resident_memory_bytes") > 1_000_000, "\(target)")
            #expect(at(target, "process_open_fds") > 3, "\(target)")
            #expect(at(target, "leaderboard_build_info", ["targets": target.rawValue]) == 1, "\(target)")
        }
        if !storage.isEmpty {
            #expect(at(.gateway, "leaderboard_redis_commands_total", ["outcome": "ok"]) >= 1)
            #expect(at(.ranking, "leaderboard_dependency_up", ["service": "ranking", "dependency": "postgres"]) == 1)
            #expect(at(.ranking, "leaderboard_dependency_up", ["service": "ranking", "dependency": "redis"]) == 1)
        }

        // The alert rules and the dashboard refer only to metrics a running system exports.
        // The certificate's expiry exists only with HTTPS (HTTPSTests checks it there).
        let exported = scrapes.values.reduce(into: Set<String>()) { $0.formUnion($1.names) }
            .union(["leaderboard_tls_certificate_expiry_timestamp_seconds"])
        let rules = try TestEnvironment.repositoryFile("deploy/prometheus/alerts.yml")
        let dashboard = try TestEnvironment.repositoryFile("deploy/grafana/leaderboard.json")
        let used = Self.metricNames(in: rules).union(Self.metricNames(in: dashboard))
        #expect(used.count >= 20)
        #expect(used.subtracting(exported).isEmpty, "not exported: \(used.subtracting(exported).sorted())")

        // One trace follows the submit: the gateway's request, its calls to auth (the signature) and ranking, and
        // ranking's own calls and SQL, each process exporting its spans to the receiver.
        struct Span: Decodable {
            var trace_id: String
            var span_id: String
            var parent_span_id: String
            var name: String
            var service: String
            var attributes: [String: JSONValue]
        }
        enum JSONValue: Decodable {
            case text(String), other
            init(from decoder: any Decoder) throws {
                self = (try? decoder.singleValueContainer().decode(String.self)).map(JSONValue.text) ?? .other
            }
        }
        func received() -> [Span] {
            let text = (try? String(contentsOfFile: spans, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").compactMap { try? JSONDecoder().decode(Span.self, from: Data($0.utf8)) }
        }
        /// Spans whose parent is not in the trace: one (the gateway's request) when every hop propagated.
        func roots(of trace: [Span]) -> [Span] {
            let ids = Set(trace.map(\.span_id))
            return trace.filter { $0.parent_span_id.isEmpty || !ids.contains($0.parent_span_id) }
        }
        var trace: [Span] = []
        let traced = try await eventually(within: .seconds(30)) {
            let all = received()
            guard
                let submit = all.first(where: {
                    $0.service == "leaderboard-ranking" && $0.name.hasSuffix("RankingService/SubmitResult")
                })
            else { return false }
            trace = all.filter { $0.trace_id == submit.trace_id }
            let services = Set(trace.map(\.service))
            return services.isSuperset(of: ["leaderboard-gateway", "leaderboard-auth", "leaderboard-ranking"])
                && trace.contains { $0.service == "leaderboard-ranking" && $0.name.hasPrefix("SQL ") }
                && roots(of: trace).count == 1
        }
        #expect(traced, "spans of the submit's trace: \(trace.map { "\($0.service) \($0.name)" })")
        // Every span but the gateway's root has its parent in the same trace: nothing was cut between processes.
        let roots = roots(of: trace)
        #expect(roots.count == 1 && roots.first?.service == "leaderboard-gateway", "roots: \(roots.map(\.name))")
        if case .text(let system)? = trace.first(where: { $0.name.hasPrefix("SQL ") })?.attributes["db.system"] {
            #expect(system == (storage.isEmpty ? "sqlite" : "postgresql"))
        } else {
            Issue.record("no SQL span with db.system")
        }
        if !storage.isEmpty { #expect(trace.contains { $0.name.hasPrefix("redis ") }) }
        // A client's traceparent is not followed: the gateway starts its own trace.
        let foreign = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        _ = try await EndToEnd.send("GET", base + "/api/v1/stats", headers: ["traceparent": foreign])
        try await Task.sleep(for: .seconds(3))
        #expect(!received().contains { $0.trace_id == "0af7651916cd43dd8448eb211c80319c" })

        for process in processes.values { #expect(try await process.stop() == 0) }
    }

    static var hasPromtool: Bool {
        TestEnvironment.requireServers || FileManager.default.isExecutableFile(atPath: "/usr/bin/promtool")
    }

    @Test("the alert rules pass promtool's check and unit tests", .enabled(if: hasPromtool))
    func alertRules() async throws {
        let directory = TestEnvironment.repositoryRoot.appendingPathComponent("deploy/prometheus").path
        let checked = try await ExternalTools.run(
            "/usr/bin/promtool", ["check", "config", directory + "/prometheus.yml"])
        #expect(checked.contains("SUCCESS"))
        let tested = try await ExternalTools.run(
            "/usr/bin/promtool", ["test", "rules", directory + "/alerts_test.yml"])
        #expect(tested.contains("SUCCESS"))
    }

    @Test("the dashboard is well formed and every query is valid PromQL", .enabled(if: hasPromtool))
    func dashboard() async throws {
        let text = try TestEnvironment.repositoryFile("deploy/grafana/leaderboard.json")
        let dashboard = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let panels = try #require(dashboard["panels"] as? [[String: Any]])
        let variables = Set(
            ((dashboard["templating"] as? [String: Any])?["list"] as? [[String: Any]] ?? []).compactMap {
                $0["name"] as? String
            })
        #expect(variables.isSuperset(of: ["datasource", "job", "instance"]))
        var ids = Set<Int>()
        var expressions: [String] = []
        for panel in panels {
            let id = try #require(panel["id"] as? Int)
            #expect(ids.insert(id).inserted, "panel id \(id) repeats")
            let grid = try #require(panel["gridPos"] as? [String: Int])
            #expect((grid["x"] ?? -1) >= 0 && (grid["x"] ?? 0) + (grid["w"] ?? 0) <= 24, "panel \(id)")
            guard panel["type"] as? String != "row" else { continue }
            #expect((panel["datasource"] as? [String: String])?["uid"] == "${datasource}", "panel \(id)")
            let targets = try #require(panel["targets"] as? [[String: Any]])
            #expect(!targets.isEmpty, "panel \(id) has no query")
            for target in targets { expressions.append(try #require(target["expr"] as? String)) }
        }
        #expect(panels.count >= 20)
        // Each query as a recording rule, Grafana's variables replaced by what they expand to: promtool parses them.
        var rules = "groups:\n  - name: dashboard\n    rules:\n"
        for (index, expression) in expressions.enumerated() {
            for variable in expression.matches(of: try Regex(#"\$([a-z_]+)"#)) {
                let name = String(expression[variable.range].dropFirst())
                #expect(variables.contains(name) || name == "__rate_interval", "undeclared $\(name)")
            }
            let concrete = expression.replacingOccurrences(of: "$__rate_interval", with: "5m")
                .replacingOccurrences(of: "$job", with: ".*").replacingOccurrences(of: "$instance", with: ".*")
            let quoted = concrete.replacingOccurrences(of: "\\", with: "\\\\")
                .replacingOccurrences(of: "\"", with: "\\\"")
            rules += "      - record: dashboard:query\(index)\n        expr: \"\(quoted)\"\n"
        }
        let file = EndToEnd.temporaryDirectory() + "-dashboard-rules.yml"
        try rules.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let checked = try await ExternalTools.run("/usr/bin/promtool", ["check", "rules", file])
        #expect(checked.contains("SUCCESS: \(expressions.count) rules found"), "\(checked)")
    }
}
