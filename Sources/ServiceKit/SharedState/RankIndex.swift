import Synchronization

/// A member of a board with its score.
public struct RankEntry: Sendable, Hashable {
    public let member: String
    public let score: Double

    public init(member: String, score: Double) {
        self.member = member
        self.score = score
    }
}

/// Sorted sets of scored members ("boards"), ranked highest score first.
///
/// Equal scores rank by member, the larger byte string first — Redis's ZREVRANK order, which the in-process
/// implementation reproduces. A caller that wants another tie-break (earlier submission first) encodes it in the
/// member or the score. Ranks are 0-based here; the public API adds one.
public protocol RankIndex: Sendable {
    /// Adds or moves members.
    func upsert(_ entries: [RankEntry], in board: String) async throws
    /// Returns whether the member was present.
    @discardableResult
    func remove(_ member: String, from board: String) async throws -> Bool
    func rank(of member: String, in board: String) async throws -> Int?
    func score(of member: String, in board: String) async throws -> Double?
    /// Members from `offset` (0 = best), at most `limit`.
    func range(in board: String, offset: Int, limit: Int) async throws -> [RankEntry]
    func count(in board: String) async throws -> Int
    /// Deletes a whole board (before a rebuild).
    func removeBoard(_ board: String) async throws
}

extension RankIndex {
    public func upsert(_ member: String, score: Double, in board: String) async throws {
        try await upsert([RankEntry(member: member, score: score)], in: board)
    }
}

/// Process-local boards: a chunked sorted list gives O(√n) updates and rank lookups for millions of members.
public final class InMemoryRankIndex: RankIndex {
    private let boards = Mutex<[String: OrderedBoard]>([:])  // shared by every request of the process

    public init() {}

    public func upsert(_ entries: [RankEntry], in board: String) async throws {
        boards.withLock { boards in
            for entry in entries { boards[board, default: OrderedBoard()].upsert(entry) }
        }
    }

    @discardableResult
    public func remove(_ member: String, from board: String) async throws -> Bool {
        boards.withLock { boards in
            let removed = boards[board]?.remove(member) ?? false
            if boards[board]?.count == 0 { boards[board] = nil }
            return removed
        }
    }

    public func rank(of member: String, in board: String) async throws -> Int? {
        boards.withLock { $0[board]?.descendingRank(of: member) }
    }

    public func score(of member: String, in board: String) async throws -> Double? {
        boards.withLock { $0[board]?.scores[member] }
    }

    public func range(in board: String, offset: Int, limit: Int) async throws -> [RankEntry] {
        boards.withLock { $0[board]?.descending(offset: offset, limit: limit) ?? [] }
    }

    public func count(in board: String) async throws -> Int {
        boards.withLock { $0[board]?.count ?? 0 }
    }

    public func removeBoard(_ board: String) async throws {
        _ = boards.withLock { $0.removeValue(forKey: board) }
    }
}

/// Entries sorted ascending by (score, member bytes), split into chunks of bounded size.
struct OrderedBoard {
    private static let maximumChunk = 1024
    private(set) var chunks: [[RankEntry]] = []
    private(set) var scores: [String: Double] = [:]

    var count: Int { scores.count }

    static func ascending(_ lhs: RankEntry, _ rhs: RankEntry) -> Bool {
        if lhs.score != rhs.score { return lhs.score < rhs.score }
        return lhs.member.utf8.lexicographicallyPrecedes(rhs.member.utf8)
    }

    mutating func upsert(_ entry: RankEntry) {
        if let old = scores[entry.member] {
            if old == entry.score { return }
            remove(entry.member)
        }
        scores[entry.member] = entry.score
        guard !chunks.isEmpty else {
            chunks = [[entry]]
            return
        }
        // The first chunk whose last entry is not below the new one; else the last chunk.
        var chunkIndex = chunks.partitionIndex { !Self.ascending($0.last!, entry) }
        if chunkIndex == chunks.count { chunkIndex -= 1 }
        let position = chunks[chunkIndex].partitionIndex { !Self.ascending($0, entry) }
        chunks[chunkIndex].insert(entry, at: position)
        if chunks[chunkIndex].count > Self.maximumChunk {
            let upper = Array(chunks[chunkIndex][(Self.maximumChunk / 2)...])
            chunks[chunkIndex].removeSubrange((Self.maximumChunk / 2)...)
            chunks.insert(upper, at: chunkIndex + 1)
        }
    }

    @discardableResult
    mutating func remove(_ member: String) -> Bool {
        guard let score = scores.removeValue(forKey: member),
            let (chunkIndex, position) = locate(RankEntry(member: member, score: score))
        else { return false }
        chunks[chunkIndex].remove(at: position)
        if chunks[chunkIndex].isEmpty { chunks.remove(at: chunkIndex) }
        return true
    }

    func descendingRank(of member: String) -> Int? {
        guard let score = scores[member], let (chunkIndex, position) = locate(RankEntry(member: member, score: score))
        else { return nil }
        let ascending = chunks[..<chunkIndex].reduce(0) { $0 + $1.count } + position
        return count - 1 - ascending
    }

    func descending(offset: Int, limit: Int) -> [RankEntry] {
        guard offset >= 0, limit > 0, offset < count else { return [] }
        var result: [RankEntry] = []
        result.reserveCapacity(min(limit, count - offset))
        var skip = offset
        for chunk in chunks.reversed() {
            if skip >= chunk.count {
                skip -= chunk.count
                continue
            }
            for entry in chunk.reversed().dropFirst(skip) {
                result.append(entry)
                if result.count == limit { return result }
            }
            skip = 0
        }
        return result
    }

    private func locate(_ entry: RankEntry) -> (Int, Int)? {
        let chunkIndex = chunks.partitionIndex { !Self.ascending($0.last!, entry) }
        guard chunkIndex < chunks.count else { return nil }
        let position = chunks[chunkIndex].partitionIndex { !Self.ascending($0, entry) }
        guard position < chunks[chunkIndex].count, chunks[chunkIndex][position] == entry else { return nil }
        return (chunkIndex, position)
    }
}

extension Array {
    /// Index of the first element satisfying a predicate that is false then true along the array (binary search).
    func partitionIndex(where predicate: (Element) -> Bool) -> Int {
        var low = 0
        var high = count
        while low < high {
            let middle = (low + high) / 2
            if predicate(self[middle]) { high = middle } else { low = middle + 1 }
        }
        return low
    }
}

/// Boards as Redis sorted sets (`ZADD`, `ZREVRANK`, `ZREVRANGE`, `ZCARD`).
public struct RedisRankIndex: RankIndex {
    let client: RedisClient
    let prefix: String

    public init(client: RedisClient, prefix: String = "leaderboard:rank:") {
        self.client = client
        self.prefix = prefix
    }

    public func upsert(_ entries: [RankEntry], in board: String) async throws {
        // Bounded batches keep one command's size reasonable when a board is warmed with a million members.
        for batch in stride(from: 0, to: entries.count, by: 1000) {
            var arguments: [RedisArgument] = ["ZADD", RedisArgument(prefix + board)]
            for entry in entries[batch..<min(batch + 1000, entries.count)] {
                arguments.append(RedisArgument(entry.score))
                arguments.append(RedisArgument(entry.member))
            }
            try await client.send(arguments)
        }
    }

    @discardableResult
    public func remove(_ member: String, from board: String) async throws -> Bool {
        try await client.send(["ZREM", RedisArgument(prefix + board), RedisArgument(member)]).integer == 1
    }

    public func rank(of member: String, in board: String) async throws -> Int? {
        try await client.send(["ZREVRANK", RedisArgument(prefix + board), RedisArgument(member)]).integer.map(Int.init)
    }

    public func score(of member: String, in board: String) async throws -> Double? {
        try await client.send(["ZSCORE", RedisArgument(prefix + board), RedisArgument(member)]).double
    }

    public func range(in board: String, offset: Int, limit: Int) async throws -> [RankEntry] {
        guard offset >= 0, limit > 0 else { return [] }
        let reply = try await client.send([
            "ZREVRANGE", RedisArgument(prefix + board), RedisArgument(offset), RedisArgument(offset + limit - 1),
            "WITHSCORES",
        ])
        let values = reply.array ?? []
        return stride(from: 0, to: values.count - 1, by: 2).compactMap { index in
            guard let member = values[index].string, let score = values[index + 1].double else { return nil }
            return RankEntry(member: member, score: score)
        }
    }

    public func count(in board: String) async throws -> Int {
        Int(try await client.send(["ZCARD", RedisArgument(prefix + board)]).integer ?? 0)
    }

    public func removeBoard(_ board: String) async throws {
        try await client.send(["DEL", RedisArgument(prefix + board)])
    }
}
