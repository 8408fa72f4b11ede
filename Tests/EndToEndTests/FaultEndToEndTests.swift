import Crypto
import Foundation
import LeaderboardClient
import ServiceKit
import Synchronization
import TestSupport
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A part of the running system killed and started again (docs/RELIABILITY.md; `scripts/chaos` does this for every
/// part under load).
@Suite("Faults through the real binary", .serialized, .timeLimit(.minutes(5)))
struct FaultEndToEndTests {
    /// What one watcher saw: each update's kind, sequence and record, and whether its stream ended.
    final class Watch: Sendable {
        struct Seen: Sendable {
            let kind: String
            let sequence: Int
            let record: String?
        }

        let seen = Mutex<[Seen]>([])
        let ended = Mutex<String?>(nil)

        var updates: [Seen] { seen.withLock { $0 } }
    }

    @Test(
        "RankingService killed under a live board: the gateway answers 503 meanwhile, then resumes the board after its last sequence, and watchers see every diff once"
    )
    func rankingKilledUnderLiveBoard() async throws {
        let directory = EndToEnd.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let storage = try await EndToEnd.productionSettings()
        let common = storage + ["--pow-difficulty", "8", "--ranking-metrics-interval", "10"]
        let (started, grpcPorts) = try await EndToEnd.startEachTarget(in: directory, settings: common)
        var processes = Dictionary(uniqueKeysWithValues: started.map { ($0.target, $0.process) })
        defer { for process in processes.values where process.process.isRunning { process.process.terminate() } }
        let gateway = try #require(processes[.gateway])
        let auth = try #require(processes[.auth])
        let base = try await gateway.httpBase()
        _ = try await EndToEnd.waitFor(base + "/health/ready", status: 200)

        let version = "fault-\(UUID().uuidString.prefix(8).lowercased())"
        let operatorKey = try await EndToEnd.operatorKey(
            storage.isEmpty ? ["--data-dir", "\(directory)/auth"] : storage)
        let plaintext = try await EndToEnd.uploadPromptDataset(
            in: directory, version: version, grpc: "127.0.0.1:\(grpcPorts[.dataset]!)", operatorKey: operatorKey)
        let checksum = Array(SHA256.hash(data: plaintext)).hexEncoded
        let credentials = try await EndToEnd.activeDevice(base: base) {
            try DatasetEndToEndTests.lastLink(in: auth.standardError + auth.standardOutput)
        }
        let device = DeviceCredentials(machineID: credentials.machineID, secret: credentials.secret)
        let first = try await RankingEndToEndTests.benchmark(
            device, base: base, version: version, checksum: checksum, plaintext: plaintext, tps: 50)
        #expect(first["state"] as? String == "accepted")

        // Three watchers of the global board, each with its snapshot.
        let client = LeaderboardClient(baseURL: try #require(URL(string: base)))
        let watches = (0..<3).map { _ in Watch() }
        let tasks = watches.map { watch in
            Task {
                do {
                    for try await update in client.watchBoard(limit: 10) {
                        let seen: Watch.Seen =
                            switch update {
                            case .snapshot(let sequence, _): .init(kind: "snapshot", sequence: sequence, record: nil)
                            case .accepted(let sequence, let record, _):
                                .init(kind: "accepted", sequence: sequence, record: record.recordID)
                            case .rankChanged(let sequence, let record, _, _):
                                .init(kind: "rank_changed", sequence: sequence, record: record)
                            case .removed(let sequence, let record):
                                .init(kind: "removed", sequence: sequence, record: record)
                            }
                        watch.seen.withLock { $0.append(seen) }
                    }
                    watch.ended.withLock { $0 = "closed" }
                } catch {
                    watch.ended.withLock { $0 = "\(error)" }
                }
            }
        }
        defer { for task in tasks { task.cancel() } }
        let snapshots = try await eventually(within: .seconds(20)) {
            watches.allSatisfy { $0.updates.first?.kind == "snapshot" }
        }
        try #require(snapshots)

        // kill -9 RankingService. Reads that need it are refused at once, with a time to come back.
        let ranking = try #require(processes[.ranking])
        ranking.kill()
        _ = try await ranking.exitStatus(within: .seconds(10))
        let clock = ContinuousClock()
        let asked = clock.now
        let refused = try await EndToEnd.send("GET", base + "/api/v1/benchmarks/no-such-record-\(UUID().uuidString)")
        #expect(refused.status == 503, "\(refused.text)")
        #expect(refused.json["code"] as? String == "service_unavailable")
        #expect(refused.headers["retry-after"] != nil)
        #expect(clock.now - asked < .seconds(5))

        // Started again on the same port, it is found without restarting anything else.
        let remotes = Target.ranking.dependencies.flatMap {
            ["--\($0.rawValue)-address", "127.0.0.1:\(grpcPorts[$0]!)"]
        }
        let restarted = try LeaderboardProcess(
            [
                "serve", "--target", "ranking", "--data-dir", "\(directory)/ranking", "--http-address", "127.0.0.1:0",
                "--grpc-address", "127.0.0.1:\(grpcPorts[.ranking]!)", "--ops-address", "127.0.0.1:0",
            ] + remotes + common)
        processes[.ranking] = restarted
        _ = try await restarted.grpcPort()
        let resumed = try await eventually(within: .seconds(10)) {
            try await EndToEnd.send("GET", base + "/api/v1/benchmarks/no-such-record").status == 404
        }
        #expect(resumed, "the gateway did not reach the restarted RankingService")

        // Two more records: every watcher gets their diffs, after the sequence it last saw, each once.
        var added: [String] = []
        for tps in [60.0, 70.0] {
            let outcome = try await RankingEndToEndTests.benchmark(
                device, base: base, version: version, checksum: checksum, plaintext: plaintext, tps: tps)
            added.append(try #require(outcome["record_id"] as? String))
        }
        let delivered = try await eventually(within: .seconds(20)) {
            watches.allSatisfy { watch in
                Set(watch.updates.filter { $0.kind == "accepted" }.compactMap(\.record)).isSuperset(of: added)
            }
        }
        #expect(delivered)
        for watch in watches {
            let updates = watch.updates
            #expect(
                watch.ended.withLock { $0 } == nil, "the watcher's stream ended: \(watch.ended.withLock { $0 } ?? "")")
            #expect(updates.filter { $0.kind == "snapshot" }.count == 1, "\(updates.map(\.kind))")
            let sequences = updates.map(\.sequence)
            #expect(
                sequences == Array((sequences.first ?? 0)..<((sequences.first ?? 0) + sequences.count)), "\(sequences)")
            #expect(updates.filter { $0.kind == "accepted" }.compactMap(\.record) == added)
        }
    }
}
