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

/// Process-local boards: a chunked sorted list with a Fenwick tree over chunk sizes, so a rank lookup or a page at
/// any offset costs O(log n) steps and an update O(chunk + log n), for millions of members.
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

    /// The rank and the comparison and tree steps the lookup took (for the test that checks it grows as log n).
    public func rankWithSteps(of member: String, in board: String) -> (rank: Int?, steps: Int) {
        boards.withLock { boards in
            var steps = 0
            let rank = boards[board]?.descendingRank(of: member, steps: &steps)
            return (rank, steps)
        }
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

/// Entries sorted ascending by (score, member bytes), split into chunks of bounded size; `sizes` is a Fenwick tree
/// of the chunk sizes (rebuilt when chunks split or vanish, every few hundred updates at most).
struct OrderedBoard {
    private static let maximumChunk = 1024
    private(set) var chunks: [[RankEntry]] = []
    private(set) var scores: [String: Double] = [:]
    private var sizes: [Int] = [0]

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
            rebuildSizes()
            return
        }
        var steps = 0
        // The first chunk whose last entry is not below the new one; else the last chunk.
        var chunkIndex = chunks.partitionIndex(steps: &steps) { !Self.ascending($0.last!, entry) }
        if chunkIndex == chunks.count { chunkIndex -= 1 }
        let position = chunks[chunkIndex].partitionIndex(steps: &steps) { !Self.ascending($0, entry) }
        chunks[chunkIndex].insert(entry, at: position)
        if chunks[chunkIndex].count > Self.maximumChunk {
            let upper = Array(chunks[chunkIndex][(Self.maximumChunk / 2)...])
            chunks[chunkIndex].removeSubrange((Self.maximumChunk / 2)...)
            chunks.insert(upper, at: chunkIndex + 1)
            rebuildSizes()
        } else {
            addSize(1, at: chunkIndex)
        }
    }

    @discardableResult
    mutating func remove(_ member: String) -> Bool {
        var steps = 0
        guard let score = scores.removeValue(forKey: member),
            let (chunkIndex, position) = locate(RankEntry(member: member, score: score), steps: &steps)
        else { return false }
        chunks[chunkIndex].remove(at: position)
        if chunks[chunkIndex].isEmpty {
            chunks.remove(at: chunkIndex)
            rebuildSizes()
        } else {
            addSize(-1, at: chunkIndex)
        }
        return true
    }

    func descendingRank(of member: String) -> Int? {
        var steps = 0
        return descendingRank(of: member, steps: &steps)
    }

    func descendingRank(of member: String, steps: inout Int) -> Int? {
        guard let score = scores[member],
            let (chunkIndex, position) = locate(RankEntry(member: member, score: score), steps: &steps)
        else { return nil }
        let ascending = sizeBefore(chunkIndex, steps: &steps) + position
        return count - 1 - ascending
    }

    func descending(offset: Int, limit: Int) -> [RankEntry] {
        guard offset >= 0, limit > 0, offset < count else { return [] }
        var result: [RankEntry] = []
        result.reserveCapacity(min(limit, count - offset))
        // The entry at `offset` from the top is at ascending index count − 1 − offset; walk down from it.
        var (chunkIndex, position) = chunk(containing: count - 1 - offset)
        while chunkIndex >= 0 {
            let chunk = chunks[chunkIndex]
            while position >= 0 {
                result.append(chunk[position])
                if result.count == limit { return result }
                position -= 1
            }
            chunkIndex -= 1
            if chunkIndex >= 0 { position = chunks[chunkIndex].count - 1 }
        }
        return result
    }

    private func locate(_ entry: RankEntry, steps: inout Int) -> (Int, Int)? {
        let chunkIndex = chunks.partitionIndex(steps: &steps) { !Self.ascending($0.last!, entry) }
        guard chunkIndex < chunks.count else { return nil }
        let position = chunks[chunkIndex].partitionIndex(steps: &steps) { !Self.ascending($0, entry) }
        guard position < chunks[chunkIndex].count, chunks[chunkIndex][position] == entry else { return nil }
        return (chunkIndex, position)
    }

    // MARK: Fenwick tree over chunk sizes (1-based)

    private mutating func rebuildSizes() {
        sizes = [0] + chunks.map(\.count)
        var index = 1
        while index < sizes.count {
            let parent = index + (index & -index)
            if parent < sizes.count { sizes[parent] += sizes[index] }
            index += 1
        }
    }

    private mutating func addSize(_ delta: Int, at chunkIndex: Int) {
        var index = chunkIndex + 1
        while index < sizes.count {
            sizes[index] += delta
            index += index & -index
        }
    }

    /// Entries in the chunks before `chunkIndex`.
    private func sizeBefore(_ chunkIndex: Int, steps: inout Int) -> Int {
        var total = 0
        var index = chunkIndex
        while index > 0 {
            steps += 1
            total += sizes[index]
            index -= index & -index
        }
        return total
    }

    /// The chunk and position of the entry at an ascending index (binary descent of the tree).
    private func chunk(containing ascendingIndex: Int) -> (Int, Int) {
        var position = 0
        var remaining = ascendingIndex
        var step = 1
        while step * 2 < sizes.count { step *= 2 }
        while step > 0 {
            let next = position + step
            if next < sizes.count, sizes[next] <= remaining {
                position = next
                remaining -= sizes[next]
            }
            step /= 2
        }
        return (position, remaining)
    }
}

extension Array {
    /// Index of the first element satisfying a predicate that is false then true along the array (binary search),
    /// counting the comparisons in `steps`.
    func partitionIndex(steps: inout Int, where predicate: (Element) -> Bool) -> Int {
        var low = 0
        var high = count
        while low < high {
            steps += 1
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
