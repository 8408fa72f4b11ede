import Foundation
import GRPCCore
import Logging
import ServiceKit
import UntrustedInput

/// Reads of boards and records: listings with ranks, single records with their places, stats, events. It never
/// changes a board (``BoardEngine`` does); the database is the truth and the rank index gives the places.
struct BoardReader: Sendable {
    let database: ServiceDatabase
    let ranks: any RankIndex
    let logger: Logger
    let clock: any WallClock
    let policy: RankingPolicy
    /// A version's facts; nil version means the latest active one.
    let dataset: @Sendable (_ version: String?) async throws -> DatasetFacts

    // MARK: reading boards

    /// The dataset version a request means: as given (it must exist), or the latest active one.
    func version(_ requested: String) async throws -> String {
        try await dataset(requested.isEmpty ? nil : requested).version
    }

    func record(_ id: String) async throws -> PlacedRecord {
        let found = try await database.withExecutor(logger: logger) { try await RankingRepository($0).record(id) }
        guard let found, found.published, found.status == .accepted || found.status == .baseline else {
            throw RankingError.unknownRecord
        }
        return try await place([found])[0]
    }

    /// The live reports of a published record's session, oldest first (what its owner's client reported).
    func series(of id: String) async throws -> [MetricSample] {
        let placed = try await record(id)
        return try await database.withExecutor(logger: logger) {
            try await RankingRepository($0).samples(of: placed.record.sessionID)
        }
    }

    /// Records with their ranks and percentile; each board's size is read once for the whole page.
    func place(_ records: [BenchmarkRecord]) async throws -> [PlacedRecord] {
        var sizes: [String: Int] = [:]
        var placed: [PlacedRecord] = []
        for record in records {
            guard record.ranked else {
                placed.append(PlacedRecord(record: record))
                continue
            }
            let boards = record.boards
            // The lookups go out together (one round trip to Redis, which pipelines them).
            async let global = ranks.rank(of: record.recordID, in: boards[0])
            async let framework = ranks.rank(of: record.recordID, in: boards[1])
            let sizeKnown = sizes[boards[0]] != nil
            async let size = sizeKnown ? nil : ranks.count(in: boards[0])
            let rank: Int
            if let found = try await global {
                rank = found + 1
            } else if try await !Board.indexFilled(ranks) {
                // The index lost its contents (an emptied Redis) and is being refilled: ranks would all read 0.
                throw RankingError.rankIndexRebuilding
            } else {
                // A write that committed after this listing's snapshot moved the record off the board.
                rank = 0
            }
            let frameworkRank = try await framework.map { $0 + 1 } ?? 0
            if let size = try await size { sizes[boards[0]] = size }
            placed.append(
                PlacedRecord(
                    record: record, rank: rank, frameworkRank: frameworkRank,
                    percentile: Placement(rank: rank, count: sizes[boards[0]] ?? 0).percentile))
        }
        return placed
    }

    /// One page of a board. `counting: false` skips the total (a `COUNT(*)` over the whole filter), which a caller
    /// walking every page — the export — would otherwise pay once per page.
    func list(
        _ filter: RecordFilter, order: RecordOrder = .score, cursor: String, limit: Int, counting: Bool = true
    ) async throws -> (
        records: [PlacedRecord], next: String, total: Int, sequence: UInt64
    ) {
        var filter = filter
        filter.datasetVersion = try await version(filter.datasetVersion)
        filter.framework = filter.framework.lowercased()
        // Records keep the canonical precision ("q4" for q4_k_m): a filter reads the same way.
        if !filter.quantization.isEmpty {
            filter.quantization =
                Quantization.resolve(declared: filter.quantization, frameworkConfigJSON: "", modelName: "")?.name
                ?? filter.quantization.lowercased()
        }
        let limit = try pageSize(limit)
        guard filter.modelParamsMin.isFinite, filter.modelParamsMax.isFinite, filter.modelParamsMin >= 0,
            filter.modelParamsMax >= 0
        else {
            throw RankingError.invalidModelBounds
        }
        // A board cursor is (rank key, id); a tokens-per-second one is marked ("t", tps, id), so neither continues
        // the other's order.
        let after = try Cursor.decode(cursor).map { parts -> (key: Double, id: String) in
            let fields = order == .score ? parts[...] : (parts.first == "t" ? parts.dropFirst() : [])
            guard fields.count == 2, let key = Double(fields[fields.startIndex]), key.isFinite else {
                throw RankingError.invalidCursor
            }
            return (key, fields[fields.startIndex + 1])
        }
        let constrained = filter
        // A listing that is exactly one board says which of its events it reflects (for live views).
        let board: String? =
            filter.isWholeBoard
            ? (filter.framework.isEmpty
                ? Board.global(filter.datasetVersion) : Board.framework(filter.datasetVersion, filter.framework))
            : nil
        let (rows, total, sequence) = try await database.withExecutor(logger: logger) { sql in
            let repository = RankingRepository(sql)
            let sequence = try await board.asyncMap { try await repository.lastSequence(of: $0) } ?? 0
            return (
                try await repository.ranked(constrained, order: order, after: after, limit: limit + 1),
                counting ? try await repository.countRanked(constrained) : 0, sequence
            )
        }
        let page = Array(rows.prefix(limit))
        let placed = try await place(page)
        let next =
            rows.count > limit
            ? page.last.map {
                Cursor.encode(
                    order == .score ? [String($0.rankKey), $0.recordID] : ["t", String($0.results.tps), $0.recordID])
            } ?? "" : ""
        return (placed, next, total, sequence)
    }

    /// Every ranked record matching the filter, in board order, a page at a time.
    func export(_ filter: RecordFilter, each: @Sendable ([PlacedRecord]) async throws -> Void) async throws {
        var cursor = ""
        repeat {
            let page = try await list(filter, cursor: cursor, limit: policy.maximumPageSize, counting: false)
            try await each(page.records)
            cursor = page.next
        } while !cursor.isEmpty
    }

    /// Records of systems nearest this one: the same GPU first, then the closest model size, then the better score.
    func similar(to id: String, limit: Int) async throws -> [PlacedRecord] {
        let limit = try pageSize(limit == 0 ? 10 : limit)
        let target = try await record(id).record
        let candidates = try await database.withExecutor(logger: logger) {
            try await RankingRepository($0).similarCandidates(to: target)
        }
        func distance(_ record: BenchmarkRecord) -> Double {
            (record.gpu.key == target.gpu.key ? 0 : 1) + abs(log2(record.modelParams / target.modelParams))
        }
        let nearest = candidates.sorted {
            let (left, right) = (distance($0), distance($1))
            return left != right ? left < right : $0.rankKey > $1.rankKey
        }.prefix(limit)
        return try await place(Array(nearest))
    }

    func stats(version requested: String) async throws -> BoardStats {
        let version = try await version(requested)
        let since = clock.microsecondsSinceEpoch() - 86_400_000_000
        let (rows, today) = try await database.withExecutor(logger: logger) { sql in
            let repository = RankingRepository(sql)
            return (try await repository.statRows(version: version), try await repository.submissions(since: since))
        }
        func groups(_ key: (StatRow) -> String) -> [BoardStats.Group] {
            Dictionary(grouping: rows, by: key).map { name, members in
                BoardStats.Group(
                    key: name, score: .init(members.map(\.score)), tps: .init(members.map(\.tps)))
            }.sorted { $0.score.count != $1.score.count ? $0.score.count > $1.score.count : $0.key < $1.key }
        }
        return BoardStats(
            datasetVersion: version, records: rows.count, devices: Set(rows.map(\.machine)).count,
            submissionsToday: today, score: .init(rows.map(\.score)), byFramework: groups { $0.framework },
            byGPU: groups { $0.gpu })
    }

    // MARK: events

    func board(version requested: String, framework: String) async throws -> String {
        let version = try await version(requested)
        let framework = framework.lowercased()
        return framework.isEmpty ? Board.global(version) : Board.framework(version, framework)
    }

    func events(of board: String, after sequence: UInt64, limit: Int = 500) async throws -> [BoardEvent] {
        try await database.withExecutor(logger: logger) {
            try await RankingRepository($0).events(of: board, after: sequence, limit: limit)
        }
    }

    func lastSequence(of board: String) async throws -> UInt64 {
        try await database.withExecutor(logger: logger) { try await RankingRepository($0).lastSequence(of: board) }
    }

    /// Baselines beside a board (its version and framework), best first.
    func baselines(_ filter: RecordFilter) async throws -> [PlacedRecord] {
        let version = try await version(filter.datasetVersion)
        let rows = try await database.withExecutor(logger: logger) {
            try await RankingRepository($0).baselines(
                version: version, framework: filter.framework.lowercased(), limit: 50)
        }
        return rows.map { PlacedRecord(record: $0) }
    }

    func pageSize(_ requested: Int) throws(RankingError) -> Int {
        if requested == 0 { return policy.defaultPageSize }
        guard (1...policy.maximumPageSize).contains(requested) else {
            throw RankingError.invalidLimit(policy.maximumPageSize)
        }
        return requested
    }
}

/// Page cursors of the ranking listings (``PageCursor``), with the ranking error for a malformed one.
enum Cursor {
    static func encode(_ parts: [String]) -> String { PageCursor.encode(parts) }

    static func decode(_ text: String) throws(RankingError) -> [String]? {
        guard !text.isEmpty else { return nil }
        guard let parts = PageCursor.parts(of: text) else { throw RankingError.invalidCursor }
        return parts
    }
}

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let self else { return nil }
        return try await transform(self)
    }
}
