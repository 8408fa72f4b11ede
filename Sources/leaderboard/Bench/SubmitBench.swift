import ArgumentParser
import Foundation
import LeaderboardClient
import NIOCore
import NIOHTTP1
import Synchronization

/// P2: signed submits end to end. Devices are registered and activated through the public API and their sessions
/// started and reported on beforehand; the measured part is the submits alone, `concurrency` at a time, each on
/// its own keep-alive connection, signed just before it is sent.
struct SubmitBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit", abstract: "Signed submit throughput and latency through the gateway.")

    @OptionGroup var options: BenchServerOptions
    @Option(help: "Devices to register.") var devices = 1000
    @Option(help: "Sessions per device (the server allows 5 running at once).") var sessionsPerDevice = 5
    @Option(help: "Submits in flight at once.") var concurrency = 64
    @Option(help: "Write the first device's credentials here (JSON) for later runs.") var saveDevice: String?
    @Option(help: "Dataset versions to spread the devices over (comma-separated; default: the latest active one).")
    var datasetVersions = ""

    func run() async throws {
        let target = try options.target()
        let (host, port) = try target.endpoint()
        let clock = ContinuousClock()
        let setupStart = clock.now
        let credentials = try await target.activateDevices(devices, tag: "submit-\(UUID().uuidString.prefix(8))")
        if let saveDevice, let first = credentials.first {
            let json = ["machine_id": first.machineID, "secret": first.secret]
            try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: saveDevice))
        }
        let frameworks = ["vllm", "llama.cpp", "sglang", "tgi"]
        let gpus = ["NVIDIA H100 80GB", "NVIDIA A100 80GB", "NVIDIA L40S", "NVIDIA RTX 4090"]
        let versions = datasetVersions.split(separator: ",").map(String.init)
        let sessions = try await target.readySessions(
            devices: credentials, perDevice: sessionsPerDevice, versions: versions
        ) { index in
            let device = index / sessionsPerDevice
            // A device keeps its GPU and framework; its runs vary by a few percent, as real reruns do, and no two runs
            // report identical figures (the rules reject a copied result).
            let tps =
                400 + Double(device % 97) * 7 + Double(index % sessionsPerDevice) * 3 + Double.random(in: 0..<1)
            return (frameworks[device % frameworks.count], gpus[(device / 4) % gpus.count], tps)
        }
        let setup = clock.now - setupStart
        // Every device's first session, then every second one…: a device's own submits never overlap in time.
        let ordered = (0..<sessionsPerDevice).flatMap { slot in
            stride(from: slot, to: sessions.count, by: sessionsPerDevice).map { sessions[$0] }
        }

        let next = Atomic<Int>(0)
        let statuses = Mutex<[String: Int]>([:])
        let base = target.base
        let (summary, elapsed) = try await runWorkers(concurrency) { _ in
            try await BenchHTTPConnection.with(host: host, port: port) { connection in
                var samples: [Duration] = []
                var counts: [String: Int] = [:]
                while true {
                    let index = next.add(1, ordering: .relaxed).oldValue
                    guard index < ordered.count else { break }
                    let request = ordered[index].submitRequest(base: base)
                    let begin = clock.now
                    let reply = try await connection.send(
                        .POST, request.path, headers: request.headers, body: request.body)
                    samples.append(clock.now - begin)
                    counts[Self.outcome(reply), default: 0] += 1
                }
                statuses.withLock { total in total.merge(counts, uniquingKeysWith: +) }
                return samples
            }
        }
        var figures: [String: Any] = summary.summary
        figures["submits"] = summary.count
        figures["seconds"] = elapsed.seconds
        figures["submits_per_s"] = Double(summary.count) / elapsed.seconds
        figures["devices"] = credentials.count
        figures["concurrency"] = concurrency
        figures["dataset_versions"] = max(1, versions.count)
        figures["outcomes"] = statuses.withLock { $0 }
        figures["setup_seconds"] = setup.seconds
        printFigures(figures)
    }

    /// `accepted`, `held_for_review`, or the HTTP status of a refusal.
    static func outcome(_ reply: BenchHTTPConnection.Reply) -> String {
        guard (200..<300).contains(reply.status) else { return "http_\(reply.status)" }
        let object = try? JSONSerialization.jsonObject(with: Data(reply.body.readableBytesView))
        return ((object as? [String: Any])?["state"] as? String) ?? "unreadable"
    }
}
