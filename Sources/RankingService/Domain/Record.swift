import Crypto
import Foundation
import GRPCCore
import ServiceKit

/// The GPU a session ran on, as the client describes it (name, count, memory) with its registered hash.
struct GPUConfig: Sendable, Equatable, Codable {
    var name = ""
    var count = 0
    var memoryGB = 0.0
    var gpuHash = ""
    /// Anything else the client reported, as compact JSON ("" for none).
    var extraJSON = ""

    /// The name as boards group it: lowercase with single spaces, so "RTX  4090" and "rtx 4090" are peers.
    var key: String {
        name.lowercased().split(whereSeparator: \.isWhitespace).joined(separator: " ")
    }
}

/// What a client declares when it starts a session, checked and normalised by ``validated()``.
struct SessionSpec: Sendable, Equatable {
    var machineID: String
    var datasetVersion: String
    var datasetChecksum: String
    var framework: String
    var modelName: String
    /// Billions of parameters.
    var modelParams: Double
    var frameworkConfigJSON: String
    var gpu: GPUConfig
    var concurrentCount: Int
    var displayName: String
    /// As declared ("" when not): the validation reads it with ``Quantization/resolve(declared:frameworkConfigJSON:modelName:)``.
    var quantization = ""

    /// Every field checked at once; the problems are listed together.
    func validated() throws(RankingError) -> SessionSpec {
        var spec = self
        var problems: [String] = []
        spec.framework = framework.trimmingCharacters(in: .whitespaces).lowercased()
        if !Self.isFrameworkName(spec.framework) {
            problems.append("framework must be 1–64 characters of a–z, 0–9, '.', '_', '+' and '-'")
        }
        spec.modelName = modelName.trimmingCharacters(in: .whitespacesAndNewlines)
        if !Self.isText(spec.modelName, maximum: 200) {
            problems.append("model_name must be 1–200 printable characters")
        }
        if !(modelParams.isFinite && modelParams > 0 && modelParams <= 100_000) {
            problems.append("model_params must be billions of parameters above 0 and at most 100000")
        }
        if datasetVersion.isEmpty || datasetVersion.utf8.count > 64 {
            problems.append("dataset_version must be 1–64 characters")
        }
        spec.datasetChecksum = datasetChecksum.lowercased()
        if spec.datasetChecksum.utf8.count != 64 || !spec.datasetChecksum.utf8.allSatisfy(Self.isHexDigit) {
            problems.append("dataset_checksum must be the 64-hex-digit SHA-256 of the dataset")
        }
        if !(1...100_000).contains(concurrentCount) { problems.append("concurrent_count must be 1 to 100000") }
        spec.displayName = displayName.trimmingCharacters(in: .whitespacesAndNewlines)
        // Not the machine id's prefix: a device is known in public by its display name only.
        if spec.displayName.isEmpty {
            spec.displayName =
                "device-" + Array(SHA256.hash(data: Array("display:\(machineID)".utf8))).prefix(4).hexEncoded
        }
        if !Self.isText(spec.displayName, maximum: 64) {
            problems.append("display_name must be at most 64 printable characters")
        }
        spec.gpu.name = gpu.name.trimmingCharacters(in: .whitespacesAndNewlines)
        if !Self.isText(spec.gpu.name, maximum: 200) {
            problems.append("gpu_config.name must be 1–200 printable characters")
        }
        if !(0...1024).contains(gpu.count) { problems.append("gpu_config.count must be 0 to 1024") }
        if !(gpu.memoryGB.isFinite && gpu.memoryGB >= 0 && gpu.memoryGB <= 1_000_000) {
            problems.append("gpu_config.memory_gb must be a finite number of at least 0")
        }
        if gpu.extraJSON.utf8.count > 4096 { problems.append("gpu_config may carry at most 4 KiB of extra fields") }
        spec.quantization = quantization.trimmingCharacters(in: .whitespaces).lowercased()
        if spec.quantization.utf8.count > 32
            || !spec.quantization.unicodeScalars.allSatisfy({ $0.isASCII && $0.properties.generalCategory != .control })
        {
            problems.append("quantization must be at most 32 ASCII characters (e.g. fp16, q4_k_m, awq)")
        }
        if frameworkConfigJSON.utf8.count > 8192 { problems.append("framework_config must be at most 8 KiB of JSON") }
        guard problems.isEmpty else {
            throw RankingError(
                code: "invalid_session", detail: problems.joined(separator: "; ") + ".", status: .invalidArgument)
        }
        return spec
    }

    static func isFrameworkName(_ text: String) -> Bool {
        (1...64).contains(text.utf8.count)
            && text.utf8.allSatisfy {
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0)
                    || [UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "+"), UInt8(ascii: "-")].contains($0)
            }
    }

    static func isText(_ text: String, maximum: Int) -> Bool {
        (1...maximum).contains(text.count)
            && text.unicodeScalars.allSatisfy { $0.properties.generalCategory != .control }
    }

    static func isHexDigit(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
    }
}

/// Where a judged submission stands.
enum RecordStatus: String, Sendable, Equatable {
    case accepted
    case held
    case rejected
    /// Taken off the boards by an operator (with a reason); restorable.
    case hidden
    /// A reference result an operator marked: shown beside the boards, never ranked.
    case baseline
}

/// A scored result. At most one record per (machine, framework, dataset version) is `ranked`: the best accepted,
/// published one; the others are history.
struct BenchmarkRecord: Sendable, Equatable {
    var recordID: String
    var sessionID: String
    var machineID: String
    var displayName: String
    var framework: String
    var modelName: String
    var modelParams: Double
    var gpu: GPUConfig
    var concurrentCount: Int
    var datasetVersion: String
    var results: BenchmarkResults
    var score: ScoreBreakdown
    var ruleSetVersion: Int
    var submittedAt: Int64
    var status: RecordStatus
    var published: Bool
    var ranked: Bool
    /// Rule set v2: the precision the validation assumed ("" unknown), the catalog's GPU id ("" unknown) and when the
    /// test began (submitted_at − duration).
    var quantization = ""
    var gpuModel = ""
    var testStartedAt: Int64 = 0

    /// Identical figures give identical fingerprints (every number's exact bits).
    var fingerprint: String {
        let r = results
        let parts =
            [r.tps, r.avgLatency, r.p50Latency, r.p95Latency, r.p99Latency, r.duration].map { "\($0.bitPattern)" }
            + ["\(r.totalTokens)", "\(r.totalRequests)", "\(r.successfulRequests)", "\(r.concurrentCount)"]
        return Array(SHA256.hash(data: Array(parts.joined(separator: "|").utf8))).hexEncoded
    }

    var rankKey: Double { RankKey.value(score: score.total, submittedAt: submittedAt) }
    var modelBucket: Int { ModelSize.bucket(modelParams) }
    var boards: [String] { [Board.global(datasetVersion), Board.framework(datasetVersion, framework)] }
}

/// Board names in the rank index: one global board per dataset version and one per (version, framework).
enum Board {
    static func global(_ version: String) -> String { "v:\(version)" }
    static func framework(_ version: String, _ framework: String) -> String { "v:\(version):f:\(framework)" }
    /// Not a board of records: one member, written once the index holds what the database says. A Redis that comes
    /// back empty (restarted without persistence, flushed, failed over to an empty replica) loses it with the rest.
    static let sentinel = "index:filled"

    /// Whether the index holds the sentinel: set by the last complete fill, gone when Redis comes back empty.
    static func indexFilled(_ ranks: any RankIndex) async throws -> Bool {
        try await ranks.count(in: sentinel) > 0
    }
}

/// The single number a board sorts by: score first, then the earlier submission.
///
/// `hundredths × 2³² + (2³² − 1 − submit second)`: exact in a Double (scores are 0–100 with two decimals), higher is
/// better, and among equal scores the earlier second wins. Equal scores in the same second fall back to the record id
/// (the larger first), which the SQL order reproduces.
enum RankKey {
    static func value(score: Double, submittedAt: Int64) -> Double {
        let hundredths = (score * 100).rounded()
        let second = Double(Swift.max(0, Swift.min(submittedAt / 1_000_000, Int64(UInt32.max))))
        return hundredths * 4_294_967_296 + (4_294_967_295 - second)
    }
}

/// Model-size buckets for plausibility peers: half an octave wide (e.g. 7B and 8B share one, 13B is the next).
enum ModelSize {
    static func bucket(_ billions: Double) -> Int {
        guard billions.isFinite, billions > 0 else { return Int.min / 2 }
        return Int((2 * log2(billions)).rounded(.down))
    }
}

/// Rank and percentile of a record on a board of `count` records (rank 1 = best, percentile 100 = best).
struct Placement: Sendable, Equatable {
    var rank: Int
    var count: Int

    var percentile: Double {
        guard rank > 0, count > 0 else { return 0 }
        return (Double(count - rank + 1) / Double(count) * 10_000).rounded() / 100
    }
}

/// What a board announces, in order, with a sequence number per board.
struct BoardEvent: Sendable, Equatable, Codable {
    enum Kind: Sendable, Equatable, Codable {
        case accepted(recordID: String, rank: Int)
        case rankChanged(recordID: String, oldRank: Int, newRank: Int)
        case removed(recordID: String)
    }

    var board: String
    var sequence: UInt64
    var at: Int64
    var kind: Kind
}

/// The places whose record moved by one when a record entered, left or moved on a board: (old rank, new rank) of
/// each, 1-based, within the top `watched` places. `old`/`new` are the changed record's own ranks (nil: not on the
/// board); `count` is the board's size after the change.
func rankShifts(old: Int?, new: Int?, count: Int, watched: Int) -> [(from: Int, to: Int)] {
    let last = Swift.min(count, watched)
    func places(_ low: Int, _ high: Int, moved: Int) -> [(from: Int, to: Int)] {
        let high = Swift.min(high, last)
        guard low <= high else { return [] }
        return (low...high).map { ($0 - moved, $0) }
    }
    switch (old, new) {
    case (nil, let new?): return places(new + 1, count, moved: 1)  // entered: those below moved down
    case (let old?, nil): return places(old, count, moved: -1)  // left: those below moved up
    case (let old?, let new?) where new < old: return places(new + 1, old, moved: 1)
    case (let old?, let new?) where new > old: return places(old, new - 1, moved: -1)
    default: return []
    }
}
