import ArgumentParser
import Foundation
import LeaderboardClient
import NIOHTTP1
import Synchronization

/// The idempotency storm of `scripts/chaos` (docs/RELIABILITY.md): every session's submit is sent `retries` times at
/// once with one idempotency key, half through each of two gateways, as a client that times out and retries
/// everywhere would. Each key must come back with one record and the same answer every time.
struct IdempotencyStormCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "storm", abstract: "Concurrent retries of one submit through two gateways.")

    @OptionGroup var options: BenchServerOptions
    @Option(help: "The second gateway.") var otherServer: String
    @Option(help: "Idempotency keys (one session each).") var keys = 1000
    @Option(help: "Copies of each submit sent at once.") var retries = 20
    @Option(help: "Keys stormed at once.") var keysAtOnce = 8
    @Option(help: "Write the sessions' ids here, one per line (for the database check).") var sessionsFile: String?

    func run() async throws {
        let target = try options.target()
        let bases = [target.base, try BenchServer(server: otherServer, mailLog: "").base]
        let gateways = ChaosGateways(bases: bases, journal: ChaosJournal(), timeout: .seconds(60))
        let perDevice = 5
        let devices = try await target.activateDevices(
            (keys + perDevice - 1) / perDevice, tag: "storm-\(UUID().uuidString.prefix(8))")
        let sessions = Array(
            try await target.readySessions(devices: devices, perDevice: perDevice) { index in
                // A result of its own for every session (an identical one would be refused as a duplicate).
                ("vllm", "NVIDIA RTX 4090", 400 + Double(index) * 0.37)
            }
            .prefix(keys))
        if let sessionsFile {
            try sessions.map(\.sessionID).joined(separator: "\n").write(
                toFile: sessionsFile, atomically: true, encoding: .utf8)
        }
        let clock = ContinuousClock()
        let began = clock.now
        let verdicts = Mutex<[Verdict]>([])
        let retries = retries
        try await forEachConcurrently(sessions.count, concurrency: keysAtOnce) { index in
            let session = sessions[index]
            let key = UUID().uuidString
            // Read only, by every copy.
            nonisolated(unsafe) let body = session.submitBody
            let answers = await withTaskGroup(of: ChaosGateways.Answer.self) { group in
                for copy in 0..<retries {
                    group.addTask {
                        await gateways.send(
                            "storm", .POST, "/api/v1/benchmarks/\(session.sessionID)/submit", json: body,
                            device: session.device, headers: [("Idempotency-Key", key)], gateway: copy)
                    }
                }
                return await group.reduce(into: [ChaosGateways.Answer]()) { $0.append($1) }
            }
            verdicts.withLock { $0.append(Verdict(answers)) }
        }
        let elapsed = clock.now - began
        let all = verdicts.withLock { $0 }
        var statuses: [String: Int] = [:]
        for entry in gateways.journal.all { statuses["\(entry.status) \(entry.code)", default: 0] += 1 }
        let records = Set(all.compactMap(\.record))
        printFigures([
            "keys": all.count, "requests": all.count * retries, "seconds": elapsed.seconds,
            "statuses": statuses, "distinct_records": records.count,
            "keys_all_answered": all.filter(\.allAnswered).count,
            "keys_with_one_record": all.filter(\.oneRecord).count,
            "keys_with_identical_answers": all.filter(\.identical).count,
            "replayed_answers": all.reduce(0) { $0 + $1.replayed },
            "latency": Latencies(gateways.journal.all.map { .milliseconds($0.milliseconds) }).summary,
        ])
    }

    /// What one key's copies were answered.
    struct Verdict {
        let allAnswered: Bool
        let oneRecord: Bool
        let identical: Bool
        let record: String?
        let replayed: Int

        init(_ answers: [ChaosGateways.Answer]) {
            allAnswered = answers.allSatisfy(\.ok)
            let ids = Set(answers.map { $0.json["record_id"] as? String ?? "" })
            oneRecord = ids.count == 1 && ids.first?.isEmpty == false
            record = oneRecord ? ids.first : nil
            identical = Set(answers.map(\.body)).count == 1
            replayed = answers.filter { $0.headers.first(name: "Idempotent-Replayed") == "true" }.count
        }
    }
}
