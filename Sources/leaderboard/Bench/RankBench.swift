import ArgumentParser
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import LeaderboardAPI
import ServiceKit
import SwiftProtobuf
import Synchronization

/// P3: the rank of a random record among many, through RankingService's `GetRecord` (the record, its global and
/// framework ranks and percentile), over gRPC connections like a gateway's, beside a call that does no work over the
/// same connections. The records are `<prefix><n>` with
/// `n` zero-padded to 12 digits, as redis-benchmark's `__rand_int__` writes them, so both tools ask for the same
/// members.
struct RankBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rank", abstract: "Rank lookups of random records through RankingService (gRPC).")

    @Option(help: "How many records there are (ids <prefix>000000000000 …).") var records = 1_000_000
    @Option(help: "Record id prefix.") var prefix = "bench-"
    @Option(help: "Total lookups.") var requests = 100_000
    @Option(help: "Lookups in flight at once.") var concurrency = 50
    @Option(help: "gRPC connections the lookups are spread over (one HTTP/2 connection is served by one thread).")
    var connections = 2
    @Argument(parsing: .allUnrecognized, help: "Settings as --name value (--grpc-address or --ranking-address).")
    var settings: [String] = []

    func run() async throws {
        let (records, prefix, requests, concurrency) = (records, prefix, requests, concurrency)
        let figures = try await withConnections(connections, settings) { connections in
            let clock = ContinuousClock()
            let perWorker = requests / concurrency
            // The transport's own limit: a unary call that does no work (grpc.health.v1 Check), over the same
            // connections, callers and process, measured first in the same run.
            let (bare, bareElapsed) = try await runWorkers(concurrency) { worker in
                let health = Grpc_Health_V1_Health.Client(wrapping: connections[worker % connections.count])
                var samples: [Duration] = []
                samples.reserveCapacity(perWorker)
                for _ in 0..<perWorker {
                    let begin = clock.now
                    _ = try await health.check(.with { $0.service = "" })
                    samples.append(clock.now - begin)
                }
                return samples
            }
            let unranked = Mutex(0)
            let (summary, elapsed) = try await runWorkers(concurrency) { worker in
                let ranking = Leaderboard_Ranking_V1_RankingService.Client(
                    wrapping: connections[worker % connections.count])
                var samples: [Duration] = []
                samples.reserveCapacity(perWorker)
                var generator = SystemRandomNumberGenerator()
                for _ in 0..<perWorker {
                    let id = prefix + String(format: "%012d", Int.random(in: 0..<records, using: &generator))
                    let begin = clock.now
                    let record = try await ranking.getRecord(.with { $0.recordID = id })
                    samples.append(clock.now - begin)
                    if record.rank == 0 { unranked.withLock { $0 += 1 } }
                }
                return samples
            }
            var figures: [String: Double] = summary.summary
            figures["lookups"] = Double(summary.count)
            figures["lookups_per_s"] = Double(summary.count) / elapsed.seconds
            figures["unranked"] = Double(unranked.withLock { $0 })
            figures["bare_per_s"] = Double(bare.count) / bareElapsed.seconds
            figures["bare_p50_ms"] = bare.milliseconds(0.5)
            figures["bare_p99_ms"] = bare.milliseconds(0.99)
            return figures
        }
        var output: [String: Any] = figures
        output["concurrency"] = concurrency
        output["connections"] = connections
        printFigures(output)
    }

    /// `count` gRPC connections to RankingService's process.
    func withConnections<Result: Sendable>(
        _ count: Int, _ settings: [String],
        _ body: @escaping @Sendable ([GRPCClient<HTTP2ClientTransport.Posix>]) async throws -> Result
    ) async throws -> Result {
        guard count > 0 else { return try await body([]) }
        return try await withService(.ranking, settings) { client in
            try await withConnections(count - 1, settings) { others in try await body([client] + others) }
        }
    }
}
