import ArgumentParser
import Foundation
import LeaderboardClient
import NIOCore
import NIOHTTP1
import Synchronization

/// P5: WebSocket fan-out. `clients` watchers of the global board connect to one gateway; then, one at a time,
/// submits that each add a record to the board are sent, and the time from sending each to the last watcher
/// receiving its change is measured. The records land below the watched top places, so each submit is one
/// `accepted` diff (a record entering the top 100 also sends a `rank_changed` for every place it pushes down).
/// The gateway's resident memory is read before and after the watchers connect. The watchers are ``BenchWatcher``s:
/// raw connections that cost the load generator little, so the cores measure the gateway's fan-out.
struct FanoutBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fanout", abstract: "Board-change delivery to many WebSocket watchers.")

    @OptionGroup var options: BenchServerOptions
    @Option(help: "WebSocket watchers.") var clients = 10_000
    @Option(help: "Submits, one at a time.") var rounds = 20
    @Option(help: "The gateway's process id, for its resident memory.") var serverPid: Int32
    @Option(help: "Watchers connecting at once.") var connectBatch = 250
    @Option(help: "Seconds to wait for every watcher to receive one change.") var roundTimeout = 10.0
    @Option(help: "Seconds to wait for a batch's watchers to get their snapshots before connecting the next batch.")
    var batchTimeout = 30.0

    /// What the watchers have seen of the current round.
    struct RoundState {
        var round = -1
        var seen: [Bool]
        var count = 0
        var last: ContinuousClock.Instant?
        var deliveries: [Duration] = []
        var start: ContinuousClock.Instant?
    }

    func run() async throws {
        let target = try options.target()
        let (host, port) = try target.endpoint()
        // One run per device: a device's runs submitted seconds apart overlap in test time and are held for review
        // (`overlapping_runs`), which would add no diff.
        let perDevice = 1
        let devices = try await target.activateDevices(
            (rounds + perDevice - 1) / perDevice, tag: "fanout-\(UUID().uuidString.prefix(8))")
        // Slow runs, each on a GPU of its own (no peers to be judged against): new records low on the board.
        let sessions = try await target.readySessions(devices: devices, perDevice: perDevice) { index in
            ("vllm", "NVIDIA GeForce RTX 4090", 20 + Double(index))
        }

        let clock = ContinuousClock()
        let rssBefore = try Self.residentKiB(serverPid)
        let shared = Watchers(clients: clients)
        let (clients, connectBatch, batchTimeout) = (clients, connectBatch, batchTimeout)
        let watchers = Task {
            var channels: [any Channel] = []
            for id in 0..<clients {
                do {
                    channels.append(
                        try await BenchWatcher.connect(host: host, port: port, path: "/api/v1/ws/leaderboard?limit=1") {
                            event in
                            let now = clock.now
                            switch event {
                            case .snapshot:
                                shared.connected.add(1, ordering: .relaxed)
                            case .ended:
                                shared.ended.add(1, ordering: .relaxed)
                            case .diff:
                                shared.state.withLock { state in
                                    guard state.round >= 0, !state.seen[id], let start = state.start else { return }
                                    state.seen[id] = true
                                    state.count += 1
                                    state.last = now
                                    state.deliveries.append(now - start)
                                }
                            }
                        })
                } catch {
                    shared.failed.add(1, ordering: .relaxed)
                }
                // Connect in batches, so the listen backlog never overflows. A watcher still without its snapshot
                // when the batch's wait ends is counted (`no_snapshot`), not waited for.
                if (id + 1) % connectBatch == 0 {
                    let batchStart = clock.now
                    while shared.settled < id + 1, clock.now - batchStart < .seconds(batchTimeout) {
                        try? await Task.sleep(for: .milliseconds(10))
                    }
                }
            }
            return channels
        }
        let connectStart = clock.now
        let connecting = await watchers.value
        let lastBatchStart = clock.now
        while shared.settled < clients, clock.now - lastBatchStart < .seconds(batchTimeout) {
            try await Task.sleep(for: .milliseconds(50))
        }
        let connectTime = clock.now - connectStart
        let watching = shared.connected.load(ordering: .relaxed)
        let noSnapshot = clients - shared.settled
        try await Task.sleep(for: .seconds(2))
        let rssAfter = try Self.residentKiB(serverPid)

        var lastClient: [Duration] = []
        var submitLatencies: [Duration] = []
        var incomplete = 0
        try await BenchHTTPConnection.with(host: host, port: port) { connection in
            for round in 0..<min(rounds, sessions.count) {
                let request = sessions[round].submitRequest(base: target.base)
                let start = clock.now
                shared.state.withLock {
                    $0.round = round
                    $0.seen = Array(repeating: false, count: clients)
                    $0.count = 0
                    $0.last = nil
                    $0.start = start
                }
                let reply = try await connection.send(
                    .POST, request.path, headers: request.headers, body: request.body)
                submitLatencies.append(clock.now - start)
                guard SubmitBenchCommand.outcome(reply) == "accepted" else {
                    throw BenchError("fan-out submit \(round) was not accepted: \(SubmitBenchCommand.outcome(reply))")
                }
                while shared.state.withLock({ $0.count }) < watching, clock.now - start < .seconds(roundTimeout) {
                    try await Task.sleep(for: .milliseconds(2))
                }
                let (count, last) = shared.state.withLock { ($0.count, $0.last) }
                if count < watching { incomplete += 1 }
                if let last { lastClient.append(last - start) }
                // Let the round's other changes (rank shifts) arrive before the next one starts.
                try await Task.sleep(for: .milliseconds(300))
                shared.state.withLock { $0.round = -1 }
            }
        }
        let ended = shared.ended.load(ordering: .relaxed)  // before the watchers are closed below
        for channel in connecting { channel.close(promise: nil) }
        let last = Latencies(lastClient)
        let deliveries = Latencies(shared.state.withLock { $0.deliveries })
        printFigures([
            "clients": clients, "connected": watching, "failed": shared.failed.load(ordering: .relaxed),
            "ended": ended, "no_snapshot": noSnapshot,
            "connect_seconds": connectTime.seconds, "rounds": last.count, "incomplete_rounds": incomplete,
            "last_client_p50_ms": last.milliseconds(0.5), "last_client_p99_ms": last.milliseconds(0.99),
            "delivery_p50_ms": deliveries.milliseconds(0.5), "delivery_p99_ms": deliveries.milliseconds(0.99),
            "submit_p50_ms": Latencies(submitLatencies).milliseconds(0.5),
            "rss_before_kib": rssBefore, "rss_after_kib": rssAfter,
            "kib_per_connection": watching > 0 ? Double(rssAfter - rssBefore) / Double(watching) : 0,
        ])
    }

    /// What the watcher tasks share with the coordinator.
    final class Watchers: Sendable {
        let state: Mutex<RoundState>
        let connected = Atomic<Int>(0)
        let failed = Atomic<Int>(0)
        /// Watchers whose connection ended (refused or closed by the gateway).
        let ended = Atomic<Int>(0)

        /// Watchers that got their snapshot, failed to connect or were closed: all but those still waiting.
        var settled: Int {
            connected.load(ordering: .relaxed) + failed.load(ordering: .relaxed) + ended.load(ordering: .relaxed)
        }

        init(clients: Int) { state = Mutex(RoundState(seen: Array(repeating: false, count: clients))) }
    }

    /// `VmRSS` of a process, in KiB (Linux).
    static func residentKiB(_ pid: Int32) throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let value = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        else { throw BenchError("no VmRSS for process \(pid)") }
        return value
    }
}
