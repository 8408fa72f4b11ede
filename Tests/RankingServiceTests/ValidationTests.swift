import Foundation
import Testing

@testable import RankingService

/// A submission that passes every rule of v1; each case below changes one thing.
func validFacts() -> SubmissionFacts {
    let start: Int64 = 1_800_000_000_000_000
    var series: [MetricSample] = []
    for step in 1...12 {
        let system = SystemSample(
            cpuUsage: 40, memoryUsage: 60, gpuUsage: 95, gpuMemoryUsage: 80, gpuTemperature: 70, powerWatts: 300)
        let tps: Double = 100 + Double(step % 3)
        let test = TestSample(
            tps: tps, latency: 0.5, concurrentCount: 4, completedRequests: Int64(step * 8), failedRequests: 0,
            totalTokens: Int64(step * 1000))
        series.append(MetricSample(at: start + Int64(step) * 10_000_000, system: system, test: test))
    }
    return SubmissionFacts(
        startedAt: start, submittedAt: start + 125_000_000, metricsIntervalSeconds: 10,
        sessionFingerprint: DeviceFingerprint(hardwareHash: "aa", gpuHash: "bb"),
        currentFingerprint: DeviceFingerprint(hardwareHash: "aa", gpuHash: "bb"),
        datasetActive: true, claimedChecksum: "ABC123", datasetChecksum: "abc123", datasetMinimumDurationSeconds: 60,
        submissionsToday: 3, dailyLimit: 20, peerTPS: [90, 95, 100, 104, 110, 98],
        results: BenchmarkResults(
            tps: 101, avgLatency: 0.5, p50Latency: 0.45, p95Latency: 0.8, p99Latency: 1.1, concurrentCount: 4,
            totalRequests: 100, successfulRequests: 98, failedRequests: 2, totalTokens: 12_000, duration: 120),
        series: series)
}

struct RuleCase: CustomTestStringConvertible, Sendable {
    let name: String
    let expected: String
    let change: @Sendable (inout SubmissionFacts) -> Void
    var testDescription: String { "\(name) → \(expected)" }
}

@Suite("Validation rules v1")
struct ValidationTests {
    @Test("the baseline submission is accepted")
    func baseline() {
        #expect(ValidationRules.v1.validate(validFacts()) == .accepted)
    }

    static let failing: [RuleCase] = [
        RuleCase(name: "gpu usage above 100", expected: "value_out_of_range") { $0.series[3].system.gpuUsage = 130 },
        RuleCase(name: "negative cpu usage", expected: "value_out_of_range") { $0.series[0].system.cpuUsage = -1 },
        RuleCase(name: "non-finite tps", expected: "value_out_of_range") { $0.results.tps = .infinity },
        RuleCase(name: "zero latency", expected: "value_out_of_range") { $0.results.avgLatency = 0 },
        RuleCase(name: "zero concurrency", expected: "value_out_of_range") { $0.results.concurrentCount = 0 },
        RuleCase(name: "percentiles decreasing", expected: "value_out_of_range") { $0.results.p99Latency = 0.5 },
        RuleCase(name: "more successes than requests", expected: "value_out_of_range") {
            $0.results.successfulRequests = 200
        },
        RuleCase(name: "sample with zero tps", expected: "value_out_of_range") { $0.series[5].test.tps = 0 },
        RuleCase(name: "second submit", expected: "already_submitted") { $0.alreadySubmitted = true },
        RuleCase(name: "shorter than the dataset needs", expected: "duration_too_short") {
            $0.datasetMinimumDurationSeconds = 300
        },
        RuleCase(name: "longer than the session existed", expected: "duration_exceeds_session") {
            $0.submittedAt = $0.startedAt + 60_000_000
        },
        RuleCase(name: "too few metric reports", expected: "metrics_missing") {
            $0.series = Array($0.series.prefix(4))
        },
        RuleCase(name: "a silence mid-test", expected: "metrics_gap") { facts in facts.series.removeSubrange(3...7) },
        RuleCase(name: "a report from before the session", expected: "metrics_outside_session") {
            $0.series[0].at = $0.startedAt - 1
        },
        RuleCase(name: "tps far from the series", expected: "result_inconsistent") { $0.results.tps = 200 },
        RuleCase(name: "latency far from the series", expected: "result_inconsistent") {
            $0.results.avgLatency = 0.1; $0.results.p50Latency = 0.09
        },
        RuleCase(name: "other hardware", expected: "device_mismatch") { $0.currentFingerprint.hardwareHash = "zz" },
        RuleCase(name: "other GPU", expected: "gpu_mismatch") { $0.currentFingerprint.gpuHash = "zz" },
        RuleCase(name: "daily limit", expected: "daily_limit_reached") { $0.submissionsToday = 20 },
        RuleCase(name: "inactive dataset", expected: "dataset_inactive") { $0.datasetActive = false },
        RuleCase(name: "wrong checksum", expected: "dataset_checksum_mismatch") { $0.claimedChecksum = "def456" },
    ]

    @Test("each rule rejects what it is for, with its own code", arguments: failing)
    func rejects(_ rule: RuleCase) {
        var facts = validFacts()
        rule.change(&facts)
        guard case .rejected(let violations) = ValidationRules.v1.validate(facts) else {
            Issue.record("\(rule.name) was not rejected")
            return
        }
        #expect(violations.map(\.code).contains(rule.expected), "\(violations)")
    }

    static let passing: [RuleCase] = [
        RuleCase(name: "usage exactly 0 and 100", expected: "accepted") {
            $0.series[0].system.gpuUsage = 100; $0.series[1].system.cpuUsage = 0
        },
        RuleCase(name: "percentiles absent", expected: "accepted") {
            $0.results.p50Latency = 0; $0.results.p95Latency = 0; $0.results.p99Latency = 0
        },
        RuleCase(name: "duration exactly the dataset minimum", expected: "accepted") {
            $0.datasetMinimumDurationSeconds = 120
        },
        RuleCase(name: "duration within the slack of wall time", expected: "accepted") {
            $0.submittedAt = $0.startedAt + 117_000_000; $0.series.removeLast()
        },
        RuleCase(name: "half the expected reports", expected: "accepted") { facts in
            facts.series = facts.series.enumerated().filter { $0.offset % 2 == 1 }.map(\.element)
        },
        RuleCase(name: "result 30 % off the series", expected: "accepted") {
            $0.results.tps = 131; $0.peerTPS = []
        },
        RuleCase(name: "one below the daily limit", expected: "accepted") { $0.submissionsToday = 19 },
        RuleCase(name: "checksum in another case", expected: "accepted") { $0.claimedChecksum = "abc123" },
        RuleCase(name: "too few peers to judge", expected: "accepted") {
            $0.peerTPS = [1, 2, 3]; $0.results.tps = 101
        },
    ]

    @Test("each rule lets through what is within bounds", arguments: passing)
    func accepts(_ rule: RuleCase) {
        var facts = validFacts()
        rule.change(&facts)
        #expect(ValidationRules.v1.validate(facts) == .accepted)
    }

    @Test("every failed rule is reported at once")
    func allViolations() {
        var facts = validFacts()
        facts.alreadySubmitted = true
        facts.claimedChecksum = "x"
        facts.series[0].system.gpuUsage = 500
        guard case .rejected(let violations) = ValidationRules.v1.validate(facts) else {
            Issue.record("not rejected")
            return
        }
        #expect(
            Set(violations.map(\.code)) == ["already_submitted", "dataset_checksum_mismatch", "value_out_of_range"])
    }

    @Test("an outlier among its peers is held for review, not rejected; a usual result is accepted")
    func plausibility() {
        var facts = validFacts()
        facts.peerTPS = [20, 21, 19, 22, 20, 18, 21]
        if case .heldForReview(let reasons) = ValidationRules.v1.validate(facts) {
            #expect(reasons.map(\.code) == ["implausible_result"])
        } else {
            Issue.record("the outlier was not held")
        }
        facts.peerTPS = [95, 99, 101, 103, 97, 100]
        #expect(ValidationRules.v1.validate(facts) == .accepted)
    }

    static let extremeDoubles: [Double] = [
        0, -0.0, .leastNonzeroMagnitude, 1e-300, 1e300, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
        Double(Int64.max), Double(Int64.min), .nan, .infinity, -.infinity,
    ]
    static let extremeIntegers: [Int64] = [0, -1, .max, .min, 1 << 53, -(1 << 53)]

    @Test("no value, however extreme, makes a rule or the score formula trap (a huge duration once did)")
    func extremeValues() {
        func judge(_ change: (inout SubmissionFacts) -> Void) {
            var facts = validFacts()
            change(&facts)
            _ = ValidationRules.v1.validate(facts)
            _ = ScoreFormula.v1.score(facts.results, series: facts.series, reference: .standard)
        }
        let doubleFields: [WritableKeyPath<BenchmarkResults, Double>] = [
            \.tps, \.avgLatency, \.p50Latency, \.p95Latency, \.p99Latency, \.duration,
        ]
        let integerFields: [WritableKeyPath<BenchmarkResults, Int64>] = [
            \.totalRequests, \.successfulRequests, \.failedRequests, \.totalTokens,
        ]
        for value in Self.extremeDoubles {
            for field in doubleFields { judge { $0.results[keyPath: field] = value } }
            judge { $0.series[0].test.tps = value }
            judge { $0.series[0].test.latency = value }
            judge { $0.series[0].system.powerWatts = value }
            judge { $0.series[0].system.gpuUsage = value }
            judge { $0.peerTPS = Array(repeating: value, count: 6) + [1] }
        }
        for value in Self.extremeIntegers {
            for field in integerFields {
                judge { facts in
                    for other in integerFields { facts.results[keyPath: other] = value }
                    facts.results[keyPath: field] = value
                }
            }
            judge { $0.results.concurrentCount = Int(value) }
            judge { $0.series[0].at = value }
            judge { $0.startedAt = value }
            judge { $0.metricsIntervalSeconds = Int(value) }
            judge { $0.datasetMinimumDurationSeconds = Int(value) }
        }
    }

    @Test("median and robust spread")
    func statistics() {
        #expect(median([3, 1, 2]) == 2)
        #expect(median([4, 1, 2, 3]) == 2.5)
        #expect(median([]) == 0)
    }
}
