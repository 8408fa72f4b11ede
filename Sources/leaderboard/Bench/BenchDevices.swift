import ArgumentParser
import Crypto
import Foundation
import LeaderboardClient
import ServiceKit
import Synchronization

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The options of the load generators that register devices.
struct BenchServerOptions: ParsableArguments {
    @Option(help: "The gateway's base URL (loopback).") var server: String
    @Option(help: "The server's log file, where verification links are written (no SMTP).") var mailLog: String

    func target() throws -> BenchServer { try BenchServer(server: server, mailLog: mailLog) }
}

/// Where the load generators find the server: its gateway, and the log its verification emails go to (a bench
/// server runs without SMTP, so each link is a log line).
struct BenchServer {
    let base: URL
    let mailLog: String

    init(server: String, mailLog: String) throws {
        guard let base = URL(string: server), base.host != nil else { throw BenchError("--server must be a URL") }
        self.base = base
        self.mailLog = mailLog
    }

    var client: LeaderboardClient { LeaderboardClient(baseURL: base) }

    /// Host and port, for the load generators' own connections.
    func endpoint() throws -> (host: String, port: Int) {
        guard let host = base.host, let port = base.port else { throw BenchError("--server needs a host and a port") }
        return (host, port)
    }

    /// Registers, verifies and activates `count` devices as a person would, through the public API: the SDK solves
    /// each proof of work, the verification links are read from the server's log and followed.
    func activateDevices(_ count: Int, tag: String, concurrency: Int = 16) async throws -> [DeviceCredentials] {
        let client = self.client
        let registrations = Mutex<[Int: Registration]>([:])
        try await forEachConcurrently(count, concurrency: concurrency) { index in
            let hardware = Array(SHA256.hash(data: Array("\(tag)-hardware-\(index)".utf8))).hexEncoded
            let gpu = Array(SHA256.hash(data: Array("\(tag)-gpu-\(index)".utf8))).hexEncoded
            let registration = try await client.register(hardwareHash: hardware, gpuHash: gpu)
            _ = try await client.requestVerification(
                registrationCode: registration.registrationCode, email: "\(tag)-\(index)@example.org")
            registrations.withLock { $0[index] = registration }
        }
        let wanted = registrations.withLock { $0 }
        var tokens: [String: String] = [:]
        for _ in 0..<100 {
            tokens = try verificationTokens()
            if wanted.values.allSatisfy({ tokens[$0.machineID] != nil }) { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let found = tokens
        let devices = Mutex<[Int: DeviceCredentials]>([:])
        try await forEachConcurrently(count, concurrency: concurrency) { index in
            guard let registration = wanted[index], let token = found[registration.machineID] else {
                throw BenchError("no verification link in \(mailLog) for device \(index)")
            }
            var components = URLComponents(url: base, resolvingAgainstBaseURL: false)
            components?.path = "/verify/confirm"
            components?.queryItems = [URLQueryItem(name: "token", value: token)]
            guard let url = components?.url else { throw BenchError("bad base URL") }
            let (_, response) = try await URLSession.shared.data(from: url)
            guard (response as? HTTPURLResponse)?.statusCode == 200 else {
                throw BenchError("following the verification link of device \(index) failed")
            }
            let credentials = try await client.activate(
                machineID: registration.machineID, registrationCode: registration.registrationCode)
            devices.withLock { $0[index] = credentials }
        }
        return devices.withLock { found in (0..<count).compactMap { found[$0] } }
    }

    /// Verification tokens in the log by the machine id their email names (`Device: <id>` in the body); log lines
    /// may be text or JSON (where `/` is written `\/`, so the body is decoded first).
    func verificationTokens() throws -> [String: String] {
        let log = try String(contentsOfFile: mailLog, encoding: .utf8)
        var tokens: [String: String] = [:]
        for line in log.split(separator: "\n") where line.contains("confirm?token=") {
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            let text = (object?["body"] as? String).map { Substring($0) } ?? line
            guard let device = text.range(of: "Device: "), let link = text.range(of: "/verify/confirm?token=")
            else { continue }
            let machineID = text[device.upperBound...].prefix { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }
            let token = text[link.upperBound...].prefix { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }
            tokens[String(machineID)] = String(token)
        }
        return tokens
    }
}

/// A session started and reported on, ready to be submitted.
struct ReadySession: Sendable {
    let device: DeviceCredentials
    let sessionID: String
    let results: BenchmarkResults
    /// The answer to the session's dataset challenge.
    let proof: String
}

extension BenchServer {
    /// Starts a session per (device, slot) and sends one metric report matching `results`. Devices are spread over
    /// `versions` (device `d` on `versions[d % count]`); none means the latest active dataset version.
    func readySessions(
        devices: [DeviceCredentials], perDevice: Int, versions: [String] = [], concurrency: Int = 16,
        describe: @escaping @Sendable (Int) -> (framework: String, gpu: String, tps: Double)
    ) async throws -> [ReadySession] {
        guard let first = devices.first else { return [] }
        // Sessions prove they hold the dataset: each version is downloaded once, as every benchmark client holds it.
        var datasets: [(version: String, checksum: String, duration: Double, file: String)] = []
        defer { for dataset in datasets { try? FileManager.default.removeItem(atPath: dataset.file) } }
        for requested in versions.isEmpty ? [nil] : versions.map(Optional.some) {
            let dataset = try await client.dataset(requested)
            guard let checksum = dataset.manifest?.plaintextSha256 else { throw BenchError("no active dataset") }
            let file = FileManager.default.temporaryDirectory.appendingPathComponent(
                "leaderboard-bench-\(dataset.version)-\(UUID().uuidString.prefix(8))"
            ).path
            datasets.append((dataset.version, checksum, Double(max(1, dataset.minDurationSeconds)), file))
            _ = try await LeaderboardClient(baseURL: base, credentials: first).download(
                version: dataset.version, to: file)
        }
        let sessions = Mutex<[Int: ReadySession]>([:])
        let base = self.base
        let chosen = datasets
        try await forEachConcurrently(devices.count * perDevice, concurrency: concurrency) { index in
            let device = devices[index / perDevice]
            let dataset = chosen[(index / perDevice) % chosen.count]
            let client = LeaderboardClient(baseURL: base, credentials: device)
            let shape = describe(index)
            let session = try await client.startSession(
                BenchRun.sessionStart(
                    version: dataset.version, checksum: dataset.checksum, framework: shape.framework, gpu: shape.gpu,
                    model: "bench-8b", displayName: "bench \(index / perDevice)"))
            let run = BenchRun(tps: shape.tps, duration: dataset.duration)
            try await client.report(session: session.sessionID, sample: run.sample)
            let proof = try session.datasetChallenge?.proof(plaintextFile: dataset.file) ?? ""
            sessions.withLock {
                $0[index] = ReadySession(
                    device: device, sessionID: session.sessionID, results: run.results, proof: proof)
            }
        }
        return sessions.withLock { ready in (0..<devices.count * perDevice).compactMap { ready[$0] } }
    }
}

/// The run a load generator's client claims for a session: eight streams of half-second requests (figures an
/// RTX 4090 or better reaches for an 8B model at Q4), reported once and submitted at the same tokens per second.
struct BenchRun: Sendable {
    let tps: Double
    let duration: Double

    var latency: Double { min(0.5, duration / 2) }

    /// The one metric report.
    var sample: MetricSample {
        MetricSample(cpuUsage: 40, memoryUsage: 50, gpuUsage: 90, tps: tps, latency: latency, concurrentCount: 8)
    }

    /// The final result.
    var results: BenchmarkResults {
        let requests = max(1, Int(8 * duration / latency))
        var results = BenchmarkResults(
            tps: tps, avgLatency: latency, p50Latency: latency, p95Latency: latency * 1.2, p99Latency: latency * 1.4,
            concurrentCount: 8, totalRequests: requests, successfulRequests: requests, duration: duration)
        results.totalTokens = Int((tps * duration).rounded())
        return results
    }

    /// A session of an 8B model at Q4 on the active dataset.
    static func sessionStart(
        version: String, checksum: String, framework: String, gpu: String, model: String, displayName: String
    ) -> SessionStart {
        var start = SessionStart(
            datasetVersion: version, datasetChecksum: checksum, framework: framework, modelName: model,
            modelParams: 8, gpuName: gpu, concurrentCount: 8)
        start.displayName = displayName
        start.quantization = "q4_k_m"
        return start
    }
}

extension ReadySession {
    /// The submit's body, as the SDK sends it.
    var submitBody: [String: Any] { ["results": results.json, "metrics": [Any](), "dataset_proof": proof] }

    /// The signed submit request, signed now (the signature carries the time and a fresh nonce).
    func submitRequest(base: URL) -> (path: String, headers: [(String, String)], body: [UInt8]) {
        let path = "/api/v1/benchmarks/\(sessionID)/submit"
        let body = (try? JSONSerialization.data(withJSONObject: submitBody, options: [.sortedKeys])) ?? Data()
        var headers = device.signatureHeaders(
            method: "POST", url: URL(string: path, relativeTo: base)?.absoluteURL ?? base, body: body
        )
        .map { ($0.key, $0.value) }
        headers.append(("Content-Type", "application/json"))
        headers.append(("Idempotency-Key", UUID().uuidString))
        return (path, headers, Array(body))
    }
}
