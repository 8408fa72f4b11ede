import Foundation
import Testing

@testable import RankingService

@Suite("Score formula v1")
struct ScoringTests {
    let formula = ScoreFormula.v1

    func score(_ change: (inout BenchmarkResults, inout [MetricSample]) -> Void = { _, _ in }) -> ScoreBreakdown {
        let facts = validFacts()
        var results = facts.results
        var series = facts.series
        change(&results, &series)
        return formula.score(results, series: series, reference: .standard)
    }

    @Test("every part and the total stay in range, and the same input gives the same score")
    func bounds() {
        let breakdown = score()
        for part in [
            breakdown.throughput, breakdown.latency, breakdown.performance, breakdown.successRate, breakdown.energy,
            breakdown.efficiency, breakdown.steadiness, breakdown.tail, breakdown.stability,
        ] {
            #expect((0...1).contains(part))
        }
        #expect((0...100).contains(breakdown.total))
        #expect(score() == breakdown)
        #expect(breakdown.formulaVersion == 1)
    }

    @Test("at the reference throughput and latency the performance part is one half")
    func reference() {
        let breakdown = score { results, _ in
            results.tps = 100
            results.p50Latency = 1
        }
        #expect(abs(breakdown.throughput - 0.5) < 1e-9 && abs(breakdown.latency - 0.5) < 1e-9)
        #expect(ScoreFormula.logScale(200, reference: 100) == 0.625)
        #expect(ScoreFormula.logScale(1600, reference: 100) == 1)
        #expect(ScoreFormula.logScale(1, reference: 100) == 0)
    }

    @Test(
        "more throughput, lower latency, fewer failures, less energy, steadier runs and shorter tails each score higher"
    )
    func monotonic() {
        let base = score().total
        #expect(score { results, _ in results.tps *= 2 }.total > base)
        // All latencies halved (halving only the median would lengthen the tail relative to it: a trade the formula
        // weighs evenly).
        #expect(
            score { results, _ in
                results.avgLatency /= 2
                results.p50Latency /= 2
                results.p95Latency /= 2
                results.p99Latency /= 2
            }.total > base)
        #expect(
            score { results, _ in
                results.successfulRequests = 100; results.failedRequests = 0
            }.total > base)
        #expect(
            score { _, series in for index in series.indices { series[index].system.powerWatts = 150 } }.total > base)
        #expect(score { _, series in for index in series.indices { series[index].test.tps = 101 } }.total > base)
        #expect(score { results, _ in results.p99Latency = 0.5 }.total > base)
    }

    @Test("missing readings are neutral or cost, never a bonus")
    func ignoredAndMissing() {
        let withoutPower = score { _, series in for index in series.indices { series[index].system.powerWatts = 0 } }
        #expect(withoutPower.energy == 0.5)
        let fewSamples = score { _, series in series = Array(series.prefix(2)) }
        #expect(fewSamples.steadiness == 0)
        #expect(fewSamples.total < score().total)
    }
}
