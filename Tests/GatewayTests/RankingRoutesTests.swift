import Crypto
import Foundation
import HTTPTypes
import ServiceKit
import Synchronization
import TestSupport
import Testing

/// A benchmark client's side of a session over REST: every call signed (v2) by `Tests/python/sign.py`.
struct BenchmarkClient {
    let gateway: AuthGateway
    let device: (machineID: String, secret: String)

    func call(_ method: HTTPRequest.Method, _ uri: String, _ json: [String: Any]? = nil, raw: String? = nil)
        async throws -> AuthGateway.Reply
    {
        let body =
            try raw ?? json.map { String(decoding: try JSONSerialization.data(withJSONObject: $0), as: UTF8.self) }
            ?? ""
        return try await gateway.signed(
            method, uri, body: body, version: 2, machineID: device.machineID, secret: device.secret)
    }

    func start(version: String, checksum: String, framework: String = "vLLM") async throws -> String {
        let reply = try await call(
            .post, "/api/v1/benchmarks/start",
            [
                "dataset_version": version, "dataset_checksum": checksum, "framework": framework,
                "model_name": "llama-3-8b", "model_params": 8, "framework_config": ["tp": 1],
                "gpu_config": ["name": "RTX 4090", "count": 1, "memory_gb": 24, "driver": "550"],
                "concurrent_count": 4, "display_name": "rig \(device.machineID.prefix(4))",
            ])
        try #require(reply.status == .created, "\(reply.text)")
        return try #require(reply["session_id"])
    }

    /// Plaintexts of the dataset versions the tests uploaded, so clients can answer their sessions' challenges.
    static let plaintexts = Mutex<[String: [UInt8]]>([:])

    /// The answer to a session's dataset challenge, as a device holding the dataset computes it.
    func proof(session: String) async throws -> String {
        let status = try await call(.get, "/api/v1/benchmarks/\(session)/status")
        let challenge = try #require(status.json["dataset_challenge"] as? [String: Any], "\(status.text)")
        let version = try #require(status["dataset_version"])
        let plaintext = try #require(Self.plaintexts.withLock { $0[version] })
        let nonce = try #require(
            (challenge["nonce"] as? String).flatMap { [UInt8](hexEncoded: $0) })
        var mac = HMAC<SHA256>(key: SymmetricKey(data: nonce))
        for span in try #require(challenge["spans"] as? [[String: Int]]) {
            let offset = try #require(span["offset"])
            let length = try #require(span["length"])
            mac.update(data: plaintext[offset..<(offset + length)])
        }
        return Array(mac.finalize()).hexEncoded
    }

    static func metrics(tps: Double) -> [String: Any] {
        [
            "system": ["cpu_usage": 40, "memory_usage": 60, "gpu_usage": 95, "power_watts": 300],
            "test": ["tps": tps, "latency": 0.5, "concurrent_count": 4],
        ]
    }

    /// Four streams of 0.5 s requests for `duration` seconds at `tps` generated tokens a second.
    static func submitBody(tps: Double, proof: String, duration: Double = 2) -> [String: Any] {
        [
            "results": [
                "tps": tps, "avg_latency": 0.5, "p50_latency": 0.45, "p95_latency": 0.8, "p99_latency": 1.1,
                "concurrent_count": 4, "total_requests": 16, "successful_requests": 15, "failed_requests": 1,
                "total_tokens": Int((tps * duration).rounded()), "duration": duration, "score": 99.9,
            ],
            "metrics": [metrics(tps: tps)],
            "dataset_proof": proof,
        ]
    }

    /// The submit body as sent (keys sorted, so a retry sends the same bytes).
    static func submitText(tps: Double, proof: String) throws -> String {
        String(
            decoding: try JSONSerialization.data(
                withJSONObject: submitBody(tps: tps, proof: proof), options: .sortedKeys),
            as: UTF8.self)
    }

    /// Starts, reports three times (the test configuration expects a report a second) and submits.
    func run(version: String, checksum: String, tps: Double, key: String) async throws -> AuthGateway.Reply {
        let session = try await start(version: version, checksum: checksum)
        for _ in 0..<3 {
            let report = try await call(.post, "/api/v1/benchmarks/\(session)/metrics", Self.metrics(tps: tps))
            try #require(report.status == .accepted, "\(report.text)")
        }
        return try await submit(
            session: session, body: try Self.submitText(tps: tps, proof: try await proof(session: session)), key: key)
    }

    func submit(session: String, body: String, key: String?) async throws -> AuthGateway.Reply {
        let time = "\(Int(Date().timeIntervalSince1970))"
        let nonce = UUID().uuidString.lowercased()
        let path = "/api/v1/benchmarks/\(session)/submit"
        let signature = try await ExternalTools.run(
            ExternalTools.python,
            [
                ExternalTools.pythonScripts.appendingPathComponent("sign.py").path, device.secret, "2",
                device.machineID,
                "POST", path, "", time, nonce,
            ], input: Data(body.utf8))
        var headers: HTTPFields = [:]
        headers[HTTPField.Name("X-Device-ID")!] = device.machineID
        headers[HTTPField.Name("X-Request-Time")!] = time
        headers[HTTPField.Name("X-Nonce")!] = nonce
        headers[HTTPField.Name("X-Signature")!] = signature
        headers[HTTPField.Name("X-Signature-Version")!] = "2"
        if let key { headers[HTTPField.Name("Idempotency-Key")!] = key }
        return try await gateway.request(.post, path, raw: body, headers: headers)
    }
}

@Suite("Ranking routes through the gateway", .timeLimit(.minutes(4)), .enabled(if: ExternalTools.hasPythonPackages))
struct RankingRoutesTests {
    /// A fresh active dataset version (unique, so boards in a shared Redis never mix) and its checksum.
    static func dataset(_ gateway: AuthGateway) async throws -> (version: String, checksum: String) {
        let version = "rk-\(UUID().uuidString.prefix(8).lowercased())"
        let data = Array("prompt\n".utf8) + Array(UUID().uuidString.utf8)
        let uploaded = try await gateway.upload(
            "version=\(version)&activate=true", data, headers: try await gateway.adminKey())
        try #require(uploaded.status == .created, "\(uploaded.text)")
        BenchmarkClient.plaintexts.withLock { $0[version] = data }
        return (version, Array(SHA256.hash(data: data)).hexEncoded)
    }

    @Test(
        "a full session lands on the board with the right rank; retries replay; records, stats and exports agree",
        arguments: StorageBackend.available)
    func fullSession(_ backend: StorageBackend) async throws {
        try await AuthGateway.with(backend) { gateway in
            let dataset = try await Self.dataset(gateway)
            let slow = BenchmarkClient(gateway: gateway, device: try await gateway.activeDevice())
            let fast = BenchmarkClient(gateway: gateway, device: try await gateway.activeDevice())

            let first = try await slow.run(version: dataset.version, checksum: dataset.checksum, tps: 100, key: "k1")
            #expect(first.status == .created, "\(first.text)")
            #expect(first["state"] == "accepted" && first.json["rank"] as? Int == 1)
            #expect(first.json["score"] as? Double != 99.9)
            let second = try await fast.run(version: dataset.version, checksum: dataset.checksum, tps: 400, key: "k1")
            #expect(second.status == .created && second.json["rank"] as? Int == 1, "\(second.text)")
            let slowID = try #require(first["record_id"])
            let fastID = try #require(second["record_id"])

            // The same key and body replay the answer; another body under the key is a conflict.
            let session = try #require(first["session_id"])
            let body = try BenchmarkClient.submitText(tps: 100, proof: try await slow.proof(session: session))
            let again = try await slow.submit(session: session, body: body, key: "k1")
            #expect(again.status == .created && again["record_id"] == slowID, "\(again.text)")
            #expect(again.headers[HTTPField.Name("Idempotent-Replayed")!] == "true")
            expectProblem(
                try await slow.submit(session: session, body: body + " ", key: "k1"), .conflict,
                "idempotency_key_reused")
            expectProblem(try await slow.submit(session: session, body: body, key: nil), .conflict, "already_submitted")
            expectProblem(
                try await slow.call(.post, "/api/v1/benchmarks/\(session)/metrics", BenchmarkClient.metrics(tps: 1)),
                .badRequest, "session_not_running")
            let status = try await slow.call(.get, "/api/v1/benchmarks/\(session)/status")
            #expect(status["state"] == "accepted" && status["record_id"] == slowID)

            let board = try await gateway.request(.get, "/api/v1/benchmarks")
            let records = try #require(board.json["records"] as? [[String: Any]])
            #expect(records.map { $0["record_id"] as? String } == [fastID, slowID])
            #expect(records.map { $0["rank"] as? Int } == [1, 2])
            #expect(board.json["total"] as? Int == 2)
            #expect(records.first?["framework"] as? String == "vllm")
            #expect((records.first?["gpu_config"] as? [String: Any])?["name"] as? String == "RTX 4090")

            let record = try await gateway.request(.get, "/api/v1/benchmarks/\(slowID)")
            #expect(record.json["rank"] as? Int == 2 && record.json["percentile"] as? Double == 50)
            let framework = try await gateway.request(
                .get, "/api/v1/benchmarks/frameworks/vllm?dataset_version=\(dataset.version)")
            #expect((framework.json["records"] as? [[String: Any]])?.count == 2)
            let similar = try await gateway.request(.get, "/api/v1/benchmarks/\(slowID)/similar")
            #expect((similar.json["records"] as? [[String: Any]])?.map { $0["record_id"] as? String } == [fastID])
            let stats = try await gateway.request(.get, "/api/v1/stats")
            #expect(stats.json["records"] as? Int == 2 && stats.json["dataset_version"] as? String == dataset.version)

            let csv = try await gateway.request(.get, "/api/v1/benchmarks/export?format=csv")
            let lines = csv.text.split(separator: "\r\n")
            #expect(lines.count == 3 && lines[0].hasPrefix("rank,record_id") && lines[1].hasPrefix("1,\(fastID),"))
            let json = try await gateway.request(.get, "/api/v1/benchmarks/export?format=json")
            let exported = try JSONSerialization.jsonObject(with: Data(json.text.utf8)) as? [[String: Any]]
            #expect(exported?.map { $0["record_id"] as? String } == [fastID, slowID])

            expectProblem(
                try await fast.call(.post, "/api/v1/benchmarks/\(slowID)/unpublish"), .forbidden, "not_record_owner")
            let rebuilt = try await gateway.request(
                .post, "/api/v1/admin/ranking/rebuild", headers: try await gateway.adminKey())
            #expect(rebuilt.json["records_indexed"] as? Int == 2)
            #expect(try await fast.call(.delete, "/api/v1/benchmarks/\(fastID)").status == .noContent)
            let after = try await gateway.request(.get, "/api/v1/benchmarks/\(slowID)")
            #expect(after.json["rank"] as? Int == 1)
        }
    }

    @Test("bad input gets a problem with a clear code and changes nothing")
    func badInput() async throws {
        try await AuthGateway.with(.sqlite) { gateway in
            let dataset = try await Self.dataset(gateway)
            let client = BenchmarkClient(gateway: gateway, device: try await gateway.activeDevice())
            let start = "/api/v1/benchmarks/start"
            expectProblem(try await gateway.request(.post, start, json: [:]), .unauthorized, "missing_signature")
            expectProblem(try await client.call(.post, start, raw: "{\"framework\": "), .badRequest, "invalid_json")
            expectProblem(try await client.call(.post, start, ["framework": "vllm"]), .badRequest, "missing_field")
            var body: [String: Any] = [
                "dataset_version": dataset.version, "dataset_checksum": dataset.checksum, "framework": "vllm",
                "model_name": "m", "model_params": "NaN", "gpu_config": ["name": "g"], "concurrent_count": 1,
            ]
            expectProblem(try await client.call(.post, start, body), .badRequest, "invalid_field_type")
            body["model_params"] = 7
            body["concurrent_count"] = 1.5
            expectProblem(try await client.call(.post, start, body), .badRequest, "invalid_field_type")
            body["concurrent_count"] = 0
            expectProblem(try await client.call(.post, start, body), .badRequest, "invalid_session")
            body["concurrent_count"] = 1
            body["dataset_checksum"] = String(repeating: "0", count: 64)
            expectProblem(try await client.call(.post, start, body), .badRequest, "dataset_checksum_mismatch")

            let unknown = "/api/v1/benchmarks/\(String(repeating: "f", count: 32))"
            expectProblem(
                try await client.call(.post, "\(unknown)/metrics", BenchmarkClient.metrics(tps: 1)), .notFound,
                "unknown_session")
            let session = try await client.start(version: dataset.version, checksum: dataset.checksum)
            var metrics = BenchmarkClient.metrics(tps: 10)
            metrics["system"] = ["cpu_usage": 140, "memory_usage": 1, "gpu_usage": 1]
            expectProblem(
                try await client.call(.post, "/api/v1/benchmarks/\(session)/metrics", metrics), .badRequest,
                "invalid_metric")
            metrics["system"] = "busy"
            expectProblem(
                try await client.call(.post, "/api/v1/benchmarks/\(session)/metrics", metrics), .badRequest,
                "invalid_field_type")

            // A rejected submit explains every failed rule.
            let rejected = try await client.call(
                .post, "/api/v1/benchmarks",
                BenchmarkClient.submitBody(tps: 100, proof: String(repeating: "0", count: 64), duration: 5000)
                    .merging(["session_id": session]) { $1 })
            expectProblem(rejected, .unprocessableContent, "submission_rejected")
            let reasons = (rejected.json["reasons"] as? [[String: String]])?.compactMap { $0["code"] } ?? []
            // 16 requests cannot have made 500,000 tokens in 0.5 s each on one RTX 4090, either.
            #expect(
                Set(reasons) == [
                    "duration_exceeds_session", "metrics_missing", "dataset_proof_invalid", "exceeds_physical_bound",
                ], "\(rejected.text)")
            #expect(rejected["session_id"] == session)

            expectProblem(
                try await gateway.request(.get, "/api/v1/benchmarks?cursor=%%%"), .badRequest, "invalid_cursor")
            expectProblem(
                try await gateway.request(.get, "/api/v1/benchmarks?limit=1000"), .badRequest, "invalid_limit")
            expectProblem(
                try await gateway.request(.get, "/api/v1/benchmarks?model_params_min=-1"), .badRequest, "invalid_filter"
            )
            expectProblem(try await gateway.request(.get, unknown), .notFound, "record_not_found")
            expectProblem(
                try await gateway.request(.get, "/api/v1/benchmarks/export?format=xml"), .badRequest, "invalid_format")
            expectProblem(
                try await gateway.request(.get, "/api/v1/stats?dataset_version=nope"), .notFound,
                "unknown_dataset_version")
            expectProblem(try await gateway.request(.get, "/api/v1/admin/reviews"), .unauthorized, "missing_api_key")
            #expect(try await gateway.request(.get, "/api/v1/benchmarks").json["total"] as? Int == 0)
        }
    }
}
