import ArgumentParser
import Foundation
import Logging
import ServiceKit

/// Load generators for `scripts/bench`; each prints one line of figures to compare with a reference tool.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Load generators used by scripts/bench (loopback only, bounded by request count).",
        subcommands: [RedisBenchCommand.self]
    )
}

/// GET of one key through the pooled, pipelined client from many concurrent callers, like
/// `redis-benchmark -t get -c <concurrency> -n <requests>`.
struct RedisBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "redis", abstract: "GET throughput of RedisClient.")

    @Option(help: "Redis URL (loopback).") var redisURL: String
    @Option(help: "Total requests.") var requests = 200_000
    @Option(help: "Concurrent callers.") var concurrency = 50
    @Option(help: "Connections in the pool.") var poolSize = 4

    func run() async throws {
        let url = try RedisURL.parse(redisURL)
        let client = RedisClient(
            url: url, poolSize: poolSize, timeout: .seconds(5), logger: Logger(label: "bench"))
        try await client.send(["SET", "bench:key", "xxx"])
        let perCaller = requests / concurrency
        let clock = ContinuousClock()
        let start = clock.now
        let latencies = try await withThrowingTaskGroup(of: [Duration].self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var samples: [Duration] = []
                    samples.reserveCapacity(perCaller)
                    for _ in 0..<perCaller {
                        let begin = clock.now
                        try await client.send(["GET", "bench:key"])
                        samples.append(clock.now - begin)
                    }
                    return samples
                }
            }
            return try await group.reduce(into: [Duration]()) { $0 += $1 }.sorted()
        }
        let elapsed = clock.now - start
        await client.close()
        let seconds = Double(elapsed.microseconds) / 1_000_000
        func percentile(_ p: Double) -> Double {
            Double(latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))].microseconds) / 1000
        }
        print(
            String(
                format: "redis GET: %d requests, %d callers, pool %d: %.0f req/s, p50 %.3f ms, p99 %.3f ms",
                latencies.count, concurrency, poolSize, Double(latencies.count) / seconds, percentile(0.5),
                percentile(0.99)))
    }
}
