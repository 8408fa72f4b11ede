import Crypto
import Foundation
import LeaderboardClient
import ServiceKit
import TestSupport
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Benchmark sessions against the real binary: a dataset uploaded by the CLI, two devices benchmarking over signed
/// REST, the board, the operator commands, and the board warmed from the database after a restart.
@Suite(
    "Ranking through the real binary", .serialized, .timeLimit(.minutes(5)),
    .enabled(if: ExternalTools.hasPythonPackages))
struct RankingEndToEndTests {
    enum Storage: String, CustomTestStringConvertible {
        case embedded
        case production
        var testDescription: String { rawValue }
    }

    static var storages: [Storage] { TestEnvironment.hasPostgres ? [.embedded, .production] : [.embedded] }

    static func signed(_ device: DeviceCredentials, _ method: String, _ url: String, json: [String: Any] = [:])
        async throws -> (status: Int, headers: [String: String], json: [String: Any], text: String)
    {
        let body = method == "GET" ? Data() : try JSONSerialization.data(withJSONObject: json, options: .sortedKeys)
        let headers = device.signatureHeaders(method: method, url: try #require(URL(string: url)), body: body)
        return try await EndToEnd.send(method, url, body: body.isEmpty ? nil : body, headers: headers)
    }

    /// A session with three quick reports and a submit claiming 2 s, answering the dataset challenge from
    /// `plaintext`.
    static func benchmark(
        _ device: DeviceCredentials, base: String, version: String, checksum: String, plaintext: Data, tps: Double,
        framework: String = "llama.cpp", displayName: String = "e2e", model: String = "qwen2.5-7b"
    ) async throws -> [String: Any] {
        let started = try await signed(
            device, "POST", base + "/api/v1/benchmarks/start",
            json: [
                "dataset_version": version, "dataset_checksum": checksum, "framework": framework,
                "model_name": model, "model_params": 7.6, "gpu_config": ["name": "RTX 3090", "memory_gb": 24],
                "concurrent_count": 2, "display_name": displayName, "quantization": "q4_k_m",
            ])
        #expect(started.status == 201, "\(started.text)")
        let session = try #require(started.json["session_id"] as? String)
        let challenge = try JSONDecoder().decode(
            DatasetChallenge.self,
            from: try JSONSerialization.data(withJSONObject: try #require(started.json["dataset_challenge"])))
        let metrics: [String: Any] = [
            "system": ["cpu_usage": 30, "memory_usage": 50, "gpu_usage": 90],
            "test": ["tps": tps, "latency": 0.8, "concurrent_count": 2],
        ]
        for _ in 0..<3 {
            let reported = try await signed(
                device, "POST", base + "/api/v1/benchmarks/\(session)/metrics", json: metrics)
            #expect(reported.status == 202, "\(reported.text)")
        }
        let submitted = try await signed(
            device, "POST", base + "/api/v1/benchmarks/\(session)/submit",
            json: [
                "results": [
                    "tps": tps, "avg_latency": 0.8, "p50_latency": 0.7, "p99_latency": 1.6, "concurrent_count": 2,
                    "total_requests": 5, "successful_requests": 5, "total_tokens": Int(tps * 2), "duration": 2,
                ],
                "metrics": [metrics], "dataset_proof": try challenge.proof(plaintext: plaintext),
            ])
        #expect(submitted.status == 201, "\(submitted.text)")
        return submitted.json
    }

    @Test(
        "sessions land on the board; admin commands work; a restart warms the board from the database",
        arguments: storages)
    func sessions(_ storage: Storage) async throws {
        let directory = EndToEnd.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let version = "e2e-\(UUID().uuidString.prefix(8).lowercased())"
        // Reports every 10 s expected: the quick reports and the 2 s claim below pass the cadence rules however
        // slowly a loaded machine answers (three intervals of silence are allowed).
        let settings =
            ["--data-dir", directory + "/data", "--pow-difficulty", "8", "--ranking-metrics-interval", "10"]
            + (storage == .production ? try await EndToEnd.productionSettings() : [])

        var server = try LeaderboardProcess(["serve"] + ephemeral + settings)
        var base = try await server.httpBase()
        var grpc = "127.0.0.1:\(try await server.grpcPort())"
        _ = try await EndToEnd.waitFor(base + "/health/ready", status: 200)
        let operatorKey = try await EndToEnd.operatorKey(settings)
        let plaintext = try await EndToEnd.uploadPromptDataset(
            in: directory, version: version, grpc: grpc, operatorKey: operatorKey)
        let checksum = Array(SHA256.hash(data: plaintext)).hexEncoded

        var records: [String] = []
        var devices: [DeviceCredentials] = []
        for tps in [80.0, 160.0] {
            let device = try await EndToEnd.activeDevice(base: base) {
                try DatasetEndToEndTests.lastLink(in: server.standardError + server.standardOutput)
            }
            devices.append(DeviceCredentials(machineID: device.machineID, secret: device.secret))
            let outcome = try await Self.benchmark(
                devices[devices.count - 1], base: base, version: version, checksum: checksum,
                plaintext: plaintext, tps: tps)
            #expect(outcome["state"] as? String == "accepted" && outcome["rank"] as? Int == 1)
            records.append(try #require(outcome["record_id"] as? String))
        }
        let board = try await EndToEnd.send("GET", base + "/api/v1/benchmarks?framework=llama.cpp")
        #expect(board.status == 200, "\(board.text)")
        let listed = (board.json["records"] as? [[String: Any]])?.map { $0["record_id"] as? String }
        #expect(listed == [records[1], records[0]])

        // InteractionService heard the board's events: the first device was told it entered at #1, then fell to #2.
        let told = try await eventually(within: .seconds(10)) {
            let reply = try await Self.signed(devices[0], "GET", base + "/api/v1/notifications")
            let summaries = (reply.json["notifications"] as? [[String: Any]])?.compactMap { $0["summary"] as? String }
            return summaries == ["Your record entered the board at #1.", "Your record moved from #1 to #2."]
        }
        #expect(told)

        let reviews = try LeaderboardProcess(
            ["admin", "reviews", "list", "--grpc-address", grpc, "--operator-key", operatorKey])
        #expect(try await reviews.exitStatus() == 0 && reviews.standardOutput.contains("no reviews"))
        let rebuild = try LeaderboardProcess(
            [
                "admin", "ranking", "rebuild", "--dataset-version", version, "--grpc-address", grpc, "--operator-key",
                operatorKey,
            ])
        #expect(try await rebuild.exitStatus() == 0, "\(rebuild.standardError)")
        #expect(rebuild.standardOutput.contains("2 records indexed"))
        #expect(try await server.stop() == 0)

        // A new process starts with an empty in-process index (embedded) or the same Redis: either way the board
        // and ranks are the database's.
        server = try LeaderboardProcess(["serve"] + ephemeral + settings)
        base = try await server.httpBase()
        grpc = "127.0.0.1:\(try await server.grpcPort())"
        _ = try await EndToEnd.waitFor(base + "/health/ready", status: 200)
        let ranked = try await eventually(within: .seconds(20)) {
            let record = try await EndToEnd.send("GET", base + "/api/v1/benchmarks/\(records[0])")
            return record.json["rank"] as? Int == 2
        }
        #expect(ranked)
        let stats = try await EndToEnd.send("GET", base + "/api/v1/stats")
        #expect(stats.json["records"] as? Int == 2 && stats.json["dataset_version"] as? String == version)
        #expect(try await server.stop() == 0)
    }
}

extension EndToEnd {
    /// A one-prompt dataset (a new prompt each time) written into `directory`, uploaded as `version` and activated
    /// through the CLI; returns its plaintext.
    static func uploadPromptDataset(in directory: String, version: String, grpc: String, operatorKey: String)
        async throws -> Data
    {
        let input = directory + "/prompts-\(version).jsonl"
        let plaintext = Data("{\"prompt\": \"\(UUID().uuidString)\"}\n".utf8)
        try plaintext.write(to: URL(fileURLWithPath: input))
        let upload = try LeaderboardProcess(
            [
                "admin", "datasets", "upload", input, "--version", version, "--activate", "--grpc-address", grpc,
                "--operator-key", operatorKey,
            ])
        #expect(try await upload.exitStatus(within: .seconds(60)) == 0, "\(upload.standardError.suffix(500))")
        return plaintext
    }
}
