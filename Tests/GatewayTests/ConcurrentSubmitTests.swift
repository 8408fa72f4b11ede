import Foundation
import HTTPTypes
import HummingbirdWSTesting
import NIOWebSocket
import ServiceKit
import Synchronization
import TestSupport
import Testing
import WSClient
import WSCore

@testable import RankingService

/// Many clients submit to one dataset version at once; the board writer ranks their records in batches. Whatever
/// the batches were, the result must be the one a serial run would give: the same board, the same stored events, the
/// same WebSocket diffs.
@Suite(
    "Concurrent submits to one board", .timeLimit(.minutes(4)), .enabled(if: ExternalTools.hasPythonPackages))
struct ConcurrentSubmitTests {
    /// One board as a serial replay builds it: records in the order they were ranked, each either replacing its
    /// owner's ranked one or not; events derived by comparing every place before and after each change (not by the
    /// shift arithmetic the server uses).
    struct SerialBoard {
        struct Entry: Equatable {
            var id: String
            var key: Double
            var owner: String
        }
        var entries: [Entry] = []
        var events: [String] = []
        var acceptedRanks: [String: Int] = [:]
        let watched = 100

        mutating func offer(_ entry: Entry) {
            let current = entries.first { $0.owner == entry.owner }
            if let current, (entry.key, entry.id) <= (current.key, current.id) { return }
            let before = places()
            entries.removeAll { $0.id == current?.id }
            entries.append(entry)
            entries.sort { ($0.key, $0.id) > ($1.key, $1.id) }
            let after = places()
            if let current { events.append("removed \(current.id)") }
            events.append("accepted \(entry.id) #\(after[entry.id]!)")
            acceptedRanks[entry.id] = after[entry.id]!
            for moved in entries where moved.id != entry.id {
                let (old, new) = (before[moved.id]!, after[moved.id]!)
                if old != new, new <= watched { events.append("rank_changed \(moved.id) \(old)→\(new)") }
            }
        }

        func places() -> [String: Int] {
            Dictionary(uniqueKeysWithValues: entries.enumerated().map { ($1.id, $0 + 1) })
        }
    }

    /// Collects a board's diffs until it has seen `target` (set once known).
    final class Watcher: Sendable {
        let target = Mutex<Int?>(nil)
        let seen = Mutex<(snapshot: Int, diffs: [String])>((-1, []))

        func run(_ gateway: AuthGateway, _ path: String) async throws {
            _ = try await gateway.client.ws(path) { inbound, outbound, _ in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for try await message in inbound.messages(maxSize: 1 << 20) {
                            guard case .text(let text) = message else { continue }
                            self.record(WebSocketTests.json(text))
                        }
                    }
                    // Closes once the target is known and reached (the diffs may all have come before it was set).
                    group.addTask {
                        while true {
                            if let target = self.target.withLock({ $0 }),
                                self.seen.withLock({ $0.diffs.count }) >= target
                            {
                                try await outbound.close(.normalClosure, reason: nil)
                                return
                            }
                            try await Task.sleep(for: .milliseconds(20))
                        }
                    }
                    try await group.next()
                    group.cancelAll()
                }
            }
        }

        func record(_ object: [String: Any]) {
            let sequence = object["sequence"] as? Int ?? -1
            let type = object["type"] as? String ?? "?"
            let id =
                (object["record"] as? [String: Any])?["record_id"] as? String ?? object["record_id"] as? String ?? "?"
            seen.withLock { seen in
                switch type {
                case "snapshot": seen.snapshot = sequence
                case "accepted": seen.diffs.append("\(sequence) accepted \(id) #\(object["rank"] ?? "?")")
                case "removed": seen.diffs.append("\(sequence) removed \(id)")
                default:
                    seen.diffs.append(
                        "\(sequence) \(type) \(id) \(object["old_rank"] ?? "?")→\(object["new_rank"] ?? "?")")
                }
            }
        }

        /// Sets how many diffs to wait for before closing.
        func finish(at count: Int) { target.withLock { $0 = count } }
    }

    static func stored(_ events: [BoardEvent]) -> [String] {
        events.map { event in
            switch event.kind {
            case .accepted(let id, let rank): "\(event.sequence) accepted \(id) #\(rank)"
            case .removed(let id): "\(event.sequence) removed \(id)"
            case .rankChanged(let id, let old, let new): "\(event.sequence) rank_changed \(id) \(old)→\(new)"
            }
        }
    }

    @Test(
        "concurrent submits leave the board, its stored events and the WebSocket diffs exactly as a serial replay",
        arguments: StorageBackend.available)
    func hammer(_ backend: StorageBackend) async throws {
        try await AuthGateway.with(backend, live: true) { gateway in
            let dataset = try await RankingRoutesTests.dataset(gateway)
            let version = dataset.version
            var clients: [BenchmarkClient] = []
            for _ in 0..<6 {
                clients.append(
                    BenchmarkClient(
                        gateway: gateway,
                        device: try await gateway.activeDevice(email: "owner\(clients.count)@example.org")))
            }
            // A framework board exists once a record is on it: one submit first, then the watchers.
            let seed = try await clients[0].run(
                version: version, checksum: dataset.checksum, tps: 155, key: "seed")
            let seedID = try #require(seed["record_id"])
            let watchers = (0..<2).map { _ in Watcher() }
            let paths = [
                "/api/v1/ws/leaderboard?dataset_version=\(version)",
                "/api/v1/ws/leaderboard?dataset_version=\(version)&framework=vllm",
            ]
            let watching = zip(watchers, paths).map { watcher, path in Task { try await watcher.run(gateway, path) } }
            #expect(
                try await eventually(within: .seconds(10)) {
                    watchers.allSatisfy { $0.seen.withLock { $0.snapshot } == 1 }
                }, "\(watchers.map { $0.seen.withLock { $0 } })")

            // Six devices at once, each running two sessions one after the other (a device's runs must not overlap)
            // with the same framework, so its second record competes with its first: 12 submits, 6 in flight at a
            // time, scores spread so many of them move others. A third of the devices run llama.cpp.
            var tps = Array(stride(from: 40.0, to: 280.0, by: 10.0))
            tps.shuffle()
            struct Answer: Sendable {
                var recordID: String
                var rank: Int?
                var isNewBest: Bool?
                var rankPending: Bool?
            }
            let answers = try await withThrowingTaskGroup(of: [Answer].self) { group in
                for (device, client) in clients.enumerated() {
                    let framework = device % 3 == 2 ? "llama.cpp" : "vLLM"
                    let rates = [tps[device * 2], tps[device * 2 + 1]]
                    group.addTask {
                        var answers: [Answer] = []
                        for rate in rates {
                            let session = try await client.start(
                                version: version, checksum: dataset.checksum, framework: framework)
                            for _ in 0..<3 {
                                let report = try await client.call(
                                    .post, "/api/v1/benchmarks/\(session)/metrics", BenchmarkClient.metrics(tps: rate))
                                try #require(report.status == .accepted, "\(report.text)")
                            }
                            let body = try BenchmarkClient.submitText(
                                tps: rate, proof: try await client.proof(session: session))
                            let reply = try await client.submit(session: session, body: body, key: "k-\(session)")
                            // A result far from its peers' is held for an operator (202): judged, never ranked.
                            try #require([.created, .accepted].contains(reply.status), "\(reply.text)")
                            let json = reply.json
                            answers.append(
                                Answer(
                                    recordID: try #require(json["record_id"] as? String), rank: json["rank"] as? Int,
                                    isNewBest: json["is_new_best"] as? Bool, rankPending: json["rank_pending"] as? Bool)
                            )
                        }
                        return answers
                    }
                }
                return try await group.reduce(into: [Answer]()) { $0 += $1 }
            }
            #expect(answers.count == 12)
            #expect(answers.allSatisfy { $0.rankPending != true })

            // The serial replay, in the order the writer ranked the records (their `accepted` events on the global
            // board); a record never ranked cannot have changed anything, whenever it came.
            let database = try #require(gateway.rankingDatabase)
            let (records, globalEvents, frameworkEvents) = try await database.withExecutor(
                logger: TestEnvironment.logger
            ) { sql in
                let repository = RankingRepository(sql)
                let ids = answers.map(\.recordID) + [seedID]
                return (
                    try await repository.records(ids),
                    try await repository.events(of: Board.global(version), after: 0, limit: 10_000),
                    try await repository.events(of: Board.framework(version, "vllm"), after: 0, limit: 10_000)
                )
            }
            #expect(records.count == 13)
            var order: [String] = globalEvents.compactMap {
                if case .accepted(let id, _) = $0.kind { id } else { nil }
            }
            order += records.keys.filter { !order.contains($0) }.sorted()
            var global = SerialBoard()
            var vllm = SerialBoard()
            for id in order {
                let record = try #require(records[id])
                guard record.status == .accepted else { continue }
                let entry = SerialBoard.Entry(
                    id: id, key: record.rankKey, owner: "\(record.machineID)/\(record.framework)")
                global.offer(entry)
                if record.framework == "vllm" { vllm.offer(entry) }
            }
            let numbered = { (events: [String]) in events.enumerated().map { "\($0 + 1) \($1)" } }
            #expect(Self.stored(globalEvents) == numbered(global.events))
            #expect(Self.stored(frameworkEvents) == numbered(vllm.events))
            #expect(Set(globalEvents.map(\.sequence)) == Set(1...UInt64(globalEvents.count)))

            // Each answer's rank is its place when its batch committed: the serial replay's place at that step.
            for answer in answers {
                #expect(answer.isNewBest == (global.acceptedRanks[answer.recordID] != nil), "\(answer.recordID)")
                #expect(answer.rank == (global.acceptedRanks[answer.recordID] ?? 0), "\(answer.recordID)")
            }

            // The boards as served: the replay's final order.
            let board = try await gateway.request(.get, "/api/v1/benchmarks?dataset_version=\(version)&limit=200")
            #expect(
                (board.json["records"] as? [[String: Any]])?.compactMap { $0["record_id"] as? String }
                    == global.entries.map(\.id))
            let frameworkBoard = try await gateway.request(
                .get, "/api/v1/benchmarks/frameworks/vllm?dataset_version=\(version)&limit=200")
            #expect(
                (frameworkBoard.json["records"] as? [[String: Any]])?.compactMap { $0["record_id"] as? String }
                    == vllm.entries.map(\.id))

            // Every WebSocket diff after the snapshot (which showed the seed's event), in order, is the stored event.
            let afterSnapshot = [globalEvents, frameworkEvents].map { Array($0.dropFirst()) }
            for (watcher, events) in zip(watchers, afterSnapshot) { watcher.finish(at: events.count) }
            for task in watching { try await task.value }
            for (watcher, events) in zip(watchers, afterSnapshot) {
                #expect(watcher.seen.withLock { $0.diffs } == Self.stored(events))
            }
        }
    }
}
