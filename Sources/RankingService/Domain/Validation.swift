import Foundation
import ServiceKit

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
    /// v2: with fewer than ``minimumPeers`` peers, a result at this share of its physical bound or above is held.
    var nearBoundShare = 0.85
    /// v2: tps and total_tokens ÷ duration may differ by this share.
    var tokenTolerance = 0.10
    /// v2: tps may exceed what the concurrency, tokens per request and latency allow (Little's law) by this share.
    var concurrencySlack = 0.25
    /// v2: per-request records and the results may differ by this share (totals and mean latency).
    var requestTolerance = 0.05
    /// Uploaded results of another client count tokens with their own tokenizer (DeepStressModel: tiktoken's
    /// cl100k), which may give this many times the model's own tokens (CJK text): its physical bounds allow for it.
    var foreignTokenizerSlack = 1.5

    static let v1 = ValidationRules(version: 1)
    static let v2 = ValidationRules(version: 2)

    func validate(_ facts: SubmissionFacts) -> ValidationOutcome {
        var violations: [RuleViolation] = []
        var doubts: [RuleViolation] = []
        violations += ranges(facts)
        violations += session(facts)
        violations += duration(facts)
        violations += device(facts)
        if facts.external == nil {
            violations += cadence(facts)
            violations += consistency(facts)
            violations += dataset(facts)
        } else {
            violations += external(facts)
        }
        if version >= 2 {
            if facts.external == nil { violations += proof(facts) }
            violations += tokens(facts)
            violations += requestRecords(facts)
            violations += duplicate(facts)
            let physical = physical(facts)
            violations += physical.impossible
            doubts += physical.doubtful
            doubts += overlap(facts)
        }
        if !violations.isEmpty { return .rejected(violations) }
        let unusual = doubts + plausibility(facts)
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
        if version >= 2, results.totalTokens <= 0 || results.totalRequests <= 0 || results.successfulRequests <= 0 {
            found.append(
                .init(
                    code: "value_out_of_range",
                    detail: "total_tokens, total_requests and successful_requests must be above 0 (rule set v2)."))
        }
        if version >= 2, results.concurrentCount > facts.sessionConcurrency {
            found.append(
                .init(
                    code: "value_out_of_range",
                    detail:
                        "results.concurrent_count \(results.concurrentCount) is more than the \(facts.sessionConcurrency) the session declared."
                ))
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

// MARK: rule set v2 (docs/VALIDATION.md)

extension ValidationRules {
    /// The device answered the session's dataset challenge, so it holds the decrypted dataset.
    func proof(_ facts: SubmissionFacts) -> [RuleViolation] {
        guard let expected = facts.expectedProof else {
            return [
                .init(
                    code: "dataset_proof_missing",
                    detail:
                        "This session has no dataset challenge (it started before rule set v2); start a new session.")
            ]
        }
        let given = facts.givenProof.lowercased()
        if given.isEmpty {
            return [
                .init(
                    code: "dataset_proof_missing",
                    detail: "The submit carries no dataset_proof: answer the session's dataset_challenge.")
            ]
        }
        return constantTimeEqual(Array(given.utf8), Array(expected.lowercased().utf8))
            ? []
            : [
                .init(
                    code: "dataset_proof_invalid",
                    detail: "dataset_proof is not the HMAC of the challenged bytes of this dataset version.")
            ]
    }

    /// The throughput is what the token count and the duration say, and what the concurrency can produce at the
    /// claimed latency (Little's law: each of C workers makes at most tokens-per-request ÷ latency tokens a second).
    func tokens(_ facts: SubmissionFacts) -> [RuleViolation] {
        let results = facts.results
        guard results.totalTokens > 0, results.successfulRequests > 0, results.duration > 0, results.avgLatency > 0,
            results.tps > 0, results.concurrentCount > 0
        else { return [] }
        var found: [RuleViolation] = []
        if results.avgLatency > results.duration {
            found.append(
                .init(
                    code: "result_inconsistent",
                    detail:
                        "avg_latency \(format(results.avgLatency)) s is longer than the whole run (\(format(results.duration)) s)."
                ))
        }
        let measured = Double(results.totalTokens) / results.duration
        if abs(results.tps - measured) > tokenTolerance * measured {
            found.append(
                .init(
                    code: "result_inconsistent",
                    detail:
                        "tps \(format(results.tps)) is not total_tokens ÷ duration (\(format(measured))) within \(Int(tokenTolerance * 100)) %."
                ))
        }
        let perRequest = Double(results.totalTokens) / Double(results.successfulRequests)
        let reachable = Double(results.concurrentCount) * perRequest / results.avgLatency
        if results.tps > reachable * (1 + concurrencySlack) {
            found.append(
                .init(
                    code: "result_inconsistent",
                    detail:
                        "\(results.concurrentCount) concurrent requests of \(format(perRequest)) tokens taking \(format(results.avgLatency)) s each make at most \(format(reachable)) tokens/s, not \(format(results.tps))."
                ))
        }
        return found
    }

    /// Per-request records, when sent, add up to the results.
    func requestRecords(_ facts: SubmissionFacts) -> [RuleViolation] {
        let requests = facts.requests
        guard !requests.isEmpty else { return [] }
        let results = facts.results
        var problems: [String] = []
        if requests.contains(where: { !$0.latency.isFinite || $0.latency <= 0 || $0.outputTokens < 0 }) {
            problems.append("every request needs a latency above 0 and output_tokens of at least 0")
        }
        let succeeded = requests.filter(\.success)
        if Int64(requests.count) != results.totalRequests {
            problems.append("\(requests.count) request records, but total_requests is \(results.totalRequests)")
        }
        if Int64(succeeded.count) != results.successfulRequests {
            problems.append(
                "\(succeeded.count) successful request records, but successful_requests is \(results.successfulRequests)"
            )
        }
        let tokens = succeeded.reduce(0.0) { $0 + Double($1.outputTokens) }
        if abs(tokens - Double(results.totalTokens)) > requestTolerance * max(1, Double(results.totalTokens)) {
            problems.append(
                "the successful requests generated \(Int64(tokens)) tokens, but total_tokens is \(results.totalTokens)")
        }
        let latencies = succeeded.map(\.latency).filter { $0.isFinite && $0 > 0 }.sorted()
        if !latencies.isEmpty {
            let mean = latencies.reduce(0, +) / Double(latencies.count)
            if abs(mean - results.avgLatency) > requestTolerance * mean {
                problems.append(
                    "the successful requests' mean latency is \(format(mean)) s, but avg_latency is \(format(results.avgLatency)) s"
                )
            }
            // Clients interpolate percentiles differently: a claimed percentile must lie between the records'
            // percentiles five points either side of it.
            for (name, claimed, q) in [
                ("p50", results.p50Latency, 0.50), ("p95", results.p95Latency, 0.95), ("p99", results.p99Latency, 0.99),
            ] where claimed > 0 {
                let low = quantile(latencies, max(0, q - 0.05)) * (1 - requestTolerance)
                let high = quantile(latencies, min(1, q + 0.05)) * (1 + requestTolerance)
                if !(low...high).contains(claimed) {
                    problems.append(
                        "\(name)_latency \(format(claimed)) s is outside what the records give (\(format(low))–\(format(high)) s)"
                    )
                }
            }
        }
        return problems.isEmpty
            ? [] : [.init(code: "requests_inconsistent", detail: problems.joined(separator: "; ") + ".")]
    }

    /// An uploaded result of another client: consistent with itself, and run on exactly the prompts of an active
    /// version of ours, all of them (the client sends each prompt once, all at once). Stands in for the session
    /// rules (cadence, series, checksum, dataset proof), which need a session's history.
    func external(_ facts: SubmissionFacts) -> [RuleViolation] {
        guard let evidence = facts.external else { return [] }
        var found: [RuleViolation] = []
        if !evidence.inconsistencies.isEmpty {
            found.append(
                .init(
                    code: "result_inconsistent",
                    detail: "The result contradicts itself: " + evidence.inconsistencies.joined(separator: "; ") + "."))
        }
        guard let name = evidence.datasetName, facts.datasetActive else {
            return found + [
                .init(code: "dataset_inactive", detail: "The dataset version is not an active one of this server.")
            ]
        }
        if evidence.claimedName != name {
            found.append(
                .init(
                    code: "dataset_mismatch",
                    detail:
                        "The result names the dataset \"\(evidence.claimedName)\"; this version's package is \"\(name)\"."
                ))
        }
        func ids(_ list: [Int64], _ count: Int) -> String {
            list.map(String.init).joined(separator: ", ")
                + (count > list.count ? " and \(count - list.count) more" : "")
        }
        if evidence.unknownCount > 0 {
            found.append(
                .init(
                    code: "dataset_prompts_mismatch",
                    detail:
                        "Prompt ids \(ids(evidence.unknownPrompts, evidence.unknownCount)) are not in this dataset version."
                ))
        }
        if evidence.mismatchedCount > 0 {
            found.append(
                .init(
                    code: "dataset_prompts_mismatch",
                    detail:
                        "The prompts with ids \(ids(evidence.mismatchedPrompts, evidence.mismatchedCount)) are not this dataset version's text."
                ))
        }
        if evidence.prompts != evidence.datasetItems {
            found.append(
                .init(
                    code: "dataset_incomplete",
                    detail:
                        "The run sent \(evidence.prompts) of the version's \(evidence.datasetItems) prompts; a ranked run sends each once."
                ))
        }
        return found
    }

    /// Exactly the figures of a stored record: copied, not measured.
    func duplicate(_ facts: SubmissionFacts) -> [RuleViolation] {
        guard facts.duplicateOf != nil else { return [] }
        return [
            .init(
                code: "duplicate_result",
                detail:
                    "These figures are identical, to the last digit, to an earlier submission's; results are measured, not copied."
            )
        ]
    }

    /// One GPU runs one benchmark at full speed at a time: overlapping runs of one device are held.
    func overlap(_ facts: SubmissionFacts) -> [RuleViolation] {
        guard facts.overlappingRuns > 0 else { return [] }
        return [
            .init(
                code: "overlapping_runs",
                detail:
                    "This device submitted \(facts.overlappingRuns) other run(s) whose test time overlaps this one's; an operator reviews it."
            )
        ]
    }

    /// What the claimed GPUs can physically do for the claimed model (``PhysicalEnvelope``): beyond it is impossible
    /// (rejected); an unknown GPU, an unknown mixture of experts, weights larger than the GPUs' memory, or — with too
    /// few peers to compare — a result near the bound is held for an operator.
    func physical(_ facts: SubmissionFacts) -> (impossible: [RuleViolation], doubtful: [RuleViolation]) {
        guard let claim = facts.hardware else { return ([], []) }
        guard let gpu = claim.gpu else {
            return (
                [],
                [
                    .init(
                        code: "unknown_gpu",
                        detail:
                            "The hardware catalog (version \(claim.catalogVersion)) does not know the GPU \"\(claim.gpuName)\"; an operator reviews the result."
                    )
                ]
            )
        }
        var impossible: [RuleViolation] = []
        var doubtful: [RuleViolation] = []
        let active: Double
        switch claim.reading {
        case .dense: active = claim.modelParams
        case .mixture(let billions): active = min(billions, claim.modelParams)
        case .unknownMixture:
            return (
                [],
                [
                    .init(
                        code: "bound_unknown",
                        detail:
                            "The model looks like a mixture of experts whose active parameters are not known, so no physical bound applies; an operator reviews the result."
                    )
                ]
            )
        }
        let strict = PhysicalEnvelope(
            gpu: gpu, count: claim.gpuCount, activeBillions: active,
            bytesPerParameter: (claim.quantization ?? .smallest).bytesPerParameter)
        let likely = PhysicalEnvelope(
            gpu: gpu, count: claim.gpuCount, activeBillions: active,
            bytesPerParameter: (claim.quantization ?? .common).bytesPerParameter)
        let results = facts.results
        let concurrency = Int(results.concurrentCount)
        let slack = facts.external == nil ? 1.0 : foreignTokenizerSlack
        let weights = claim.modelParams * likely.bytesPerParameter
        let memory = Double(claim.gpuCount) * gpu.memoryGB
        if weights > memory {
            doubtful.append(
                .init(
                    code: "exceeds_gpu_memory",
                    detail:
                        "\(format(weights)) GB of weights do not fit in \(format(memory)) GB of GPU memory; offloaded runs are reviewed by an operator."
                ))
        }
        if claim.claimedMemoryGB > gpu.memoryGB * 1.1 + 1 {
            doubtful.append(
                .init(
                    code: "gpu_memory_mismatch",
                    detail:
                        "\(gpu.name) has \(format(gpu.memoryGB)) GB, not the \(format(claim.claimedMemoryGB)) GB reported; an operator reviews the result."
                ))
        }
        var exceeded: [String] = []
        let stream =
            results.successfulRequests > 0 && results.avgLatency > 0
            ? Double(results.totalTokens) / Double(results.successfulRequests) / results.avgLatency : 0
        if stream > strict.streamBound * slack {
            exceeded.append(
                "one request generated \(format(stream)) tokens/s on average, above the \(format(strict.streamBound)) tokens/s one stream can reach: \(strict.described)"
            )
        }
        let aggregate = strict.aggregateBound(concurrency: concurrency) * slack
        if results.tps > aggregate {
            exceeded.append(
                "tps \(format(results.tps)) is above the \(format(aggregate)) tokens/s \(concurrency) concurrent streams can reach (memory bandwidth, or \(format(strict.computeBound)) by compute): \(strict.described)"
            )
        }
        let fast = facts.requests.filter {
            $0.success && $0.latency > 0 && Double($0.outputTokens) / $0.latency > strict.streamBound * slack
        }
        if !fast.isEmpty {
            exceeded.append(
                "\(fast.count) request record(s) generated faster than the \(format(strict.streamBound * slack)) tokens/s one stream can reach"
            )
        }
        if !exceeded.isEmpty {
            let violation = RuleViolation(
                code: "exceeds_physical_bound",
                detail: exceeded.joined(separator: "; ")
                    + (claim.speculative ? " (speculative decoding declared: an operator reviews it)." : "."))
            if claim.speculative { doubtful.append(violation) } else { impossible.append(violation) }
        } else if facts.peerTPS.count < minimumPeers {
            let share = max(
                likely.streamBound > 0 ? stream / likely.streamBound : 0,
                results.tps / likely.aggregateBound(concurrency: concurrency))
            if share >= nearBoundShare {
                doubtful.append(
                    .init(
                        code: "near_physical_bound",
                        detail:
                            "The result reaches \(Int((share * 100).rounded())) % of what \(likely.described) allows, with fewer than \(minimumPeers) comparable results to judge it by; an operator reviews it."
                    ))
            }
        }
        return (impossible, doubtful)
    }
}

/// Linear-interpolated quantile of sorted values.
func quantile(_ sorted: [Double], _ q: Double) -> Double {
    guard let first = sorted.first else { return 0 }
    guard sorted.count > 1 else { return first }
    let position = q * Double(sorted.count - 1)
    let low = Int(position.rounded(.down))
    let high = min(low + 1, sorted.count - 1)
    return sorted[low] + (sorted[high] - sorted[low]) * (position - Double(low))
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return 0 }
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

private func format(_ value: Double) -> String { String(format: "%.2f", value) }
