import Foundation
import Hummingbird
import HummingbirdTesting
import ServiceKit
import Synchronization
import TestSupport
import Testing

@testable import Gateway

@Suite("OpenAPI document", .timeLimit(.minutes(10)), .enabled(if: ExternalTools.hasPythonPackages))
struct OpenAPITests {
    @Test("/openapi.json describes exactly the routes the router serves, each once")
    func everyRouteDescribed() async throws {
        let served = Mutex<Set<String>>([])
        try await AuthGateway.with(
            .sqlite,
            extend: { router in served.withLock { $0 = Set(router.routes.map { "\($0.method) \($0.path)" }) } }
        ) { gateway in
            let reply = try await gateway.request(.get, "/openapi.json")
            #expect(reply.status == .ok)
            #expect(reply.json["openapi"] as? String == "3.1.0")
            let paths = try #require(reply.json["paths"] as? [String: [String: Any]])
            var described = Set<String>()
            for (path, item) in paths {
                for method in item.keys { described.insert("\(method.uppercased()) \(path)") }
            }
            let routes = served.withLock { $0 }
            #expect(routes.count > 50)
            #expect(routes.subtracting(described).sorted() == [], "routes the document misses")
            #expect(described.subtracting(routes).sorted() == [], "operations no route serves")
            let ids = paths.values.flatMap {
                $0.values.compactMap { ($0 as? [String: Any])?["operationId"] as? String }
            }
            #expect(Set(ids).count == ids.count)
        }
    }

    @Test(
        "schemathesis: at least 2,000 generated requests, no 5xx, every answer matches the document",
        arguments: StorageBackend.available)
    func fuzz(_ backend: StorageBackend) async throws {
        var policies = AuthGateway.lenient
        policies.signed = RateLimitPolicy(name: "signed", limit: 100_000, period: .seconds(60))
        try await AuthGateway.with(backend, policies: policies, live: true) { gateway in
            // Something to find: an active dataset, a record with a comment.
            let dataset = try await RankingRoutesTests.dataset(gateway)
            let device = try await gateway.activeDevice()
            let client = BenchmarkClient(gateway: gateway, device: device)
            let submitted = try await client.run(
                version: dataset.version, checksum: dataset.checksum, tps: 120, key: UUID().uuidString)
            try #require(submitted.status == .created, "\(submitted.text)")
            let recordID = try #require(submitted["record_id"])
            _ = try await gateway.request(
                .post, "/api/v1/benchmarks/\(recordID)/comments", json: ["content": "first"])
            let admin = try await gateway.adminKey()
            let port = try #require(gateway.client.port)

            let report = FileManager.default.temporaryDirectory.appendingPathComponent("st-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: report) }
            let outcome = try await Schemathesis.run(
                url: "http://127.0.0.1:\(port)/openapi.json",
                arguments: [
                    "--header", "Authorization:\(admin[.authorization] ?? "")",
                    "--checks",
                    "not_a_server_error,status_code_conformance,content_type_conformance,"
                        + "response_schema_conformance",
                    "--max-examples", "30", "--workers", "1", "--request-timeout", "20",
                    "--report", "junit", "--report-junit-path", report.appendingPathComponent("junit.xml").path,
                    "--suppress-health-check", "all", "--no-color",
                ],
                environment: ["SIGN_DEVICE_ID": device.machineID, "SIGN_DEVICE_SECRET": device.secret],
                workDirectory: report)
            let cases = outcome.casesGenerated
            print("schemathesis (\(backend)):\n" + outcome.summary)
            #expect(outcome.status == 0, "schemathesis failed:\n\(outcome.output.suffix(12000))")
            #expect(cases >= 2000, "only \(cases) cases were generated:\n\(outcome.output.suffix(3000))")
        }
    }
}

/// The schemathesis command-line tool from the test venv (scripts/test installs it next to TEST_PYTHON).
enum Schemathesis {
    struct Outcome {
        let status: Int32
        let output: String

        /// The closing summary (everything from its heading on).
        var summary: String {
            guard let start = output.range(of: "SUMMARY", options: .backwards) else {
                return String(output.suffix(2000))
            }
            return String(output[start.lowerBound...])
        }

        /// "N generated" from the summary line `Test cases: N generated, …`.
        var casesGenerated: Int {
            guard let line = output.split(separator: "\n").last(where: { $0.contains("generated") }),
                let range = line.range(of: #"\d+ generated"#, options: .regularExpression)
            else { return 0 }
            return Int(line[range].split(separator: " ")[0]) ?? 0
        }
    }

    /// Runs it to the end of its output (``ChildProcess``: no concurrency thread blocked while it runs).
    static func run(
        url: String, arguments: [String], environment extra: [String: String], workDirectory: URL
    ) async throws -> Outcome {
        try FileManager.default.createDirectory(at: workDirectory, withIntermediateDirectories: true)
        var environment = ProcessInfo.processInfo.environment
        environment["SCHEMATHESIS_TELEMETRY"] = "false"
        // Signs the device routes (Tests/python/schemathesis_hooks.py).
        environment["SCHEMATHESIS_HOOKS"] = "schemathesis_hooks"
        environment["PYTHONPATH"] = ExternalTools.pythonScripts.path
        environment.merge(extra) { _, new in new }
        let executable = URL(fileURLWithPath: ExternalTools.python).deletingLastPathComponent()
            .appendingPathComponent("schemathesis")
        let child = try ChildProcess(
            executable.path, ["run", url] + arguments, environment: environment, currentDirectory: workDirectory)
        // A hang guard, not a speed check: it took 216 s under the full suite here, and a CI machine can be slower.
        let status = try await child.exitStatus(within: .seconds(420))
        return Outcome(status: status, output: child.standardOutput + child.standardError)
    }
}
