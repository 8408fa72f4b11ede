import Foundation
import ServiceKit

/// A device as AuthService knows it now.
struct DeviceFacts: Sendable, Equatable {
    var hardwareHash: String
    var gpuHash: String
}

/// A dataset version as DatasetService knows it now.
struct DatasetFacts: Sendable, Equatable {
    var version: String
    var active: Bool
    var checksum: String
    var minimumDurationSeconds: Int
}

/// DatasetService's answer on an uploaded result's prompts (`CheckPrompts`).
struct PromptCheck: Sendable, Equatable {
    var datasetName: String
    var items: Int
    var unknownIDs: [Int64]
    var unknownCount: Int
    var mismatchedIDs: [Int64]
    var mismatchedCount: Int
}

/// Limits of sessions and boards (settings with flags; README lists them).
struct RankingPolicy: Sendable {
    var session = SessionPolicy.standard
    var dailyLimit = 20
    /// Running sessions one device may have at once.
    var openSessions = 5
    /// Rank changes are announced for records within this many places of the top of a board.
    var watchedPlaces = 100
    var maximumPageSize = 200
    var defaultPageSize = 50
    /// An uploaded result file (DeepStressModel) must have been signed within this many seconds before its upload,
    /// and at most ``externalSkewSeconds`` after (the clients' clocks differ from ours).
    var externalWindowSeconds: Int64 = 1800
    var externalSkewSeconds: Int64 = 300
    var retention = RankingRetention()
}

/// RankingService's retention windows (``RetentionSettings``); nil keeps that data for ever.
struct RankingRetention: Sendable {
    var interval: Duration = .seconds(3600)
    var abandonedSessions: RetentionWindow? = RetentionWindow(hours: 24)
    var unrankedSamples: RetentionWindow? = RetentionWindow(days: 30)
    var recordSamples: RetentionWindow?
    var boardEvents: RetentionWindow? = RetentionWindow(hours: 24)
    /// Board events kept whatever their age, so a client a little behind can always resume.
    static let eventsKept = 10_000

    struct Purged: Sendable, Equatable {
        var boardEvents = 0
        var abandonedSessions = 0
        var samples = 0
    }
}

/// What a submit answered: stored with the session and replayed for a retry with the same idempotency key.
struct SubmissionResult: Sendable, Equatable, Codable {
    var sessionID: String
    var state: String
    var recordID: String?
    var score: Double?
    var scoreVersion: Int
    var ruleSetVersion: Int
    var reasons: [RuleViolation]
    var rank: Int
    var isNewBest: Bool
    /// True while an accepted record waits for its board writer (``BoardEngine``): `rank` and `isNewBest` are not
    /// known yet. nil once they are (and in answers stored before the board writer existed).
    var rankPending: Bool?
    /// Not stored: set when the answer is a replay.
    var replayed = false

    /// The answer once its record's board writer batch committed: its rank then, and whether it became the owner's
    /// best.
    mutating func place(rank: Int, isNewBest: Bool) {
        self.rank = rank
        self.isNewBest = isNewBest
        rankPending = nil
    }

    enum CodingKeys: String, CodingKey {
        case sessionID, state, recordID, score, scoreVersion, ruleSetVersion, reasons, rank, isNewBest, rankPending
    }
}

/// A record with its places on its boards.
struct PlacedRecord: Sendable, Equatable {
    var record: BenchmarkRecord
    var rank = 0
    var frameworkRank = 0
    var percentile = 0.0
}

/// Statistics of one dataset version's ranked records.
struct BoardStats: Sendable, Equatable {
    struct Distribution: Sendable, Equatable {
        var count = 0
        var min = 0.0
        var p25 = 0.0
        var p50 = 0.0
        var p75 = 0.0
        var p90 = 0.0
        var max = 0.0

        init(_ values: [Double]) {
            let sorted = values.sorted()
            guard let first = sorted.first, let last = sorted.last else { return }
            count = sorted.count
            min = first
            max = last
            p25 = quantile(sorted, 0.25)
            p50 = quantile(sorted, 0.5)
            p75 = quantile(sorted, 0.75)
            p90 = quantile(sorted, 0.9)
        }
    }

    struct Group: Sendable, Equatable {
        var key: String
        var score: Distribution
        var tps: Distribution
    }

    var datasetVersion: String
    var records: Int
    var devices: Int
    var submissionsToday: Int
    var score: Distribution
    var byFramework: [Group]
    var byGPU: [Group]
}
