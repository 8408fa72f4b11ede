import Crypto
public import Foundation

// What the REST API answers, as the SDK hands it out (formats: /openapi.json). Keys are snake_case on the wire;
// the decoder converts them, and identifiers keep Swift's `ID` spelling through their coding keys.

public struct Registration: Decodable, Sendable {
    public let machineID: String
    public let registrationCode: String
    public let expiresAt: String?

    enum CodingKeys: String, CodingKey {
        case machineID = "machineId", registrationCode, expiresAt
    }
}

public struct Challenge: Decodable, Sendable {
    public let challengeID: String
    public let challenge: String
    public let difficultyBits: Int
    public let algorithm: String

    enum CodingKeys: String, CodingKey {
        case challengeID = "challengeId", challenge, difficultyBits, algorithm
    }
}

public struct Verification: Decodable, Sendable {
    public let machineID: String
    public let state: String
    public let linkExpiresAt: String?

    enum CodingKeys: String, CodingKey {
        case machineID = "machineId", state, linkExpiresAt
    }
}

struct DeviceSecret: Decodable {
    let machineId: String
    let secret: String
}

public struct DeviceStatus: Decodable, Sendable {
    public let machineID: String
    public let state: String
    public let registeredAt: String?
    public let verifiedAt: String?

    enum CodingKeys: String, CodingKey {
        case machineID = "machineId", state, registeredAt, verifiedAt
    }
}

public struct DatasetInfo: Decodable, Sendable {
    public struct Manifest: Decodable, Sendable {
        public let plaintextSize: Int64
        public let ciphertextSize: Int64
        public let plaintextSha256: String
    }

    public let version: String
    public let name: String
    public let active: Bool
    public let minDurationSeconds: Int
    public let manifest: Manifest?
}

/// What `POST /api/v1/benchmarks/start` takes.
public struct SessionStart: Sendable {
    public var datasetVersion: String
    /// The dataset's plaintext SHA-256 (hex), proving the client has it.
    public var datasetChecksum: String
    public var framework: String
    public var modelName: String
    /// Billions of parameters.
    public var modelParams: Double
    public var gpuName: String
    public var gpuCount: Int = 1
    public var gpuMemoryGB: Double = 0
    public var concurrentCount: Int
    public var displayName: String = ""
    /// The weights' precision, e.g. "fp16", "q4_k_m", "awq" (the server's physical bounds depend on it).
    public var quantization: String = ""

    public init(
        datasetVersion: String, datasetChecksum: String, framework: String, modelName: String, modelParams: Double,
        gpuName: String, concurrentCount: Int
    ) {
        self.datasetVersion = datasetVersion
        self.datasetChecksum = datasetChecksum
        self.framework = framework
        self.modelName = modelName
        self.modelParams = modelParams
        self.gpuName = gpuName
        self.concurrentCount = concurrentCount
    }

    /// The request body (`POST /api/v1/benchmarks/start`).
    public var json: [String: Any] {
        [
            "dataset_version": datasetVersion, "dataset_checksum": datasetChecksum, "framework": framework,
            "model_name": modelName, "model_params": modelParams,
            "gpu_config": ["name": gpuName, "count": gpuCount, "memory_gb": gpuMemoryGB] as [String: Any],
            "concurrent_count": concurrentCount, "display_name": displayName, "quantization": quantization,
        ]
    }
}

public struct Session: Decodable, Sendable {
    public let sessionID: String
    public let state: String
    public let datasetVersion: String
    public let metricsIntervalSeconds: Int
    public let metricSamples: Int
    public let recordID: String?
    /// What the submit must prove it holds of the dataset (``DatasetChallenge/proof(plaintextFile:)``).
    public let datasetChallenge: DatasetChallenge?

    enum CodingKeys: String, CodingKey {
        case sessionID = "sessionId", state, datasetVersion, metricsIntervalSeconds, metricSamples, datasetChallenge
        case recordID = "recordId"
    }
}

/// Proof of the dataset (docs/VALIDATION.md): the answer is the lowercase hex HMAC-SHA256, keyed by the nonce, over
/// the decrypted dataset's bytes of every span in order — only a device that holds the dataset can give it.
public struct DatasetChallenge: Decodable, Sendable {
    public struct Span: Decodable, Sendable {
        public let offset: Int64
        public let length: Int64
    }

    public let algorithm: String
    /// Hex.
    public let nonce: String
    public let spans: [Span]

    /// The answer from the decrypted dataset file (as ``LeaderboardClient/download(version:to:parallelism:progress:)`` writes it).
    public func proof(plaintextFile path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw LeaderboardClientError.local("dataset_unreadable", "Cannot read the dataset file \(path).")
        }
        defer { try? handle.close() }
        var pieces: [Data] = []
        for span in spans {
            try handle.seek(toOffset: UInt64(max(0, span.offset)))
            let piece = try handle.read(upToCount: Int(max(0, span.length))) ?? Data()
            guard piece.count == Int(span.length) else {
                throw LeaderboardClientError.local(
                    "dataset_unreadable", "\(path) is shorter than the dataset version it should hold.")
            }
            pieces.append(piece)
        }
        return try proof(pieces: pieces)
    }

    /// The answer from the dataset's plaintext in memory.
    public func proof(plaintext: Data) throws -> String {
        try proof(
            pieces: try spans.map { span in
                let range = Int(span.offset)..<Int(span.offset + span.length)
                guard span.offset >= 0, span.length >= 0, range.upperBound <= plaintext.count else {
                    throw LeaderboardClientError.local(
                        "dataset_unreadable", "The dataset is shorter than the challenge.")
                }
                return plaintext.subdata(in: range)
            })
    }

    func proof(pieces: [Data]) throws -> String {
        guard algorithm == "HMAC-SHA256", let key = Data(hex: nonce) else {
            throw LeaderboardClientError.local("bad_response", "Unknown dataset challenge \(algorithm).")
        }
        var mac = HMAC<SHA256>(key: SymmetricKey(data: key))
        for piece in pieces { mac.update(data: piece) }
        return hex(mac.finalize())
    }
}

/// One request of a run, for the submit's optional per-request records.
public struct RequestRecord: Sendable {
    public var outputTokens: Int
    /// Seconds from sending the request to its last token.
    public var latency: Double
    public var success: Bool

    public init(outputTokens: Int, latency: Double, success: Bool = true) {
        self.outputTokens = outputTokens
        self.latency = latency
        self.success = success
    }

    var json: [String: Any] { ["output_tokens": outputTokens, "latency": latency, "success": success] }
}

extension Data {
    init?(hex: String) {
        let digits = Array(hex.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let high = Self.nibble(digits[index]), let low = Self.nibble(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        self.init(bytes)
    }

    private static func nibble(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// One periodic report during a session: system load and the test's progress.
public struct MetricSample: Sendable {
    public var cpuUsage: Double
    public var memoryUsage: Double
    public var gpuUsage: Double
    public var tps: Double
    public var latency: Double
    public var concurrentCount: Int
    public var completedRequests: Int = 0
    public var totalTokens: Int = 0
    public var at: Date? = nil

    public init(
        cpuUsage: Double, memoryUsage: Double, gpuUsage: Double, tps: Double, latency: Double, concurrentCount: Int
    ) {
        self.cpuUsage = cpuUsage
        self.memoryUsage = memoryUsage
        self.gpuUsage = gpuUsage
        self.tps = tps
        self.latency = latency
        self.concurrentCount = concurrentCount
    }

    /// The request body (`POST /api/v1/benchmarks/{session}/metrics`).
    public var json: [String: Any] {
        var json: [String: Any] = [
            "system": ["cpu_usage": cpuUsage, "memory_usage": memoryUsage, "gpu_usage": gpuUsage],
            "test": [
                "tps": tps, "latency": latency, "concurrent_count": concurrentCount,
                "completed_requests": completedRequests, "total_tokens": totalTokens,
            ] as [String: Any],
        ]
        if let at { json["at"] = at.formatted(.iso8601) }
        return json
    }
}

struct SampleCount: Decodable {
    let metricSamples: Int
}

/// A run's final results, as submitted.
public struct BenchmarkResults: Sendable {
    public var tps: Double
    public var avgLatency: Double
    public var p50Latency: Double
    public var p95Latency: Double
    public var p99Latency: Double
    public var concurrentCount: Int
    public var totalRequests: Int
    public var successfulRequests: Int
    public var failedRequests: Int = 0
    public var totalTokens: Int = 0
    /// Seconds.
    public var duration: Double

    public init(
        tps: Double, avgLatency: Double, p50Latency: Double, p95Latency: Double, p99Latency: Double,
        concurrentCount: Int, totalRequests: Int, successfulRequests: Int, duration: Double
    ) {
        self.tps = tps
        self.avgLatency = avgLatency
        self.p50Latency = p50Latency
        self.p95Latency = p95Latency
        self.p99Latency = p99Latency
        self.concurrentCount = concurrentCount
        self.totalRequests = totalRequests
        self.successfulRequests = successfulRequests
        self.duration = duration
    }

    /// The `results` object as submitted (DeepStressModel's field names).
    public var json: [String: Any] {
        [
            "tps": tps, "avg_latency": avgLatency, "p50_latency": p50Latency, "p95_latency": p95Latency,
            "p99_latency": p99Latency, "concurrent_count": concurrentCount, "total_requests": totalRequests,
            "successful_requests": successfulRequests, "failed_requests": failedRequests, "total_tokens": totalTokens,
            "duration": duration,
        ]
    }
}

public struct Reason: Decodable, Sendable {
    public let code: String
    public let detail: String
}

public struct SubmissionOutcome: Decodable, Sendable {
    public let sessionID: String
    /// `accepted` or `held_for_review`.
    public let state: String
    public let recordID: String?
    public let score: Double
    /// The record's place on its global board when its batch committed (0: not ranked, or `rankPending`).
    public let rank: Int
    public let isNewBest: Bool
    /// True when the record was accepted and stored but the server could not place it on the boards yet (its
    /// database or rank index was briefly unavailable). It is placed within seconds: read it with
    /// ``LeaderboardClient/record(_:)`` then, or submit again with the same idempotency key for this answer complete.
    public let rankPending: Bool
    public let reasons: [Reason]

    enum CodingKeys: String, CodingKey {
        case sessionID = "sessionId", state, recordID = "recordId", score, rank, isNewBest, rankPending, reasons
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        sessionID = try container.decode(String.self, forKey: .sessionID)
        state = try container.decode(String.self, forKey: .state)
        recordID = try container.decodeIfPresent(String.self, forKey: .recordID)
        score = try container.decode(Double.self, forKey: .score)
        rank = try container.decode(Int.self, forKey: .rank)
        isNewBest = try container.decode(Bool.self, forKey: .isNewBest)
        // Servers before the board writer never send it.
        rankPending = try container.decodeIfPresent(Bool.self, forKey: .rankPending) ?? false
        reasons = try container.decode([Reason].self, forKey: .reasons)
    }
}

public struct BoardRecord: Decodable, Sendable {
    public struct GPU: Decodable, Sendable {
        public let name: String
        public let count: Int
    }

    public let recordID: String
    public let displayName: String
    public let framework: String
    public let modelName: String
    public let gpuConfig: GPU
    public let datasetVersion: String
    public let tps: Double
    public let score: Double
    public let rank: Int?
    public let frameworkRank: Int?
    public let likesCount: Int?
    public let dislikesCount: Int?
    public let commentsCount: Int?
    /// A reference result: shown beside the board, never ranked.
    public let baseline: Bool?
    /// accepted, held, hidden or baseline: in the owner's own listing only.
    public let status: String?

    enum CodingKeys: String, CodingKey {
        case recordID = "recordId", displayName, framework, modelName, gpuConfig
        case datasetVersion, tps, score, rank, frameworkRank, likesCount, dislikesCount, commentsCount, baseline
        case status
    }
}

/// A DeepStressModel API key of the calling device (docs/DEEPSTRESSMODEL.md); `apiKey` only when just made.
public struct ClientKey: Decodable, Sendable {
    public let keyID: String
    public let name: String
    public let prefix: String
    public let createdAt: String?
    public let revokedAt: String?
    public let lastUsedAt: String?
    public let apiKey: String?

    enum CodingKeys: String, CodingKey {
        case keyID = "keyId", name, prefix, createdAt, revokedAt, lastUsedAt, apiKey
    }
}

struct ClientKeyList: Decodable, Sendable {
    let keys: [ClientKey]
}

/// A page of the calling device's own records.
public struct OwnRecordPage: Decodable, Sendable {
    public let records: [BoardRecord]
    public let nextCursor: String?
}

public struct BoardPage: Decodable, Sendable {
    public let records: [BoardRecord]
    public let total: Int
    public let nextCursor: String?
    /// Reference results beside the board (first page only).
    public let baselines: [BoardRecord]?
}

public struct ReactionCounts: Decodable, Sendable {
    public let recordID: String
    public let likesCount: Int
    public let dislikesCount: Int
    public let commentsCount: Int
    /// `like`, `dislike` or nil: the calling device's own reaction.
    public let mine: String?

    enum CodingKeys: String, CodingKey {
        case recordID = "recordId", likesCount, dislikesCount, commentsCount, mine
    }
}

public struct Comment: Decodable, Sendable {
    public let commentID: String
    public let recordID: String
    public let authorName: String
    public let content: String
    public let createdAt: String?

    enum CodingKeys: String, CodingKey {
        case commentID = "commentId", recordID = "recordId", authorName, content, createdAt
    }
}

public struct CommentPage: Decodable, Sendable {
    public let comments: [Comment]
    public let nextCursor: String?
}

public struct DeviceNotification: Decodable, Sendable {
    public let notificationID: String
    public let sequence: Int
    /// `comment`, `reaction` or `rank_change`.
    public let kind: String
    public let recordID: String
    public let summary: String
    public let createdAt: String?
    public let readAt: String?

    enum CodingKeys: String, CodingKey {
        case notificationID = "notificationId", sequence, kind, recordID = "recordId", summary, createdAt, readAt
    }
}

public struct NotificationPage: Decodable, Sendable {
    public let notifications: [DeviceNotification]
    public let latestSequence: Int
}

struct Marked: Decodable {
    let marked: Int
}
