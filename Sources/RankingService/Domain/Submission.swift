/// What a benchmark session reports, in the ranking domain's own types (the RPC layer converts from protobuf).
/// Times are microseconds since the Unix epoch; latencies seconds; usages percent.
struct SystemSample: Sendable, Equatable, Codable {
    var cpuUsage = 0.0
    var memoryUsage = 0.0
    var gpuUsage = 0.0
    var gpuMemoryUsage = 0.0
    var gpuTemperature = 0.0
    var powerWatts = 0.0
}

struct TestSample: Sendable, Equatable, Codable {
    var tps = 0.0
    var latency = 0.0
    var concurrentCount = 0
    var completedRequests: Int64 = 0
    var failedRequests: Int64 = 0
    var totalTokens: Int64 = 0
}

struct MetricSample: Sendable, Equatable, Codable {
    var at: Int64
    var system = SystemSample()
    var test = TestSample()
}

struct BenchmarkResults: Sendable, Equatable, Codable {
    var tps = 0.0
    var avgLatency = 0.0
    var p50Latency = 0.0
    var p95Latency = 0.0
    var p99Latency = 0.0
    var concurrentCount = 0
    var totalRequests: Int64 = 0
    var successfulRequests: Int64 = 0
    var failedRequests: Int64 = 0
    var totalTokens: Int64 = 0
    /// Seconds the client says the test ran.
    var duration = 0.0
}

/// Everything one validation pass looks at: the session as started, what the client submitted, and the server's
/// own facts (the device as registered, the dataset, the device's other submissions, the peer bucket).
struct SubmissionFacts: Sendable {
    /// Session.
    var startedAt: Int64
    var submittedAt: Int64
    var alreadySubmitted = false
    var metricsIntervalSeconds = 10
    /// The concurrency the session declared when it started.
    var sessionConcurrency = 1
    /// Fingerprint of the device when the session started and now (hardware, GPU hashes as registered).
    var sessionFingerprint: DeviceFingerprint
    var currentFingerprint: DeviceFingerprint
    /// Dataset.
    var datasetActive = true
    var claimedChecksum: String
    var datasetChecksum: String
    var datasetMinimumDurationSeconds = 0
    /// The device's submissions in the last 24 h, and how many it may make.
    var submissionsToday = 0
    var dailyLimit = 20
    /// Accepted results of the same GPU, framework and model-size bucket (tokens per second).
    var peerTPS: [Double] = []
    /// What the client submitted.
    var results: BenchmarkResults
    var series: [MetricSample]
    /// The series the client sent with its submit (kept with the result; only its values are judged).
    var clientSeries: [MetricSample] = []

    // Rule set v2 (docs/VALIDATION.md).
    /// The hardware and model the session claimed, resolved against the catalog (nil: judged by v1 only).
    var hardware: HardwareClaim?
    /// The answer the session's dataset challenge expects (nil: the session has none) and the one the client gave.
    var expectedProof: String?
    var givenProof = ""
    /// Per-request records the client sent with its submit (empty: none).
    var requests: [RequestRecord] = []
    /// A stored record with exactly these figures, if any (another device's, or this one's).
    var duplicateOf: String?
    /// This device's other judged runs whose test time overlaps this one's.
    var overlappingRuns = 0
    /// An uploaded result of another client (DeepStressModel): no session history, other evidence instead.
    var external: ExternalEvidence?
}

/// What stands in for a session's history when another client's result is uploaded (docs/DEEPSTRESSMODEL.md,
/// "Validation"): the client's summary against its own records, and its prompts against the dataset version's.
struct ExternalEvidence: Sendable, Equatable {
    /// Where the result contradicts itself, or its run's times contradict its signature.
    var inconsistencies: [String] = []
    /// The version's name and number of prompts (nil when the version is unknown), and the name the result gives.
    var datasetName: String?
    var datasetItems = 0
    var claimedName = ""
    /// Distinct prompts the result's records carry, and those that are no prompt of the version or not its text
    /// (the first few ids of each, and how many).
    var prompts = 0
    var unknownPrompts: [Int64] = []
    var unknownCount = 0
    var mismatchedPrompts: [Int64] = []
    var mismatchedCount = 0
}

/// One request of a run as the client recorded it.
struct RequestRecord: Sendable, Equatable {
    var outputTokens: Int64
    /// Seconds from sending the request to its last token.
    var latency: Double
    var success: Bool
}

struct DeviceFingerprint: Sendable, Equatable {
    var hardwareHash: String
    var gpuHash: String
}
