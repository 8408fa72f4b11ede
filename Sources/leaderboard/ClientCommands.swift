import ArgumentParser
import Crypto
import Foundation
import LeaderboardClient
import ServiceKit

/// `leaderboard client …`: the public REST API as a benchmark client uses it, through the LeaderboardClient SDK.
/// A device's identity lives in a credentials file (JSON, mode 0600) that `register` creates and `activate`
/// completes with the secret; every other command reads it.
struct ClientCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "client",
        abstract: "Use a leaderboard server as a benchmark client does.",
        subcommands: [
            Register.self, Activate.self, ClientDatasetsCommand.self, RunSynthetic.self, Submit.self, Board.self,
            Records.self, DSMKey.self,
        ]
    )

    struct Register: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register this device and have a verification link emailed; then open it and run activate.")

        @OptionGroup var device: DeviceOptions

        @Option(help: "Where the verification link is sent.")
        var email: String

        @Option(name: .customLong("hardware-hash"), help: "The device's hardware hash (default: from /etc/machine-id).")
        var hardwareHash: String?

        @Option(name: .customLong("gpu-hash"), help: "The GPU's hash (default: the hardware hash).")
        var gpuHash: String?

        func run() async throws {
            let client = try device.client(requireSecret: false)
            let hardware = hardwareHash ?? Self.machineHash()
            try await reportingFailures {
                let registration = try await client.register(hardwareHash: hardware, gpuHash: gpuHash ?? hardware)
                var file = StoredDevice(server: client.http.baseURL.absoluteString, machineID: registration.machineID)
                file.registrationCode = registration.registrationCode
                try file.save(to: device.credentialsPath)
                let verification = try await client.requestVerification(
                    registrationCode: registration.registrationCode, email: email)
                print("registered \(registration.machineID) (registration code \(registration.registrationCode))")
                print(
                    "a verification link was sent to \(email)"
                        + (verification.linkExpiresAt.map { " (valid until \($0))" } ?? "")
                        + "; open it, then run: leaderboard client activate --credentials \(device.credentialsPath)")
            }
        }

        /// SHA-256 of the OS machine id, so the same machine registers with the same hash.
        static func machineHash() -> String {
            let id = (try? String(contentsOfFile: "/etc/machine-id", encoding: .utf8)) ?? UUID().uuidString
            return Array(SHA256.hash(data: Data(id.trimmingCharacters(in: .whitespacesAndNewlines).utf8))).hexEncoded
        }
    }

    struct Activate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Activate the registered, verified device: its secret is stored in the credentials file.")

        @OptionGroup var device: DeviceOptions

        func run() async throws {
            var file = try StoredDevice.load(from: device.credentialsPath)
            guard let code = file.registrationCode else {
                throw ValidationError("\(device.credentialsPath) has no registration code; run register first")
            }
            let client = try device.client(requireSecret: false)
            try await reportingFailures {
                let credentials = try await client.activate(machineID: file.machineID, registrationCode: code)
                file.secret = credentials.secret
                try file.save(to: device.credentialsPath)
                print("activated \(credentials.machineID); its secret is in \(device.credentialsPath)")
            }
        }
    }

    struct RunSynthetic: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run-synthetic",
            abstract: "Run a benchmark session with generated metrics and submit it (for demos and load).")

        @OptionGroup var device: DeviceOptions

        @Option(name: .customLong("dataset-version"), help: "The dataset version (default: the active one).")
        var datasetVersion: String?

        @Option(help: "The inference framework.")
        var framework: String = "llama.cpp"

        @Option(help: "The model's name.")
        var model: String = "synthetic-7b"

        @Option(help: "The model's size in billions of parameters.")
        var params: Double = 7

        @Option(help: "The GPU's name, as nvidia-smi prints it (the server checks results against what it can do).")
        var gpu: String = "NVIDIA GeForce RTX 4090"

        @Option(help: "The weights' precision (fp16, q8_0, q4_k_m, awq, …).")
        var quantization: String = "q4_k_m"

        @Option(help: "Generated tokens per second the run reports, all concurrent requests together.")
        var tps: Double = 100

        @Option(help: "Concurrent requests.")
        var concurrency: Int = 4

        @Option(help: "Seconds the run lasts: it reports a sample every metrics interval the server asks for.")
        var duration: Double = 30

        @Option(name: .customLong("display-name"), help: "The name shown on the board.")
        var displayName: String = ""

        @Option(
            name: .customLong("dataset-file"),
            help:
                "Where the decrypted dataset is kept (downloaded, or resumed, when missing or stale); the session's dataset challenge is answered from it. Default: a file in the temporary directory."
        )
        var datasetFile: String?

        /// Tokens each simulated request generates.
        static let tokensPerRequest = 256.0

        func validate() throws {
            guard tps > 0, (1...86_400).contains(duration), (1...10_000).contains(concurrency) else {
                throw ValidationError("--tps must be > 0, --duration 1…86400 s, --concurrency 1…10000")
            }
        }

        func run() async throws {
            let client = try device.client(requireSecret: true)
            try await reportingFailures {
                let dataset = try await client.dataset(datasetVersion)
                guard let checksum = dataset.manifest?.plaintextSha256 else {
                    throw LeaderboardClientError.local("bad_response", "The dataset has no manifest.")
                }
                // The session's challenge is answered from the decrypted dataset, as a real benchmark holds it.
                let file =
                    datasetFile
                    ?? FileManager.default.temporaryDirectory.appendingPathComponent(
                        "leaderboard-dataset-\(dataset.version)"
                    ).path
                _ = try await client.download(version: dataset.version, to: file)
                var start = SessionStart(
                    datasetVersion: dataset.version, datasetChecksum: checksum, framework: framework, modelName: model,
                    modelParams: params, gpuName: gpu, concurrentCount: concurrency)
                start.displayName = displayName
                start.quantization = quantization
                let session = try await client.startSession(start)
                // Real time, as the server's anti-cheat expects: one sample per interval over the whole duration.
                // Each of the concurrent streams generates tps ÷ concurrency tokens a second, in requests of
                // tokensPerRequest tokens (shorter ones in a short run: a request never outlasts the run).
                let latency = min(Self.tokensPerRequest / (tps / Double(concurrency)), duration / 2)
                let interval = Double(max(1, session.metricsIntervalSeconds))
                let count = max(1, Int(duration / interval))
                let started = ContinuousClock.now
                var metrics: [MetricSample] = []
                for index in 0..<count {
                    try await Task.sleep(until: started + .seconds(interval * Double(index + 1)))
                    var sample = MetricSample(
                        cpuUsage: Double.random(in: 20...40), memoryUsage: Double.random(in: 40...60),
                        gpuUsage: Double.random(in: 85...99), tps: tps * Double.random(in: 0.97...1.03),
                        latency: latency, concurrentCount: concurrency)
                    let elapsed = interval * Double(index + 1)
                    sample.completedRequests = Int(elapsed * Double(concurrency) / latency)
                    sample.totalTokens = Int(elapsed * tps)
                    try await client.report(session: session.sessionID, sample: sample)
                    metrics.append(sample)
                }
                let seconds = started.duration(to: .now) / .seconds(1)
                let (results, requests) = Self.results(
                    tps: tps, latency: latency, concurrency: concurrency, seconds: seconds)
                let outcome = try await client.submit(
                    session: session.sessionID, results: results, metrics: metrics,
                    datasetProof: try session.datasetChallenge?.proof(plaintextFile: file), requests: requests)
                printOutcome(outcome)
            }
        }

        /// The run's requests (each within ±10 % of `latency`) and the results they add up to.
        static func results(tps: Double, latency: Double, concurrency: Int, seconds: Double) -> (
            BenchmarkResults, [RequestRecord]
        ) {
            let count = max(1, Int(Double(concurrency) * seconds / latency))
            let tokens = max(count, Int((tps * seconds).rounded()))
            let requests = (0..<count).map { index in
                RequestRecord(
                    outputTokens: tokens / count + (index < tokens % count ? 1 : 0),
                    latency: latency * Double.random(in: 0.9...1.1))
            }
            let latencies = requests.map(\.latency).sorted()
            func percentile(_ q: Double) -> Double {
                let position = q * Double(latencies.count - 1)
                let low = Int(position.rounded(.down))
                let high = min(low + 1, latencies.count - 1)
                return latencies[low] + (latencies[high] - latencies[low]) * (position - Double(low))
            }
            var results = BenchmarkResults(
                tps: Double(tokens) / seconds, avgLatency: latencies.reduce(0, +) / Double(count),
                p50Latency: percentile(0.5), p95Latency: percentile(0.95), p99Latency: percentile(0.99),
                concurrentCount: concurrency, totalRequests: count, successfulRequests: count, duration: seconds)
            results.totalTokens = tokens
            return (results, requests)
        }
    }

    struct Submit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Submit a session's results from a JSON file ({\"results\": …, \"metrics\": [ … ]}).")

        @OptionGroup var device: DeviceOptions

        @Option(help: "The session id (from the session's start).")
        var session: String

        @Option(help: "The results file.")
        var file: String

        @Option(name: .customLong("idempotency-key"), help: "Repeat a submit safely (default: a new key).")
        var idempotencyKey: String = UUID().uuidString

        func run() async throws {
            guard let data = FileManager.default.contents(atPath: file),
                let body = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
            else { throw ValidationError("\(file) is not a JSON object") }
            let client = try device.client(requireSecret: true)
            try await reportingFailures {
                printOutcome(try await client.submit(session: session, body: body, idempotencyKey: idempotencyKey))
            }
        }
    }

    struct DSMKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "dsm-key",
            abstract:
                "Make a DeepStressModel API key for this device (printed once), or list or revoke its keys (docs/DEEPSTRESSMODEL.md)."
        )

        @OptionGroup var device: DeviceOptions

        @Option(help: "A name to recognise the key by.") var name: String?
        @Flag(help: "List the device's keys instead (never the keys themselves).") var list = false
        @Option(help: "Revoke this key id instead.") var revoke: String?

        func run() async throws {
            let client = try device.client(requireSecret: true)
            try await reportingFailures {
                if let revoke {
                    let key = try await client.revokeClientKey(revoke)
                    print("\(key.keyID) revoked")
                } else if list {
                    let keys = try await client.clientKeys(includeRevoked: true)
                    if keys.isEmpty { print("no keys") }
                    for key in keys {
                        print(
                            [key.keyID, key.prefix + "…", key.name, key.revokedAt.map { "revoked \($0)" } ?? "live"]
                                .joined(separator: "\t"))
                    }
                } else {
                    let key = try await client.createClientKey(name: name)
                    print(key.apiKey ?? "")
                    FileHandle.standardError.write(
                        Data(
                            "\(key.keyID): put this key in DeepStressModel's API key setting; it is not shown again.\n"
                                .utf8))
                }
            }
        }
    }

    struct Records: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The device's own records, newest first, whatever their state (to unpublish or delete).")

        @OptionGroup var device: DeviceOptions

        func run() async throws {
            let client = try device.client(requireSecret: true)
            try await reportingFailures {
                var cursor: String?
                var count = 0
                repeat {
                    let page = try await client.myRecords(limit: 200, cursor: cursor)
                    for record in page.records {
                        let rank = record.rank.map { "#\($0)" } ?? "-"
                        print(
                            [
                                record.recordID, record.status ?? "", rank, String(format: "%.2f", record.score),
                                record.framework, record.datasetVersion,
                            ].joined(separator: "\t"))
                    }
                    count += page.records.count
                    cursor = page.nextCursor
                } while cursor != nil
                if count == 0 { print("no records") }
            }
        }
    }

    struct Board: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the board (no device needed).")

        @Option(help: "The server's base URL.")
        var server: String = "http://127.0.0.1:8080"

        @Option(help: "Only this framework.")
        var framework: String?

        @Option(name: .customLong("dataset-version"), help: "The dataset version (default: the active one).")
        var datasetVersion: String?

        @Option(help: "How many records.")
        var limit: Int = 20

        /// Widths of the columns before the record id (longer values are cut).
        static let widths = [5, 9, 9, 13, 21, 18]

        func run() async throws {
            let client = LeaderboardClient(baseURL: try serverURL(server))
            try await reportingFailures {
                let page = try await client.board(framework: framework, datasetVersion: datasetVersion, limit: limit)
                print("rank  score     tps       framework     model                 gpu                record")
                for record in page.records {
                    let rank = (framework == nil ? record.rank : record.frameworkRank).map { "#\($0)" } ?? "-"
                    let columns = [
                        rank, String(format: "%.2f", record.score), String(format: "%.1f", record.tps),
                        record.framework, record.modelName, record.gpuConfig.name,
                    ]
                    let padded = zip(columns, Self.widths).map {
                        $0.padding(toLength: $1, withPad: " ", startingAt: 0)
                    }
                    print((padded + [record.recordID]).joined(separator: " "))
                }
                print("\(page.records.count) of \(page.total) records")
            }
        }
    }
}

/// `--server` and `--credentials`, shared by the device commands.
struct DeviceOptions: ParsableArguments {
    @Option(help: "The server's base URL (default: the one in the credentials file, else http://127.0.0.1:8080).")
    var server: String?

    @Option(help: "The device's credentials file.")
    var credentials: String?

    var credentialsPath: String {
        credentials
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".config/leaderboard/device.json")
            .path
    }

    /// A client for the server, signing with the stored device when `requireSecret`.
    func client(requireSecret: Bool) throws -> LeaderboardClient {
        let stored = try? StoredDevice.load(from: credentialsPath)
        let url = try serverURL(server ?? stored?.server ?? "http://127.0.0.1:8080")
        guard requireSecret else { return LeaderboardClient(baseURL: url) }
        guard let stored, let secret = stored.secret else {
            throw ValidationError("\(credentialsPath) holds no activated device; run register and activate first")
        }
        return LeaderboardClient(
            baseURL: url, credentials: DeviceCredentials(machineID: stored.machineID, secret: secret))
    }
}

/// The credentials file: which server, which device, and (once activated) its secret.
struct StoredDevice: Codable {
    var server: String
    var machineID: String
    var registrationCode: String?
    var secret: String?

    enum CodingKeys: String, CodingKey {
        case server, machineID = "machine_id", registrationCode = "registration_code", secret
    }

    init(server: String, machineID: String) {
        self.server = server
        self.machineID = machineID
    }

    static func load(from path: String) throws -> StoredDevice {
        guard let data = FileManager.default.contents(atPath: path),
            let device = try? JSONDecoder().decode(StoredDevice.self, from: data)
        else { throw ValidationError("cannot read the credentials file \(path)") }
        return device
    }

    /// Written owner-only: the secret signs for the device.
    func save(to path: String) throws {
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(
            at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
        try encoder.encode(self).write(to: url)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
    }
}

func serverURL(_ text: String) throws -> URL {
    guard let url = URL(string: text), url.scheme == "http" || url.scheme == "https", url.host != nil else {
        throw ValidationError("--server must be an http:// or https:// URL")
    }
    return url
}

/// Runs a client call; a server's refusal is printed (code, status, detail, reasons) and exits 1.
func reportingFailures(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as LeaderboardClientError {
        printError(error.description)
        throw ExitCode.failure
    }
}

func printOutcome(_ outcome: SubmissionOutcome) {
    let rank =
        outcome.rankPending
        ? "rank pending (read the record in a few seconds)" : outcome.rank > 0 ? "rank #\(outcome.rank)" : "not ranked"
    print(
        "\(outcome.state): record \(outcome.recordID ?? "-"), \(rank), score \(String(format: "%.2f", outcome.score))"
            + (outcome.isNewBest ? " (new best)" : "") + ", session \(outcome.sessionID)")
}
