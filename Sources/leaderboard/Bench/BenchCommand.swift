import ArgumentParser
import Foundation
import Logging
import ServiceKit

/// Load generators for `scripts/bench` (docs/PERFORMANCE.md); each prints one line of figures to compare with a
/// reference tool measured in the same run: a JSON object `scripts/bench` reads (`redis`: a line of text).
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Load generators used by scripts/bench (loopback only, bounded by count and time).",
        subcommands: [
            RedisBenchCommand.self, SubmitBenchCommand.self, RankBenchCommand.self, FanoutBenchCommand.self,
            DecryptBenchCommand.self, MixedLoadCommand.self, IdempotencyStormCommand.self,
        ]
    )
}

/// Latencies of one run, sorted, with the percentiles the tables show (milliseconds).
struct Latencies {
    let sorted: [Duration]

    init(_ samples: [Duration]) { sorted = samples.sorted() }

    var count: Int { sorted.count }

    func milliseconds(_ percentile: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        return sorted[min(sorted.count - 1, Int(Double(sorted.count) * percentile))].milliseconds
    }

    var summary: [String: Double] {
        ["p50_ms": milliseconds(0.50), "p95_ms": milliseconds(0.95), "p99_ms": milliseconds(0.99)]
    }
}

extension Duration {
    var milliseconds: Double { Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15 }
    var seconds: Double { milliseconds / 1000 }
}

/// Prints a run's figures as one JSON object (sorted keys), the line `scripts/bench` reads.
func printFigures(_ figures: [String: Any]) {
    let data = (try? JSONSerialization.data(withJSONObject: figures, options: [.sortedKeys])) ?? Data("{}".utf8)
    print(String(decoding: data, as: UTF8.self))
}

/// Runs `concurrency` workers at once, each returning the latencies it measured: all of them, and the wall time of
/// the whole run.
func runWorkers(
    _ concurrency: Int, _ worker: @escaping @Sendable (Int) async throws -> [Duration]
) async throws -> (latencies: Latencies, elapsed: Duration) {
    let clock = ContinuousClock()
    let start = clock.now
    let samples = try await withThrowingTaskGroup(of: [Duration].self) { group in
        for index in 0..<concurrency { group.addTask { try await worker(index) } }
        return try await group.reduce(into: [Duration]()) { $0 += $1 }
    }
    return (Latencies(samples), clock.now - start)
}

/// Runs `work` for every index in `0..<count`, at most `concurrency` at a time.
func forEachConcurrently(
    _ count: Int, concurrency: Int, _ work: @escaping @Sendable (Int) async throws -> Void
) async throws {
    try await withThrowingTaskGroup(of: Void.self) { group in
        var next = 0
        while next < min(count, concurrency) {
            let index = next
            group.addTask { try await work(index) }
            next += 1
        }
        while try await group.next() != nil, next < count {
            let index = next
            group.addTask { try await work(index) }
            next += 1
        }
        try await group.waitForAll()
    }
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
        let (summary, elapsed) = try await runWorkers(concurrency) { _ in
            var samples: [Duration] = []
            samples.reserveCapacity(perCaller)
            for _ in 0..<perCaller {
                let begin = clock.now
                try await client.send(["GET", "bench:key"])
                samples.append(clock.now - begin)
            }
            return samples
        }
        await client.close()
        print(
            String(
                format: "redis GET: %d requests, %d callers, pool %d: %.0f req/s, p50 %.3f ms, p99 %.3f ms",
                summary.count, concurrency, poolSize, Double(summary.count) / elapsed.seconds,
                summary.milliseconds(0.5), summary.milliseconds(0.99)))
    }
}
