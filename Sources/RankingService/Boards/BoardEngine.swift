import Foundation
import Logging
import ServiceKit
import Synchronization

/// The only writer of boards: it owns the rank index and the event outbox. Every change of a version's boards
/// happens under that version's board row locks, inside a database transaction, so boards, records and numbered
/// events agree across replicas (a failed transaction undoes its index changes; a committed one publishes its events).
///
/// Accepted submits do not rank their records themselves: they store them as pending promotions, and the version's
/// ``PromotionWriter`` ranks every pending record in one transaction (docs/RANKING.md, "The board writer").
struct BoardEngine: Sendable {
    let database: ServiceDatabase
    let ranks: any RankIndex
    let events: any EventBus
    let logger: Logger
    let clock: any WallClock
    /// Rank changes are announced for records within this many places of the top of a board.
    let watchedPlaces: Int
    let writer: PromotionWriter

    /// Bus channel carrying every committed board event as JSON of ``BoardEvent`` (watchers take it as a wake-up and
    /// read the stored events, so their order never depends on the bus).
    static let eventChannel = EventChannels.ranking
    /// Pending records one batch transaction takes at most; a round takes batches until none are left.
    static let batchLimit = 256
    /// How long a pending record waits before any replica's upkeep ranks it (its own writer's process may be gone).
    static let strandedAfter: Int64 = 2_000_000

    struct Promotion: Sendable, Equatable {
        var rank = 0
        var isNewBest = false
    }

    // MARK: transactions that change boards

    /// One transaction that may change boards. If it fails, the rank index changes it made are undone; once it
    /// commits, its board events are published on the event bus (each as JSON of ``BoardEvent``), in order.
    func changing<T: Sendable>(_ body: @Sendable (any SQLExecutor) async throws -> T) async throws -> T {
        let log = ChangeLog()
        let result: T
        do {
            result = try await ChangeLog.$current.withValue(log) {
                try await database.transaction(logger: logger) { try await body($0) }
            }
        } catch {
            await log.undo()
            throw error
        }
        // Watchers read events from the database, so a lost publish only delays them until their next poll.
        let payloads = log.events.compactMap { try? RankingRepository.encoder.encode($0) }.map { Array($0) }
        if !payloads.isEmpty { try? await events.publish(payloads, to: Self.eventChannel) }
        return result
    }

    /// Locks board rows in name order, so concurrent changes of the same boards (on any replica) run one at a time.
    /// A version's global board sorts before its framework boards, so holding it serializes the whole version.
    func lock(_ boards: some Sequence<String>, sql: any SQLExecutor) async throws {
        let repository = RankingRepository(sql)
        for board in Set(boards).sorted() { try await repository.lock(board: board) }
    }

    // MARK: the board writer

    /// Ranks this version's pending records (after the caller's own commit), sharing a batch with every caller that
    /// asked meanwhile; returns the promotions of the records the round ranked, by record id.
    func promotePending(version: String) async throws -> [String: Promotion] {
        try await writer.round(version: version) { [self] in
            var ranked: [String: Promotion] = [:]
            while true {
                let (promotions, taken) = try await promoteBatch(version: version)
                ranked.merge(promotions) { $1 }
                if taken < Self.batchLimit { return ranked }
            }
        }
    }

    /// Ranks pending records that waited longer than ``strandedAfter`` (their replica died between a submit's commit
    /// and its batch). Run by every replica's upkeep; the board lock keeps two from ranking one record twice.
    func promoteStranded() async throws {
        let before = clock.microsecondsSinceEpoch() - Self.strandedAfter
        let versions = try await database.withExecutor(logger: logger) {
            try await RankingRepository($0).versionsWithPromotions(enqueuedBefore: before)
        }
        for version in versions {
            let ranked = try await promotePending(version: version)
            if !ranked.isEmpty {
                logger.notice(
                    "ranked records a submit left pending",
                    metadata: ["version": "\(version)", "records": "\(ranked.count)"])
            }
        }
    }

    /// One transaction: takes up to ``batchLimit`` of the version's pending records, oldest first, ranks each that
    /// beats its owner's ranked one, numbers the boards' events, and stores every taken session's final answer.
    private func promoteBatch(version: String) async throws -> (promotions: [String: Promotion], taken: Int) {
        let started = ContinuousClock.now
        let result = try await changing { sql -> ([String: Promotion], Int) in
            let repository = RankingRepository(sql)
            try await lock([Board.global(version)], sql: sql)
            let taken = try await repository.takePromotions(version: version, limit: Self.batchLimit)
            guard !taken.isEmpty else { return ([:], 0) }
            let found = try await repository.records(taken.map(\.recordID))
            // Deleted, unpublished or hidden while pending: nothing to rank.
            let records = taken.compactMap { found[$0.recordID] }
            let promotions = try await promote(records, sql: sql, now: clock.microsecondsSinceEpoch())
            var outcomes: [(sessionID: String, outcome: String)] = []
            for pending in taken {
                var answer = try RankingRepository.decode(SubmissionResult.self, pending.outcome)
                let promotion = promotions[pending.recordID] ?? Promotion()
                answer.place(rank: promotion.rank, isNewBest: promotion.isNewBest)
                outcomes.append((pending.sessionID, try RankingRepository.json(answer)))
            }
            try await repository.setOutcomes(outcomes)
            return (promotions, taken.count)
        }
        if result.1 > 0 {
            MetricFamilies.rankingBatches.counter().increment()
            MetricFamilies.rankingBatchRecords.counter().increment(by: Int64(result.1))
            MetricFamilies.rankingBatchSeconds.histogram().record(started.duration(to: .now))
        }
        return result
    }

    // MARK: promotions and demotions

    /// Ranks each accepted, published record that beats its owner's ranked one for the same framework and version,
    /// in order (a later record of the same owner in the list competes with the earlier one's outcome). The caller's
    /// transaction must go through ``changing``. Returns every record's promotion by id.
    func promote(_ records: [BenchmarkRecord], sql: any SQLExecutor, now: Int64) async throws -> [String: Promotion] {
        guard !records.isEmpty else { return [:] }
        let repository = RankingRepository(sql)
        try await lock(records.flatMap(\.boards), sql: sql)
        struct Owner: Hashable {
            var machine: String
            var framework: String
            var version: String
        }
        var current: [Owner: BenchmarkRecord] = [:]
        for (version, group) in Dictionary(grouping: records, by: \.datasetVersion) {
            for record in try await repository.ranked(version: version, machines: group.map(\.machineID)) {
                current[Owner(machine: record.machineID, framework: record.framework, version: version)] = record
            }
        }
        var promotions: [String: Promotion] = [:]
        var changes: [RankChange] = []
        // For each change: the record it promotes, and whether it is that record's global board.
        var changed: [(recordID: String, global: Bool)] = []
        var unranked: [String] = []
        var newlyRanked: [String] = []
        var alreadyRanked: [BenchmarkRecord] = []
        for record in records {
            promotions[record.recordID] = Promotion()
            guard record.published, record.status == .accepted else { continue }
            let owner = Owner(machine: record.machineID, framework: record.framework, version: record.datasetVersion)
            let previous = current[owner]
            if previous?.recordID == record.recordID {
                // Ranked already: a demotion of its owner's best chose it while it waited.
                alreadyRanked.append(record)
                continue
            }
            guard previous.map({ (record.rankKey, record.recordID) > ($0.rankKey, $0.recordID) }) ?? true else {
                continue
            }
            if let previous {
                unranked.append(previous.recordID)
                newlyRanked.removeAll { $0 == previous.recordID }
            }
            newlyRanked.append(record.recordID)
            current[owner] = record
            for board in record.boards {
                changes.append(
                    RankChange(
                        board: board, removing: previous?.recordID,
                        adding: RankEntry(member: record.recordID, score: record.rankKey), watched: watchedPlaces))
                changed.append((record.recordID, board == record.boards[0]))
            }
        }
        try await repository.setRanked(unranked, false)
        try await repository.setRanked(newlyRanked, true)
        let outcomes = try await apply(changes, sql: sql, now: now)
        for ((recordID, global), outcome) in zip(changed, outcomes) {
            promotions[recordID]?.isNewBest = true
            if global { promotions[recordID]?.rank = outcome.newRank.map { $0 + 1 } ?? 0 }
        }
        for record in alreadyRanked {
            let rank = try await ranks.rank(of: record.recordID, in: record.boards[0])
            promotions[record.recordID] = Promotion(rank: rank.map { $0 + 1 } ?? 0, isNewBest: true)
        }
        return promotions
    }

    /// Takes a record off its boards (unpublished, deleted, hidden) and ranks its owner's next best one, if any.
    func demote(_ record: BenchmarkRecord, sql: any SQLExecutor, now: Int64) async throws {
        guard record.ranked else { return }
        let repository = RankingRepository(sql)
        try await lock(record.boards, sql: sql)
        try await repository.setFlags(
            record.recordID, status: record.status, published: record.published, ranked: false)
        let next = try await repository.best(
            machineID: record.machineID, framework: record.framework, version: record.datasetVersion,
            excluding: record.recordID)
        if let next {
            try await repository.setFlags(next.recordID, status: next.status, published: next.published, ranked: true)
        }
        try await apply(
            record.boards.map {
                RankChange(
                    board: $0, removing: record.recordID,
                    adding: next.map { RankEntry(member: $0.recordID, score: $0.rankKey) }, watched: watchedPlaces)
            }, sql: sql, now: now)
    }

    /// Applies changes to the rank index in one step and stores their events, numbered per board in order. The
    /// caller holds the boards' row locks and runs in ``changing``: if its transaction fails, the index changes are
    /// undone.
    @discardableResult
    func apply(_ changes: [RankChange], sql: any SQLExecutor, now: Int64) async throws -> [RankChangeOutcome] {
        guard !changes.isEmpty else { return [] }
        let outcomes = try await ranks.apply(changes)
        ChangeLog.current?.undo { [ranks] in
            _ = try? await ranks.apply(zip(changes, outcomes).reversed().map { $0.inverse($1) })
        }
        var kinds: [(board: String, kind: BoardEvent.Kind)] = []
        for (change, outcome) in zip(changes, outcomes) {
            kinds += Self.events(of: change, outcome).map { (change.board, $0) }
        }
        guard !kinds.isEmpty else { return outcomes }
        let repository = RankingRepository(sql)
        var next: [String: UInt64] = [:]
        for (board, count) in Dictionary(grouping: kinds, by: \.board).mapValues(\.count).sorted(by: { $0.key < $1.key }
        ) {
            next[board] = try await repository.reserveSequence(board, count: count)
        }
        var stored: [BoardEvent] = []
        for (board, kind) in kinds {
            let sequence = next[board, default: 0]
            stored.append(BoardEvent(board: board, sequence: sequence, at: now, kind: kind))
            next[board] = sequence + 1
        }
        try await repository.insert(stored)
        for event in stored { ChangeLog.current?.emit(event) }
        return outcomes
    }

    /// The events of one applied change: the member that left, the one that entered with its place, and the members
    /// among the watched places whose place moved by one.
    static func events(of change: RankChange, _ outcome: RankChangeOutcome) -> [BoardEvent.Kind] {
        var kinds: [BoardEvent.Kind] = []
        if let old = change.removing { kinds.append(.removed(recordID: old)) }
        let newRank = outcome.newRank.map { $0 + 1 }
        if let new = change.adding, let newRank { kinds.append(.accepted(recordID: new.member, rank: newRank)) }
        // The owner's old entry and new one count as one place that moved, so the others shift once.
        for shift in rankShifts(
            old: outcome.oldRank.map { $0 + 1 }, new: newRank, count: outcome.count, watched: change.watched)
        {
            let index = shift.to - 1 - outcome.windowStart
            guard outcome.window.indices.contains(index), outcome.window[index].member != change.adding?.member
            else { continue }
            kinds.append(.rankChanged(recordID: outcome.window[index].member, oldRank: shift.from, newRank: shift.to))
        }
        return kinds
    }

    // MARK: rank index upkeep

    /// Rebuilds the boards of one version (or every version) from the database; returns the records indexed.
    func rebuild(version: String?) async throws -> Int {
        let boards = try await database.withExecutor(logger: logger) {
            try await RankingRepository($0).boards(version: version)
        }
        var indexed = 0
        for version in Set(boards.map(\.version)).sorted() {
            try await ranks.removeBoard(Board.global(version))
            for (_, framework) in boards where true {
                try await ranks.removeBoard(Board.framework(version, framework))
            }
            indexed += try await fill(version: version)
        }
        logger.notice("rank index rebuilt", metadata: ["records": "\(indexed)", "version": "\(version ?? "all")"])
        // Boards cached while the index was short (a Redis that came back empty) are stale now.
        let notice = (try? JSONSerialization.data(withJSONObject: ["version": version ?? ""])) ?? Data()
        try? await events.publish(Array(notice), to: EventChannels.rankIndexRebuilt)
        let now = clock.microsecondsSinceEpoch()
        let details = "{\"records_indexed\":\(indexed)}"
        try await database.transaction(logger: logger) { sql in
            try await AuditTrail.append(
                sql, at: now, action: "ranking.rebuild", target: version ?? "all", reason: "", details: details)
        }
        return indexed
    }

    /// At start: every board whose size differs from the database is rebuilt (an empty in-process index, or a Redis
    /// that lost writes); boards that agree are left alone, so replicas starting together do not disturb each other.
    @discardableResult
    func warm() async throws -> [String] {
        let boards = try await database.withExecutor(logger: logger) {
            try await RankingRepository($0).boards(version: nil)
        }
        var stale: Set<String> = []
        for (version, framework) in boards {
            let counts = try await database.withExecutor(logger: logger) { sql in
                let repository = RankingRepository(sql)
                return (
                    try await repository.countRanked(RecordFilter(datasetVersion: version)),
                    try await repository.countRanked(RecordFilter(datasetVersion: version, framework: framework))
                )
            }
            let indexedGlobal = try await ranks.count(in: Board.global(version))
            let indexedFramework = try await ranks.count(in: Board.framework(version, framework))
            if indexedGlobal != counts.0 || indexedFramework != counts.1 {
                stale.insert(version)
            }
        }
        for version in stale.sorted() { _ = try await rebuild(version: version) }
        return stale.sorted()
    }

    /// Whether the rank index holds its sentinel: set by the last complete fill, gone when Redis comes back empty.
    func indexFilled() async throws -> Bool { try await Board.indexFilled(ranks) }

    /// Rebuilds what the rank index lost when it comes back empty (``Board/sentinel`` gone) — or, with `force` (at
    /// start, when a Redis may have lost some writes), whatever it holds: every board whose size differs from the
    /// database; then marks the index filled. Returns whether any board was rebuilt. Replicas may both notice; each
    /// rebuild ends with a complete fill, so the outcome is the same.
    @discardableResult
    func ensureIndexed(force: Bool = false) async throws -> Bool {
        if !force, try await indexFilled() { return false }
        let rebuilt = try await warm()
        try await ranks.upsert("filled", score: 0, in: Board.sentinel)
        if !rebuilt.isEmpty {
            logger.warning(
                "the rank index had lost boards (an emptied Redis?); rebuilt them from the database",
                metadata: ["versions": "\(rebuilt.joined(separator: ","))"])
        }
        return !rebuilt.isEmpty
    }

    private func fill(version: String) async throws -> Int {
        var after = ""
        var indexed = 0
        while true {
            let start = after
            let page = try await database.withExecutor(logger: logger) {
                try await RankingRepository($0).rankEntries(version: version, after: start, limit: 5000)
            }
            guard let last = page.last else { return indexed }
            try await ranks.upsert(page.map { RankEntry(member: $0.id, score: $0.key) }, in: Board.global(version))
            for (framework, members) in Dictionary(grouping: page, by: \.framework) {
                try await ranks.upsert(
                    members.map { RankEntry(member: $0.id, score: $0.key) }, in: Board.framework(version, framework))
            }
            indexed += page.count
            after = last.id
        }
    }
}

/// One round of batches at a time per dataset version in this process. A caller joins the next round; everyone
/// who asked while a round ran shares the one after it, so batches grow with the load instead of each submit
/// waiting for the last one's commit.
final class PromotionWriter: Sendable {
    private typealias Waiter = CheckedContinuation<[String: BoardEngine.Promotion], any Error>
    private struct Queue {
        var waiting: [Waiter] = []
    }
    // Versions with a round running, and who waits for the next; shared by every submit of the process.
    private let queues = Mutex<[String: Queue]>([:])

    init() {}

    /// Runs `round` for the version after every round already running, shared with the other callers waiting then.
    func round(
        version: String, _ round: @escaping @Sendable () async throws -> [String: BoardEngine.Promotion]
    ) async throws -> [String: BoardEngine.Promotion] {
        try await withCheckedThrowingContinuation { (waiter: Waiter) in
            let start = queues.withLock { queues -> Bool in
                // A queue that exists has a round running, which takes this waiter when it ends.
                let idle = queues[version] == nil
                queues[version, default: Queue()].waiting.append(waiter)
                return idle
            }
            // Detached: a round serves many callers, so it runs to its end whoever of them is cancelled.
            if start { Task.detached { await self.drain(version: version, round) } }
        }
    }

    private func drain(
        version: String, _ round: @Sendable () async throws -> [String: BoardEngine.Promotion]
    ) async {
        while true {
            let waiters = queues.withLock { queues -> [Waiter] in
                let waiting = queues[version]?.waiting ?? []
                // Empty: the round ends and the version's queue goes; else the queue stays, emptied, while it runs.
                queues[version] = waiting.isEmpty ? nil : Queue()
                return waiting
            }
            guard !waiters.isEmpty else { return }
            do {
                let promotions = try await round()
                for waiter in waiters { waiter.resume(returning: promotions) }
            } catch {
                for waiter in waiters { waiter.resume(throwing: error) }
            }
        }
    }
}

/// What the running transaction did outside the database: rank index changes, undone in reverse order if it fails,
/// and board events, published once it commits.
final class ChangeLog: Sendable {
    @TaskLocal static var current: ChangeLog?
    // Appended to by the transaction's task, read after it ends.
    private let state = Mutex<(undo: [@Sendable () async -> Void], events: [BoardEvent])>(([], []))

    func undo(_ step: @escaping @Sendable () async -> Void) { state.withLock { $0.undo.append(step) } }
    func emit(_ event: BoardEvent) { state.withLock { $0.events.append(event) } }
    var events: [BoardEvent] { state.withLock { $0.events } }

    func undo() async {
        for step in state.withLock({ $0.undo }).reversed() { await step() }
    }
}
