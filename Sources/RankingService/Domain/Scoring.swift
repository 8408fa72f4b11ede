import Foundation

/// What scores are normalised against: per dataset version, so results on a harder dataset are comparable among
/// themselves (docs/SCORING.md).
struct ScoreReference: Sendable, Equatable {
    /// Tokens per second that score 0.5 on throughput.
    var tps = 100.0
    /// Seconds of median latency that score 0.5 on latency.
    var latency = 1.0
    /// Tokens per joule that score 0.5 on energy.
    var tokensPerJoule = 0.5

    static let standard = ScoreReference()
}

/// The parts of a score, each 0…1, and the total 0…100.
struct ScoreBreakdown: Sendable, Equatable, Codable {
    var formulaVersion: Int
    var throughput: Double
    var latency: Double
    var performance: Double
    var successRate: Double
    var energy: Double
    var efficiency: Double
    var steadiness: Double
    var tail: Double
    var stability: Double
    var total: Double
}

/// The versioned score formula. The server computes it from the submitted results and metric series; a score the
/// client sends is ignored. v1: performance 50 % (throughput 60 %, latency 40 %), efficiency 30 % (success rate,
/// energy), stability 20 % (steadiness of throughput over the series, latency tail).
struct ScoreFormula: Sendable {
    let version: Int

    static let v1 = ScoreFormula(version: 1)

    /// Doubling (or halving) a quantity relative to its reference moves its part by this much.
    static let stepPerDoubling = 1.0 / 8

    func score(_ results: BenchmarkResults, series: [MetricSample], reference: ScoreReference) -> ScoreBreakdown {
        let throughput = Self.logScale(results.tps, reference: reference.tps)
        let medianLatency = results.p50Latency > 0 ? results.p50Latency : results.avgLatency
        let latency = 1 - Self.logScale(medianLatency, reference: reference.latency)
        let performance = 0.6 * throughput + 0.4 * latency

        let successRate =
            results.totalRequests > 0
            ? Self.unit(Double(results.successfulRequests) / Double(results.totalRequests)) : 0
        let power = series.map(\.system.powerWatts).filter { $0.isFinite && $0 > 0 }
        // Without power readings energy counts as average: reporting power is optional in the client protocol.
        let energy =
            power.isEmpty ? 0.5 : Self.logScale(results.tps / median(power), reference: reference.tokensPerJoule)
        let efficiency = 0.5 * successRate + 0.5 * energy

        let rates = series.map(\.test.tps).filter { $0.isFinite && $0 > 0 }
        let steadiness: Double
        if rates.count >= 3 {
            let mean = rates.reduce(0, +) / Double(rates.count)
            let variance = rates.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(rates.count)
            steadiness = Self.unit(1 - variance.squareRoot() / mean)
        } else {
            steadiness = 0  // too few reports to show the run was steady
        }
        let tail: Double
        if results.p50Latency > 0, results.p99Latency >= results.p50Latency {
            tail = Self.unit(1 - log2(results.p99Latency / results.p50Latency) / 4)
        } else {
            tail = 0.5
        }
        let stability = 0.5 * steadiness + 0.5 * tail

        let total = 100 * (0.5 * performance + 0.3 * efficiency + 0.2 * stability)
        return ScoreBreakdown(
            formulaVersion: version, throughput: throughput, latency: latency, performance: performance,
            successRate: successRate, energy: energy, efficiency: efficiency, steadiness: steadiness, tail: tail,
            stability: stability, total: (total * 100).rounded() / 100)
    }

    /// 0.5 at the reference, ±1/8 per doubling, clamped to 0…1 (so 16× the reference is 1, 1/16 is 0).
    static func logScale(_ value: Double, reference: Double) -> Double {
        guard value.isFinite, value > 0, reference > 0 else { return 0 }
        return unit(0.5 + log2(value / reference) * stepPerDoubling)
    }

    static func unit(_ value: Double) -> Double { value.isFinite ? min(1, max(0, value)) : 0 }
}
