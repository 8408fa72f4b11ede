import ArgumentParser
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import LeaderboardAPI
import SwiftProtobuf
import Synchronization

/// P3: the rank of a random record among many, through RankingService's `GetRecord` (the record, its global and
/// framework ranks and percentile), over one gRPC connection like a gateway's. The records are `<prefix><n>` with
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
        let (summary, elapsed, unranked) = try await withRankingServices(connections, settings) { clients in
            let clock = ContinuousClock()
            let perWorker = requests / concurrency
            let unranked = Mutex(0)
            let (summary, elapsed) = try await runWorkers(concurrency) { worker in
                let ranking = clients[worker % clients.count]
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
            return (summary, elapsed, unranked.withLock { $0 })
        }
        var figures: [String: Any] = summary.summary
        figures["lookups"] = summary.count
        figures["lookups_per_s"] = Double(summary.count) / elapsed.seconds
        figures["unranked"] = unranked
        figures["concurrency"] = concurrency
        figures["connections"] = connections
        printFigures(figures)
    }

    /// `count` RankingService clients, each on its own connection.
    func withRankingServices<Result: Sendable>(
        _ count: Int, _ settings: [String],
        _ body:
            @escaping @Sendable ([Leaderboard_Ranking_V1_RankingService.Client<HTTP2ClientTransport.Posix>])
            async throws -> Result
    ) async throws -> Result {
        guard count > 0 else { return try await body([]) }
        return try await withRankingService(settings) { client in
            try await withRankingServices(count - 1, settings) { others in try await body([client] + others) }
        }
    }
}
