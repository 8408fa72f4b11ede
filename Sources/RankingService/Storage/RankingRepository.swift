import Foundation
import ServiceKit

/// A benchmark session as stored.
struct SessionRecord: Sendable, Equatable {
    var sessionID: String
    var spec: SessionSpec
    var state: SessionState
    var hardwareHash: String
    var gpuHash: String
    var startedAt: Int64
    var expiresAt: Int64
    var submittedAt: Int64?
    var metricsIntervalSeconds: Int
    var samples: Int
    var idempotencyKey: String?
    var bodySHA256: String?
    /// The answer given to the submit (JSON of ``SubmissionResult``), replayed for a retry with the same key.
    var outcome: String?
    var recordID: String?
    /// Rule set v2's proof of the dataset (nil for sessions started before it).
    var challenge: SessionChallenge?

    var status: SessionStatus {
        SessionStatus(state: state, startedAt: startedAt, expiresAt: expiresAt, samples: samples)
    }
}

/// A session's dataset challenge as DatasetService made it: the nonce and spans the client is given, and the answer
/// only the services know.
struct SessionChallenge: Sendable, Equatable, Codable {
    var nonce: [UInt8]
    /// [offset, length] pairs of the dataset's plaintext.
    var spans: [[Int64]]
    var answer: String
}

/// A held submission waiting for (or decided by) an operator.
struct ReviewRecord: Sendable, Equatable {
    enum Decision: String, Sendable { case pending, approved, rejected }

    var reviewID: String
    var sessionID: String
    var recordID: String
    var machineID: String
    var reasons: [RuleViolation]
    var createdAt: Int64
    var decision: Decision
    var note: String
    var decidedAt: Int64?
}

/// One ranked record's figures for statistics.
struct StatRow: Sendable {
    var framework: String
    var gpu: String
    var machine: String
    var score: Double
    var tps: Double
}

/// Filters of a board listing; an empty framework or GPU means any.
struct RecordFilter: Sendable, Equatable {
    var datasetVersion: String
    var framework = ""
    var gpu = ""
    var modelParamsMin = 0.0
    var modelParamsMax = 0.0
    var model = ""
    var quantization = ""

    /// No filter beyond the board (version and framework).
    var isWholeBoard: Bool {
        gpu.isEmpty && modelParamsMin == 0 && modelParamsMax == 0 && model.isEmpty && quantization.isEmpty
    }
}

/// How a listing is ordered: the board's (score, then the earlier submission) or generated tokens per second.
enum RecordOrder: String, Sendable {
    case score
    case tps
}

/// The Ranking target's SQL, one statement set for PostgreSQL and SQLite.
struct RankingRepository {
    let sql: any SQLExecutor

    init(_ sql: any SQLExecutor) { self.sql = sql }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()

    static func json(_ value: some Encodable) throws -> String {
        String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        try JSONDecoder().decode(type, from: Data(text.utf8))
    }

    // MARK: sessions

    static let sessionColumns = """
        session_id, machine_id, state, dataset_version, dataset_checksum, framework, model_name, model_params, \
        framework_config, gpu_config, concurrent_count, display_name, hardware_hash, gpu_hash, started_at, expires_at, \
        submitted_at, metrics_interval, samples, idempotency_key, body_sha256, outcome, record_id, quantization, \
        challenge
        """

    func insert(_ session: SessionRecord) async throws {
        let spec = session.spec
        try await sql.execute(
            """
            INSERT INTO sessions (\(Self.sessionColumns))
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23,
                $24, $25)
            """,
            [
                .text(session.sessionID), .text(spec.machineID), .text(session.state.rawValue),
                .text(spec.datasetVersion), .text(spec.datasetChecksum), .text(spec.framework), .text(spec.modelName),
                .real(spec.modelParams), .text(spec.frameworkConfigJSON), .text(try Self.json(spec.gpu)),
                .integer(Int64(spec.concurrentCount)), .text(spec.displayName), .text(session.hardwareHash),
                .text(session.gpuHash), .integer(session.startedAt), .integer(session.expiresAt),
                SQLValue(session.submittedAt), .integer(Int64(session.metricsIntervalSeconds)),
                .integer(Int64(session.samples)), SQLValue(session.idempotencyKey), SQLValue(session.bodySHA256),
                SQLValue(session.outcome), SQLValue(session.recordID), .text(spec.quantization),
                SQLValue(try session.challenge.map(Self.json)),
            ])
    }

    func session(_ id: String, lock: Bool = false) async throws -> SessionRecord? {
        try await sql.first(
            "SELECT \(Self.sessionColumns) FROM sessions WHERE session_id = $1\(lock ? sql.forUpdate : "")", [.text(id)]
        ).map(Self.session)
    }

    func update(_ session: SessionRecord) async throws {
        try await sql.execute(
            """
            UPDATE sessions SET state = $2, submitted_at = $3, samples = $4, idempotency_key = $5, body_sha256 = $6,
                outcome = $7, record_id = $8
            WHERE session_id = $1
            """,
            [
                .text(session.sessionID), .text(session.state.rawValue), SQLValue(session.submittedAt),
                .integer(Int64(session.samples)), SQLValue(session.idempotencyKey), SQLValue(session.bodySHA256),
                SQLValue(session.outcome), SQLValue(session.recordID),
            ])
    }

    /// Sessions of a device still running at `now`.
    func runningSessions(of machineID: String, at now: Int64) async throws -> Int {
        Int(
            try await sql.first(
                "SELECT COUNT(*) AS n FROM sessions WHERE machine_id = $1 AND state = 'running' AND expires_at > $2",
                [.text(machineID), .integer(now)])?.integer("n") ?? 0)
    }

    /// Adds one sample and counts it, if the session is still below `maximum`; returns the new count, or nil when
    /// the session is full. One statement, so concurrent reports cannot overshoot the bound.
    func appendSample(_ sample: MetricSample, to sessionID: String, maximum: Int) async throws -> Int? {
        guard
            let row = try await sql.first(
                "UPDATE sessions SET samples = samples + 1 WHERE session_id = $1 AND samples < $2 RETURNING samples",
                [.text(sessionID), .integer(Int64(maximum))])
        else { return nil }
        let count = try row.integer("samples")
        try await sql.execute(
            "INSERT INTO metric_samples (session_id, seq, at, sample) VALUES ($1, $2, $3, $4)",
            [.text(sessionID), .integer(count), .integer(sample.at), .text(try Self.json(sample))])
        return Int(count)
    }

    func samples(of sessionID: String) async throws -> [MetricSample] {
        try await sql.execute(
            "SELECT sample FROM metric_samples WHERE session_id = $1 ORDER BY seq", [.text(sessionID)]
        ).map { try Self.decode(MetricSample.self, try $0.string("sample")) }
    }

    /// Submissions the device made since `time`.
    func submissions(by machineID: String, since time: Int64) async throws -> Int {
        Int(
            try await sql.first(
                "SELECT COUNT(*) AS n FROM sessions WHERE machine_id = $1 AND submitted_at >= $2",
                [.text(machineID), .integer(time)]
            )?.integer("n") ?? 0)
    }

    func submissions(since time: Int64) async throws -> Int {
        Int(
            try await sql.first("SELECT COUNT(*) AS n FROM sessions WHERE submitted_at >= $1", [.integer(time)])?
                .integer("n") ?? 0)
    }

    /// Forgets the samples of sessions that ended without a submission before `time`, then the sessions.
    func purgeAbandoned(before time: Int64) async throws -> Int {
        try await sql.execute(
            """
            DELETE FROM metric_samples WHERE session_id IN
                (SELECT session_id FROM sessions WHERE state = 'running' AND expires_at < $1)
            """, [.integer(time)])
        return try await sql.execute(
            "DELETE FROM sessions WHERE state = 'running' AND expires_at < $1 RETURNING session_id", [.integer(time)]
        ).count
    }

    static func session(_ row: SQLRow) throws -> SessionRecord {
        let spec = SessionSpec(
            machineID: try row.string("machine_id"), datasetVersion: try row.string("dataset_version"),
            datasetChecksum: try row.string("dataset_checksum"), framework: try row.string("framework"),
            modelName: try row.string("model_name"), modelParams: try row.double("model_params"),
            frameworkConfigJSON: try row.string("framework_config"),
            gpu: try decode(GPUConfig.self, try row.string("gpu_config")),
            concurrentCount: Int(try row.integer("concurrent_count")), displayName: try row.string("display_name"),
            quantization: try row.string("quantization"))
        guard let state = SessionState(rawValue: try row.string("state")) else {
            throw StorageError("unknown session state")
        }
        return SessionRecord(
            sessionID: try row.string("session_id"), spec: spec, state: state,
            hardwareHash: try row.string("hardware_hash"), gpuHash: try row.string("gpu_hash"),
            startedAt: try row.integer("started_at"), expiresAt: try row.integer("expires_at"),
            submittedAt: try row.optionalInteger("submitted_at"),
            metricsIntervalSeconds: Int(try row.integer("metrics_interval")), samples: Int(try row.integer("samples")),
            idempotencyKey: try row.optionalString("idempotency_key"),
            bodySHA256: try row.optionalString("body_sha256"),
            outcome: try row.optionalString("outcome"), recordID: try row.optionalString("record_id"),
            challenge: try row.optionalString("challenge").map { try decode(SessionChallenge.self, $0) })
    }

    // MARK: records

    static let recordColumns = """
        record_id, session_id, machine_id, display_name, framework, model_name, model_params, model_bucket, gpu_name, \
        gpu_key, gpu_config, concurrent_count, dataset_version, results, tps, score, score_parts, rule_set_version, \
        performance, efficiency, stability, rank_key, submitted_at, status, published, ranked, quantization, gpu_model, \
        gpu_count, fingerprint, test_started_at
        """

    func insert(_ record: BenchmarkRecord) async throws {
        try await sql.execute(
            """
            INSERT INTO records (\(Self.recordColumns))
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22,
                $23, $24, $25, $26, $27, $28, $29, $30, $31)
            """,
            [
                .text(record.recordID), .text(record.sessionID), .text(record.machineID), .text(record.displayName),
                .text(record.framework), .text(record.modelName), .real(record.modelParams),
                .integer(Int64(record.modelBucket)), .text(record.gpu.name), .text(record.gpu.key),
                .text(try Self.json(record.gpu)), .integer(Int64(record.concurrentCount)), .text(record.datasetVersion),
                .text(try Self.json(record.results)), .real(record.results.tps), .real(record.score.total),
                .text(try Self.json(record.score)), .text("\(record.ruleSetVersion)"), .real(record.score.performance),
                .real(record.score.efficiency), .real(record.score.stability), .real(record.rankKey),
                .integer(record.submittedAt), .text(record.status.rawValue), .integer(record.published ? 1 : 0),
                .integer(record.ranked ? 1 : 0), .text(record.quantization), .text(record.gpuModel),
                .integer(Int64(max(1, record.gpu.count))), .text(record.fingerprint), .integer(record.testStartedAt),
            ])
    }

    func record(_ id: String, lock: Bool = false) async throws -> BenchmarkRecord? {
        try await sql.first(
            "SELECT \(Self.recordColumns) FROM records WHERE record_id = $1\(lock ? sql.forUpdate : "")", [.text(id)]
        ).map(Self.record)
    }

    /// Records by id, read a bounded number at a time (one statement per 500).
    func records(_ ids: [String]) async throws -> [String: BenchmarkRecord] {
        var found: [String: BenchmarkRecord] = [:]
        for part in Array(Set(ids)).chunks(of: 500) {
            for row in try await sql.execute(
                "SELECT \(Self.recordColumns) FROM records WHERE record_id IN (\(Self.placeholders(part.count)))",
                part.map { .text($0) })
            {
                let record = try Self.record(row)
                found[record.recordID] = record
            }
        }
        return found
    }

    /// `$first, $first+1, …` for a list of binds (the values stay parameters).
    static func placeholders(_ count: Int, from first: Int = 1) -> String {
        (first..<(first + count)).map { "$\($0)" }.joined(separator: ", ")
    }

    /// The records ranked on a version's boards for these machines (any framework).
    func ranked(version: String, machines: [String]) async throws -> [BenchmarkRecord] {
        var found: [BenchmarkRecord] = []
        for part in Array(Set(machines)).chunks(of: 500) {
            found += try await sql.execute(
                """
                SELECT \(Self.recordColumns) FROM records
                WHERE dataset_version = $1 AND ranked = 1 AND machine_id IN (\(Self.placeholders(part.count, from: 2)))
                """, [.text(version)] + part.map { .text($0) }
            ).map(Self.record)
        }
        return found
    }

    /// Marks records ranked or not (their status and publication unchanged).
    func setRanked(_ ids: [String], _ ranked: Bool) async throws {
        for part in ids.chunks(of: 500) {
            try await sql.execute(
                "UPDATE records SET ranked = $1 WHERE record_id IN (\(Self.placeholders(part.count, from: 2)))",
                [.integer(ranked ? 1 : 0)] + part.map { .text($0) })
        }
    }

    func setFlags(_ id: String, status: RecordStatus, published: Bool, ranked: Bool) async throws {
        try await sql.execute(
            "UPDATE records SET status = $2, published = $3, ranked = $4 WHERE record_id = $1",
            [.text(id), .text(status.rawValue), .integer(published ? 1 : 0), .integer(ranked ? 1 : 0)])
    }

    func delete(record id: String) async throws {
        try await sql.execute("DELETE FROM records WHERE record_id = $1", [.text(id)])
    }

    /// The best accepted, published record of a (machine, framework, version) other than `excluded` — the one that
    /// should be ranked once `excluded` leaves.
    func best(machineID: String, framework: String, version: String, excluding excluded: String) async throws
        -> BenchmarkRecord?
    {
        try await sql.first(
            """
            SELECT \(Self.recordColumns) FROM records
            WHERE machine_id = $1 AND framework = $2 AND dataset_version = $3 AND status = 'accepted' AND published = 1
                AND record_id <> $4
            ORDER BY rank_key DESC, record_id DESC LIMIT 1
            """, [.text(machineID), .text(framework), .text(version), .text(excluded)]
        ).map(Self.record)
    }

    /// The record currently ranked for a (machine, framework, version).
    func ranked(machineID: String, framework: String, version: String) async throws -> BenchmarkRecord? {
        try await sql.first(
            """
            SELECT \(Self.recordColumns) FROM records
            WHERE machine_id = $1 AND framework = $2 AND dataset_version = $3 AND ranked = 1
            """, [.text(machineID), .text(framework), .text(version)]
        ).map(Self.record)
    }

    /// Ranked tps of other devices with the same version, framework, GPU and model-size bucket (the newest 500).
    func peerTPS(of record: BenchmarkRecord) async throws -> [Double] {
        if !record.gpuModel.isEmpty {
            // Rule set v2: peers run the same catalog GPU, as many of them, at the same precision.
            return try await sql.execute(
                """
                SELECT tps FROM records
                WHERE dataset_version = $1 AND framework = $2 AND gpu_model = $3 AND gpu_count = $4 AND quantization = $5
                    AND model_bucket = $6 AND ranked = 1 AND machine_id <> $7
                ORDER BY submitted_at DESC LIMIT 500
                """,
                [
                    .text(record.datasetVersion), .text(record.framework), .text(record.gpuModel),
                    .integer(Int64(max(1, record.gpu.count))), .text(record.quantization),
                    .integer(Int64(record.modelBucket)), .text(record.machineID),
                ]
            ).map { try $0.double("tps") }
        }
        return try await sql.execute(
            """
            SELECT tps FROM records
            WHERE dataset_version = $1 AND framework = $2 AND gpu_key = $3 AND model_bucket = $4 AND ranked = 1
                AND machine_id <> $5
            ORDER BY submitted_at DESC LIMIT 500
            """,
            [
                .text(record.datasetVersion), .text(record.framework), .text(record.gpu.key),
                .integer(Int64(record.modelBucket)), .text(record.machineID),
            ]
        ).map { try $0.double("tps") }
    }

    /// A device's records other than rejected ones, newest first, after a (submitted_at, id) cursor.
    func records(of machineID: String, after cursor: (Int64, String)?, limit: Int) async throws -> [BenchmarkRecord] {
        let (time, id) = cursor ?? (Int64.max, "")
        return try await sql.execute(
            """
            SELECT \(Self.recordColumns) FROM records
            WHERE machine_id = $1 AND status <> 'rejected'
                AND (submitted_at < $2 OR (submitted_at = $2 AND record_id < $3))
            ORDER BY submitted_at DESC, record_id DESC LIMIT $4
            """, [.text(machineID), .integer(time), .text(id), .integer(Int64(limit))]
        ).map(Self.record)
    }

    /// An operator's decision on a record: its status and why.
    func moderate(_ id: String, status: RecordStatus, reason: String) async throws {
        try await sql.execute(
            "UPDATE records SET status = $2, moderation_reason = $3, ranked = 0 WHERE record_id = $1",
            [.text(id), .text(status.rawValue), .text(reason)])
    }

    /// Published baselines of a version (and framework), best first.
    func baselines(version: String, framework: String, limit: Int) async throws -> [BenchmarkRecord] {
        try await sql.execute(
            """
            SELECT \(Self.recordColumns) FROM records
            WHERE dataset_version = $1 AND status = 'baseline' AND published = 1 AND ($2 = '' OR framework = $2)
            ORDER BY rank_key DESC, record_id DESC LIMIT $3
            """, [.text(version), .text(framework), .integer(Int64(limit))]
        ).map(Self.record)
    }

    /// A stored record with exactly these figures (``BenchmarkRecord/fingerprint``), if any.
    func record(withFingerprint fingerprint: String) async throws -> String? {
        try await sql.first(
            "SELECT record_id FROM records WHERE fingerprint = $1 LIMIT 1", [.text(fingerprint)]
        )?.string("record_id")
    }

    /// The device's judged runs (accepted or held) whose test time overlaps [`start`, `end`].
    func overlappingRuns(of machineID: String, from start: Int64, to end: Int64) async throws -> Int {
        Int(
            try await sql.first(
                """
                SELECT COUNT(*) AS n FROM records
                WHERE machine_id = $1 AND status IN ('accepted', 'held') AND submitted_at > $2 AND test_started_at < $3
                """, [.text(machineID), .integer(start), .integer(end)]
            )?.integer("n") ?? 0)
    }

    /// `WHERE` conditions and binds of a filter over ranked records; more binds may follow.
    static func conditions(_ filter: RecordFilter) -> (clauses: [String], binds: [SQLValue]) {
        var clauses = ["dataset_version = $1", "ranked = 1"]
        var binds: [SQLValue] = [.text(filter.datasetVersion)]
        func add(_ condition: String, _ value: SQLValue) {
            binds.append(value)
            clauses.append(condition.replacingOccurrences(of: "?", with: "$\(binds.count)"))
        }
        if !filter.framework.isEmpty { add("framework = ?", .text(filter.framework)) }
        if !filter.gpu.isEmpty { add("gpu_key = ?", .text(GPUConfig(name: filter.gpu).key)) }
        if filter.modelParamsMin > 0 { add("model_params >= ?", .real(filter.modelParamsMin)) }
        if filter.modelParamsMax > 0 { add("model_params <= ?", .real(filter.modelParamsMax)) }
        if !filter.model.isEmpty { add("LOWER(model_name) = ?", .text(filter.model.lowercased())) }
        if !filter.quantization.isEmpty { add("quantization = ?", .text(filter.quantization.lowercased())) }
        return (clauses, binds)
    }

    /// Ranked records matching a filter in board order (or by tokens per second), after a (key, record id) cursor.
    func ranked(
        _ filter: RecordFilter, order: RecordOrder = .score, after cursor: (key: Double, id: String)?, limit: Int
    ) async throws -> [BenchmarkRecord] {
        var (clauses, binds) = Self.conditions(filter)
        let column = order == .score ? "rank_key" : "tps"
        if let cursor {
            binds += [.real(cursor.key), .text(cursor.id)]
            let (key, id) = ("$\(binds.count - 1)", "$\(binds.count)")
            clauses.append("(\(column) < \(key) OR (\(column) = \(key) AND record_id < \(id)))")
        }
        binds.append(.integer(Int64(limit)))
        return try await sql.execute(
            """
            SELECT \(Self.recordColumns) FROM records WHERE \(clauses.joined(separator: " AND "))
            ORDER BY \(column) DESC, record_id DESC LIMIT $\(binds.count)
            """, binds
        ).map(Self.record)
    }

    func countRanked(_ filter: RecordFilter) async throws -> Int {
        let (clauses, binds) = Self.conditions(filter)
        return Int(
            try await sql.first(
                "SELECT COUNT(*) AS n FROM records WHERE \(clauses.joined(separator: " AND "))", binds)?.integer("n")
                ?? 0)
    }

    /// Ranked candidates near a record: the same GPU or a model size within two buckets (the best 500).
    func similarCandidates(to record: BenchmarkRecord) async throws -> [BenchmarkRecord] {
        try await sql.execute(
            """
            SELECT \(Self.recordColumns) FROM records
            WHERE dataset_version = $1 AND ranked = 1 AND record_id <> $2
                AND (gpu_key = $3 OR (model_bucket >= $4 AND model_bucket <= $5))
            ORDER BY rank_key DESC, record_id DESC LIMIT 500
            """,
            [
                .text(record.datasetVersion), .text(record.recordID), .text(record.gpu.key),
                .integer(Int64(record.modelBucket - 2)), .integer(Int64(record.modelBucket + 2)),
            ]
        ).map(Self.record)
    }

    /// (framework, GPU, machine, score, tps) of every ranked record of a version, for statistics.
    func statRows(version: String) async throws -> [StatRow] {
        try await sql.execute(
            "SELECT framework, gpu_name, machine_id, score, tps FROM records WHERE dataset_version = $1 AND ranked = 1",
            [.text(version)]
        ).map {
            StatRow(
                framework: try $0.string("framework"), gpu: try $0.string("gpu_name"),
                machine: try $0.string("machine_id"), score: try $0.double("score"), tps: try $0.double("tps"))
        }
    }

    /// Dataset versions and frameworks that have ranked records (every board there is).
    func boards(version: String?) async throws -> [(version: String, framework: String)] {
        let rows =
            if let version {
                try await sql.execute(
                    "SELECT DISTINCT dataset_version, framework FROM records WHERE ranked = 1 AND dataset_version = $1",
                    [.text(version)])
            } else {
                try await sql.execute("SELECT DISTINCT dataset_version, framework FROM records WHERE ranked = 1")
            }
        return try rows.map { (try $0.string("dataset_version"), try $0.string("framework")) }
    }

    /// (record id, rank key, framework) of ranked records of a version after a record id, in id order.
    func rankEntries(version: String, after id: String, limit: Int) async throws -> [(
        id: String, key: Double, framework: String
    )] {
        try await sql.execute(
            """
            SELECT record_id, rank_key, framework FROM records
            WHERE dataset_version = $1 AND ranked = 1 AND record_id > $2 ORDER BY record_id LIMIT $3
            """, [.text(version), .text(id), .integer(Int64(limit))]
        ).map { (try $0.string("record_id"), try $0.double("rank_key"), try $0.string("framework")) }
    }

    static func record(_ row: SQLRow) throws -> BenchmarkRecord {
        guard let status = RecordStatus(rawValue: try row.string("status")) else {
            throw StorageError("unknown record status")
        }
        return BenchmarkRecord(
            recordID: try row.string("record_id"), sessionID: try row.string("session_id"),
            machineID: try row.string("machine_id"), displayName: try row.string("display_name"),
            framework: try row.string("framework"), modelName: try row.string("model_name"),
            modelParams: try row.double("model_params"), gpu: try decode(GPUConfig.self, try row.string("gpu_config")),
            concurrentCount: Int(try row.integer("concurrent_count")),
            datasetVersion: try row.string("dataset_version"),
            results: try decode(BenchmarkResults.self, try row.string("results")),
            score: try decode(ScoreBreakdown.self, try row.string("score_parts")),
            ruleSetVersion: Int(try row.string("rule_set_version")) ?? 1, submittedAt: try row.integer("submitted_at"),
            status: status, published: try row.integer("published") == 1, ranked: try row.integer("ranked") == 1,
            quantization: try row.string("quantization"), gpuModel: try row.string("gpu_model"),
            testStartedAt: try row.integer("test_started_at"))
    }

    // MARK: reviews

    func insert(_ review: ReviewRecord) async throws {
        try await sql.execute(
            """
            INSERT INTO reviews (review_id, session_id, record_id, machine_id, reasons, created_at, decision, note, decided_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            """,
            [
                .text(review.reviewID), .text(review.sessionID), .text(review.recordID), .text(review.machineID),
                .text(try Self.json(review.reasons)), .integer(review.createdAt), .text(review.decision.rawValue),
                .text(review.note), SQLValue(review.decidedAt),
            ])
    }

    func review(_ id: String, lock: Bool = false) async throws -> ReviewRecord? {
        try await sql.first("SELECT * FROM reviews WHERE review_id = $1\(lock ? sql.forUpdate : "")", [.text(id)])
            .map(Self.review)
    }

    func decide(_ review: ReviewRecord) async throws {
        try await sql.execute(
            "UPDATE reviews SET decision = $2, note = $3, decided_at = $4 WHERE review_id = $1",
            [.text(review.reviewID), .text(review.decision.rawValue), .text(review.note), SQLValue(review.decidedAt)])
    }

    /// Oldest first; the cursor is the (created_at, review id) of the last row of the previous page.
    /// Held results waiting for a decision.
    func pendingReviewCount() async throws -> Int {
        Int(try await sql.first("SELECT COUNT(*) AS n FROM reviews WHERE decision = 'pending'")?.integer("n") ?? 0)
    }

    func reviews(after cursor: (Int64, String)?, limit: Int, includeDecided: Bool) async throws -> [ReviewRecord] {
        let pending = includeDecided ? "" : " AND decision = 'pending'"
        let (time, id) = cursor ?? (Int64.min, "")
        return try await sql.execute(
            """
            SELECT * FROM reviews WHERE (created_at > $1 OR (created_at = $1 AND review_id > $2))\(pending)
            ORDER BY created_at, review_id LIMIT $3
            """, [.integer(time), .text(id), .integer(Int64(limit))]
        ).map(Self.review)
    }

    static func review(_ row: SQLRow) throws -> ReviewRecord {
        ReviewRecord(
            reviewID: try row.string("review_id"), sessionID: try row.string("session_id"),
            recordID: try row.string("record_id"), machineID: try row.string("machine_id"),
            reasons: try decode([RuleViolation].self, try row.string("reasons")),
            createdAt: try row.integer("created_at"),
            decision: ReviewRecord.Decision(rawValue: try row.string("decision")) ?? .pending,
            note: try row.string("note"), decidedAt: try row.optionalInteger("decided_at"))
    }

    // MARK: pending promotions

    /// An accepted record waiting for its version's board writer; its session's answer is stored with it.
    struct PendingPromotion: Sendable {
        var recordID: String
        var sessionID: String
        var outcome: String
        var enqueuedAt: Int64
    }

    func enqueue(_ promotion: PendingPromotion, version: String) async throws {
        try await sql.execute(
            """
            INSERT INTO pending_promotions (record_id, dataset_version, session_id, outcome, enqueued_at)
            VALUES ($1, $2, $3, $4, $5)
            """,
            [
                .text(promotion.recordID), .text(version), .text(promotion.sessionID), .text(promotion.outcome),
                .integer(promotion.enqueuedAt),
            ])
    }

    /// Takes (deletes and returns) a version's oldest pending promotions, oldest first. The caller holds the
    /// version's global board lock, so two writers never take the same rows.
    func takePromotions(version: String, limit: Int) async throws -> [PendingPromotion] {
        try await sql.execute(
            """
            DELETE FROM pending_promotions WHERE record_id IN (
                SELECT record_id FROM pending_promotions WHERE dataset_version = $1
                ORDER BY enqueued_at, record_id LIMIT $2)
            RETURNING record_id, session_id, outcome, enqueued_at
            """, [.text(version), .integer(Int64(limit))]
        ).map {
            PendingPromotion(
                recordID: try $0.string("record_id"), sessionID: try $0.string("session_id"),
                outcome: try $0.string("outcome"), enqueuedAt: try $0.integer("enqueued_at"))
        }.sorted { ($0.enqueuedAt, $0.recordID) < ($1.enqueuedAt, $1.recordID) }
    }

    /// Versions with promotions that have waited since before `time` (their writer's process may have died).
    func versionsWithPromotions(enqueuedBefore time: Int64) async throws -> [String] {
        try await sql.execute(
            "SELECT DISTINCT dataset_version FROM pending_promotions WHERE enqueued_at < $1 ORDER BY dataset_version",
            [.integer(time)]
        ).map { try $0.string("dataset_version") }
    }

    /// Stores several sessions' answers in one statement.
    func setOutcomes(_ outcomes: [(sessionID: String, outcome: String)]) async throws {
        for part in outcomes.chunks(of: 250) {
            var cases = ""
            var ids: [String] = []
            var binds: [SQLValue] = []
            for (sessionID, outcome) in part {
                cases += " WHEN $\(binds.count + 1) THEN $\(binds.count + 2)"
                ids.append("$\(binds.count + 1)")
                binds += [.text(sessionID), .text(outcome)]
            }
            try await sql.execute(
                "UPDATE sessions SET outcome = CASE session_id\(cases) END WHERE session_id IN (\(ids.joined(separator: ", ")))",
                binds)
        }
    }

    // MARK: board events

    /// Locks a board's row until the transaction ends, creating it on the board's first change (one statement).
    func lock(board: String) async throws {
        try await sql.execute(
            """
            INSERT INTO boards (board, sequence) VALUES ($1, 0)
            ON CONFLICT (board) DO UPDATE SET sequence = boards.sequence
            """, [.text(board)])
    }

    /// Reserves `count` sequence numbers of a board; the row stays locked until the transaction ends, so events of
    /// one board are numbered and stored in commit order across replicas.
    func reserveSequence(_ board: String, count: Int) async throws -> UInt64 {
        // One statement: creates the row (a board's first change) or adds to it, and locks it either way.
        let last =
            try await sql.first(
                """
                INSERT INTO boards (board, sequence) VALUES ($1, $2)
                ON CONFLICT (board) DO UPDATE SET sequence = boards.sequence + excluded.sequence RETURNING sequence
                """, [.text(board), .integer(Int64(count))])?.integer("sequence") ?? Int64(count)
        return UInt64(last - Int64(count) + 1)
    }

    /// Stores a change's events in one statement (a record entering the top places shifts up to 100 others).
    func insert(_ events: [BoardEvent]) async throws {
        // 4 binds a row; a batch's events go in statements of at most 1,000 rows (PostgreSQL takes 65,535 binds).
        for part in events.chunks(of: 1000) {
            var rows: [String] = []
            var parameters: [SQLValue] = []
            for event in part {
                let first = parameters.count + 1
                rows.append("($\(first), $\(first + 1), $\(first + 2), $\(first + 3))")
                parameters += [
                    .text(event.board), .integer(Int64(event.sequence)), .integer(event.at),
                    .text(try Self.json(event.kind)),
                ]
            }
            try await sql.execute(
                "INSERT INTO board_events (board, sequence, at, event) VALUES " + rows.joined(separator: ", "),
                parameters)
        }
    }

    func events(of board: String, after sequence: UInt64, limit: Int) async throws -> [BoardEvent] {
        try await sql.execute(
            "SELECT sequence, at, event FROM board_events WHERE board = $1 AND sequence > $2 ORDER BY sequence LIMIT $3",
            [.text(board), .integer(Int64(sequence)), .integer(Int64(limit))]
        ).map {
            BoardEvent(
                board: board, sequence: UInt64(try $0.integer("sequence")), at: try $0.integer("at"),
                kind: try Self.decode(BoardEvent.Kind.self, try $0.string("event")))
        }
    }

    func lastSequence(of board: String) async throws -> UInt64 {
        UInt64(
            try await sql.first("SELECT sequence FROM boards WHERE board = $1", [.text(board)])?.integer("sequence")
                ?? 0)
    }

    /// Forgets the metric samples of sessions submitted before `time` whose result was rejected (or made no record):
    /// evidence for nothing that is shown or can come back. Returns the samples deleted.
    func purgeUnrankedSamples(submittedBefore time: Int64) async throws -> Int {
        try await sql.execute(
            """
            DELETE FROM metric_samples WHERE session_id IN
                (SELECT s.session_id FROM sessions s
                 WHERE s.submitted_at IS NOT NULL AND s.submitted_at < $1
                   AND NOT EXISTS (SELECT 1 FROM records r WHERE r.session_id = s.session_id AND r.status <> 'rejected'))
            RETURNING seq
            """, [.integer(time)]
        ).count
    }

    /// Forgets the metric samples (the charts) of records submitted before `time`, whatever their status.
    func purgeRecordSamples(submittedBefore time: Int64) async throws -> Int {
        try await sql.execute(
            """
            DELETE FROM metric_samples WHERE session_id IN
                (SELECT r.session_id FROM records r WHERE r.submitted_at < $1)
            RETURNING seq
            """, [.integer(time)]
        ).count
    }

    /// Drops events older than `time`, keeping at least the newest `keep` of each board. Returns the events dropped.
    @discardableResult
    func purgeEvents(before time: Int64, keep: Int) async throws -> Int {
        try await sql.execute(
            """
            DELETE FROM board_events WHERE at < $1 AND sequence <= (SELECT sequence FROM boards WHERE boards.board = board_events.board) - $2
            RETURNING sequence
            """, [.integer(time), .integer(Int64(keep))]
        ).count
    }

    // MARK: score references

    /// The references of a version, created with the defaults on first use and fixed from then on.
    func reference(for version: String, now: Int64) async throws -> ScoreReference {
        let standard = ScoreReference.standard
        try await sql.execute(
            """
            INSERT INTO score_references (dataset_version, tps, latency, tokens_per_joule, created_at)
            VALUES ($1, $2, $3, $4, $5) ON CONFLICT (dataset_version) DO NOTHING
            """,
            [
                .text(version), .real(standard.tps), .real(standard.latency), .real(standard.tokensPerJoule),
                .integer(now),
            ])
        guard
            let row = try await sql.first(
                "SELECT tps, latency, tokens_per_joule FROM score_references WHERE dataset_version = $1",
                [.text(version)])
        else { return standard }
        return ScoreReference(
            tps: try row.double("tps"), latency: try row.double("latency"),
            tokensPerJoule: try row.double("tokens_per_joule"))
    }

    func hasRecords(version: String) async throws -> Bool {
        try await sql.first("SELECT record_id FROM records WHERE dataset_version = $1 LIMIT 1", [.text(version)]) != nil
    }

    func setReference(_ reference: ScoreReference, for version: String, now: Int64) async throws {
        try await sql.execute(
            """
            INSERT INTO score_references (dataset_version, tps, latency, tokens_per_joule, created_at)
            VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (dataset_version) DO UPDATE SET tps = $2, latency = $3, tokens_per_joule = $4
            """,
            [
                .text(version), .real(reference.tps), .real(reference.latency), .real(reference.tokensPerJoule),
                .integer(now),
            ])
    }
}
