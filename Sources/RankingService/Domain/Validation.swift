import Foundation

/// One failed rule: a stable code and what exactly was wrong.
struct RuleViolation: Sendable, Equatable, Codable {
    var code: String
    var detail: String
}

/// The outcome of validating a submission (docs/VALIDATION.md lists the rules).
enum ValidationOutcome: Sendable, Equatable {
    case accepted
    /// Every failed rule, so a client learns all that is wrong at once.
    case rejected([RuleViolation])
    /// Valid, but statistically unusual for its peers: an operator decides.
    case heldForReview([RuleViolation])
}

/// A versioned rule set. Rules are pure functions of ``SubmissionFacts``; a new rule or threshold is a new version,
/// and every record keeps the version that judged it.
struct ValidationRules: Sendable {
    let version: Int
    /// Claimed duration may exceed the session's wall time by this much (clock granularity, network).
    var durationSlackSeconds = 5.0
    /// At least this share of the expected samples must be present.
    var minimumSampleShare = 0.5
    /// No gap between samples (or before the first, after the last) longer than this many intervals.
    var maximumGapIntervals = 3.0
    /// The result's tps and latency may differ from the series' medians by at most this share.
    var seriesTolerance = 0.35
    /// Robust z-score beyond which a result is held for review, and the peers needed to judge.
    var outlierZ = 3.5
    var minimumPeers = 5
    /// Most samples a session keeps (reports beyond are refused at the API).
    var maximumSamples = 10_000

    static let v1 = ValidationRules(version: 1)

    func validate(_ facts: SubmissionFacts) -> ValidationOutcome {
        var violations: [RuleViolation] = []
        violations += ranges(facts)
        violations += session(facts)
        violations += duration(facts)
        violations += cadence(facts)
        violations += consistency(facts)
        violations += device(facts)
        violations += dataset(facts)
        if !violations.isEmpty { return .rejected(violations) }
        let unusual = plausibility(facts)
        return unusual.isEmpty ? .accepted : .heldForReview(unusual)
    }

    // MARK: rules

    /// Usage 0–100; tps, latency and concurrency > 0; counts consistent; every number finite.
    func ranges(_ facts: SubmissionFacts) -> [RuleViolation] {
        var found: [RuleViolation] = []
        let results = facts.results
        func positive(_ value: Double, _ name: String) {
            if !value.isFinite || value <= 0 {
                found.append(.init(code: "value_out_of_range", detail: "\(name) must be a finite number above 0."))
            }
        }
        positive(results.tps, "results.tps")
        positive(results.avgLatency, "results.avg_latency")
        positive(results.duration, "results.duration")
        for (value, name) in [(results.p50Latency, "p50"), (results.p95Latency, "p95"), (results.p99Latency, "p99")]
        where value != 0 {
            positive(value, "results.\(name)_latency")
        }
        if results.p50Latency > 0, results.p95Latency > 0, results.p99Latency > 0,
            !(results.p50Latency <= results.p95Latency && results.p95Latency <= results.p99Latency)
        {
            found.append(
                .init(code: "value_out_of_range", detail: "Latency percentiles must not decrease (p50 ≤ p95 ≤ p99)."))
        }
        if results.concurrentCount <= 0 {
            found.append(.init(code: "value_out_of_range", detail: "results.concurrent_count must be above 0."))
        }
        if results.totalRequests < 0 || results.successfulRequests < 0 || results.failedRequests < 0
            || results.totalTokens < 0
            || results.successfulRequests.addingReportingOverflow(results.failedRequests).overflow
            || results.successfulRequests + results.failedRequests > results.totalRequests
        {
            found.append(
                .init(code: "value_out_of_range", detail: "Request counts must be ≥ 0 and successful + failed ≤ total.")
            )
        }
        let samples =
            facts.series.enumerated().map { ("reports[\($0.offset)]", $0.element) }
            + facts.clientSeries.enumerated().map { ("metrics[\($0.offset)]", $0.element) }
        for (label, sample) in samples {
            let usages = [
                ("cpu_usage", sample.system.cpuUsage), ("memory_usage", sample.system.memoryUsage),
                ("gpu_usage", sample.system.gpuUsage), ("gpu_memory_usage", sample.system.gpuMemoryUsage),
            ]
            for (name, value) in usages where !(value.isFinite && (0...100).contains(value)) {
                found.append(
                    .init(code: "value_out_of_range", detail: "\(label).system.\(name) must be 0 to 100."))
            }
            if !(sample.test.tps.isFinite && sample.test.tps > 0)
                || !(sample.test.latency.isFinite && sample.test.latency > 0)
                || sample.test.concurrentCount <= 0
            {
                found.append(
                    .init(
                        code: "value_out_of_range",
                        detail: "\(label).test needs tps, latency and concurrent_count above 0."))
            }
        }
        return found
    }

    /// One submit per session.
    func session(_ facts: SubmissionFacts) -> [RuleViolation] {
        facts.alreadySubmitted
            ? [.init(code: "already_submitted", detail: "This session already has a submission.")] : []
    }

    /// Long enough for the dataset, and no longer than the session has existed.
    func duration(_ facts: SubmissionFacts) -> [RuleViolation] {
        var found: [RuleViolation] = []
        let duration = facts.results.duration
        guard duration.isFinite, duration > 0 else { return [] }  // reported by ranges
        if duration < Double(facts.datasetMinimumDurationSeconds) {
            found.append(
                .init(
                    code: "duration_too_short",
                    detail:
                        "The test ran \(format(duration)) s; this dataset needs at least \(facts.datasetMinimumDurationSeconds) s."
                ))
        }
        let wall = (Double(facts.submittedAt) - Double(facts.startedAt)) / 1_000_000
        if duration > wall + durationSlackSeconds {
            found.append(
                .init(
                    code: "duration_exceeds_session",
                    detail:
                        "The claimed \(format(duration)) s is longer than the \(format(wall)) s since the session started."
                ))
        }
        return found
    }

    /// Metric reports at the session's cadence: enough of them, without long silences, inside the session.
    func cadence(_ facts: SubmissionFacts) -> [RuleViolation] {
        let interval = Double(max(1, facts.metricsIntervalSeconds))
        let duration = facts.results.duration
        guard duration.isFinite, duration > 0 else { return [] }
        // In Double: a claimed duration may be any finite number, far beyond what an Int holds.
        let needed = ((duration / interval).rounded(.down) * minimumSampleShare).rounded(.up)
        var found: [RuleViolation] = []
        if Double(facts.series.count) < needed {
            found.append(
                .init(
                    code: "metrics_missing",
                    detail:
                        "\(facts.series.count) metric reports for a \(format(duration)) s test; at least \(String(format: "%.0f", needed)) expected (one per \(max(1, facts.metricsIntervalSeconds)) s)."
                ))
        }
        let times = facts.series.map(\.at).sorted()
        if let first = times.first, let last = times.last {
            if first < facts.startedAt || last > facts.submittedAt {
                found.append(
                    .init(
                        code: "metrics_outside_session",
                        detail: "Metric reports must fall between the session's start and its submission."))
            }
            // The test ran the last `duration` seconds before the submit (setup may come first): reports must cover
            // it from start to end without a long silence.
            let testStart = max(Double(facts.startedAt), Double(facts.submittedAt) - duration * 1_000_000)
            // Differences in Double: timestamps are the server's, but no arithmetic here may trap whatever they are.
            var gaps = zip(times.dropFirst(), times).map { (Double($0) - Double($1)) / 1_000_000 }
            gaps.append((Double(first) - testStart) / 1_000_000)
            gaps.append((Double(facts.submittedAt) - Double(last)) / 1_000_000)
            if let widest = gaps.max(), widest > interval * maximumGapIntervals {
                found.append(
                    .init(
                        code: "metrics_gap",
                        detail:
                            "Metric reports stop for \(format(widest)) s; at most \(format(interval * maximumGapIntervals)) s between reports."
                    ))
            }
        }
        return found
    }

    /// The final result agrees with the reported series (medians of tps and latency).
    func consistency(_ facts: SubmissionFacts) -> [RuleViolation] {
        let tps = facts.series.map(\.test.tps).filter { $0.isFinite && $0 > 0 }
        let latency = facts.series.map(\.test.latency).filter { $0.isFinite && $0 > 0 }
        guard !tps.isEmpty, !latency.isEmpty, facts.results.tps > 0, facts.results.avgLatency > 0 else { return [] }
        var found: [RuleViolation] = []
        for (name, claimed, observed) in [
            ("tps", facts.results.tps, median(tps)), ("latency", facts.results.avgLatency, median(latency)),
        ]
        where abs(claimed - observed) > seriesTolerance * observed {
            found.append(
                .init(
                    code: "result_inconsistent",
                    detail:
                        "The result's \(name) \(format(claimed)) is more than \(Int(seriesTolerance * 100)) % away from the reported series' median \(format(observed))."
                ))
        }
        return found
    }

    /// The same device, with the same GPU, as registered when the session started.
    func device(_ facts: SubmissionFacts) -> [RuleViolation] {
        var found: [RuleViolation] = []
        if facts.sessionFingerprint.hardwareHash != facts.currentFingerprint.hardwareHash {
            found.append(
                .init(
                    code: "device_mismatch", detail: "The device's hardware is not the one registered for this session."
                ))
        }
        if facts.sessionFingerprint.gpuHash != facts.currentFingerprint.gpuHash {
            found.append(
                .init(code: "gpu_mismatch", detail: "The device's GPU is not the one registered for this session."))
        }
        if facts.submissionsToday >= facts.dailyLimit {
            found.append(
                .init(
                    code: "daily_limit_reached",
                    detail:
                        "This device has made \(facts.submissionsToday) submissions in 24 h; the limit is \(facts.dailyLimit)."
                ))
        }
        return found
    }

    /// The dataset is active and the client used exactly its bytes.
    func dataset(_ facts: SubmissionFacts) -> [RuleViolation] {
        var found: [RuleViolation] = []
        if !facts.datasetActive {
            found.append(.init(code: "dataset_inactive", detail: "The dataset version is no longer active."))
        }
        if facts.claimedChecksum.lowercased() != facts.datasetChecksum.lowercased() {
            found.append(
                .init(
                    code: "dataset_checksum_mismatch",
                    detail: "The dataset checksum is not the published SHA-256 of this version."))
        }
        return found
    }

    /// Robust z-score (median and MAD) of tps among peers of the same GPU, framework and model size.
    func plausibility(_ facts: SubmissionFacts) -> [RuleViolation] {
        let peers = facts.peerTPS.filter { $0.isFinite && $0 > 0 }
        guard peers.count >= minimumPeers else { return [] }
        let center = median(peers)
        let deviation = median(peers.map { abs($0 - center) })
        guard deviation > 0 else { return [] }
        let z = 0.6745 * (facts.results.tps - center) / deviation
        guard abs(z) > outlierZ else { return [] }
        return [
            .init(
                code: "implausible_result",
                detail:
                    "tps \(format(facts.results.tps)) is far from \(peers.count) comparable results (median \(format(center)), robust z \(format(z)))."
            )
        ]
    }
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return 0 }
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

private func format(_ value: Double) -> String { String(format: "%.2f", value) }
