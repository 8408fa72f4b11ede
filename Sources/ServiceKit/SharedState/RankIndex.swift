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
    /// Applies board changes in order, as one step no other writer interleaves with (one Redis script), and says
    /// what each did: the places before and after, and the members whose places it moved.
    func apply(_ changes: [RankChange]) async throws -> [RankChangeOutcome]
}

/// One change of a board: a member leaves, another enters, or both at once (an owner's new best replacing the old).
public struct RankChange: Sendable, Hashable {
    public var board: String
    public var removing: String?
    public var adding: RankEntry?
    /// The outcome lists the members whose places moved, among the board's first `watched` places.
    public var watched: Int

    public init(board: String, removing: String?, adding: RankEntry?, watched: Int) {
        self.board = board
        self.removing = removing
        self.adding = adding
        self.watched = watched
    }

    /// The change that takes this one back, given what it did.
    public func inverse(_ outcome: RankChangeOutcome) -> RankChange {
        var restored: RankEntry?
        if let removing, let score = outcome.oldScore { restored = RankEntry(member: removing, score: score) }
        return RankChange(board: board, removing: adding?.member, adding: restored, watched: 0)
    }
}

/// What one ``RankChange`` did. Ranks are 0-based.
public struct RankChangeOutcome: Sendable, Equatable {
    /// The removed member's place and score before the change; nil when it was not on the board.
    public var oldRank: Int?
    public var oldScore: Double?
    /// The added member's place after the change.
    public var newRank: Int?
    /// Members on the board after the change.
    public var count: Int
    /// Members from place `windowStart` after the change: every member whose place the change moved, among the
    /// first `watched` places (and possibly the added member itself).
    public var windowStart: Int
    public var window: [RankEntry]

    public init(
        oldRank: Int?, oldScore: Double?, newRank: Int?, count: Int, windowStart: Int = 0, window: [RankEntry] = []
    ) {
        self.oldRank = oldRank
        self.oldScore = oldScore
        self.newRank = newRank
        self.count = count
        self.windowStart = windowStart
        self.window = window
    }

    /// The places (0-based, inclusive) whose members a change moved, among the first `watched`: from the better of
    /// the two places to the worse (to the board's end when a member only entered or only left).
    public static func window(oldRank: Int?, newRank: Int?, count: Int, watched: Int) -> ClosedRange<Int>? {
        let low: Int
        var high: Int
        switch (oldRank, newRank) {
        case (let old?, let new?): (low, high) = (min(old, new), max(old, new))
        case (let old?, nil): (low, high) = (old, count - 1)
        case (nil, let new?): (low, high) = (new, count - 1)
        case (nil, nil): return nil
        }
        high = min(high, min(count, watched) - 1)
        return low <= high ? low...high : nil
    }
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

    public func apply(_ changes: [RankChange]) async throws -> [RankChangeOutcome] {
        boards.withLock { boards in
            changes.map { change in
                var board = boards[change.board] ?? OrderedBoard()
                defer { boards[change.board] = board.count == 0 ? nil : board }
                let oldRank = change.removing.flatMap { board.descendingRank(of: $0) }
                let oldScore = change.removing.flatMap { board.scores[$0] }
                if let old = change.removing { _ = board.remove(old) }
                if let new = change.adding { board.upsert(new) }
                let newRank = change.adding.flatMap { board.descendingRank(of: $0.member) }
                var outcome = RankChangeOutcome(
                    oldRank: oldRank, oldScore: oldScore, newRank: newRank, count: board.count)
                if let places = RankChangeOutcome.window(
                    oldRank: oldRank, newRank: newRank, count: board.count, watched: change.watched)
                {
                    outcome.windowStart = places.lowerBound
                    outcome.window = board.descending(offset: places.lowerBound, limit: places.count)
                }
                return outcome
            }
        }
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
        for batch in entries.chunks(of: 1000) {
            var arguments: [RedisArgument] = ["ZADD", RedisArgument(prefix + board)]
            for entry in batch {
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
        return Self.entries(reply.array ?? [])
    }

    /// Members and scores of a `WITHSCORES` reply: member, score, member, score…
    static func entries(_ values: [RESPValue]) -> [RankEntry] {
        stride(from: 0, to: values.count - 1, by: 2).compactMap { index in
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

    /// Every change of a call in one script run: one round trip, and no other client's command in between.
    public func apply(_ changes: [RankChange]) async throws -> [RankChangeOutcome] {
        guard !changes.isEmpty else { return [] }
        var keys: [String] = []
        var slots: [String: Int] = [:]
        var arguments: [RedisArgument] = []
        for change in changes {
            // KEYS holds each board once; a change names its board by 1-based position.
            let slot: Int
            if let known = slots[change.board] {
                slot = known
            } else {
                keys.append(prefix + change.board)
                slot = keys.count
                slots[change.board] = slot
            }
            arguments += [
                RedisArgument(slot), RedisArgument(change.removing.map { "=" + $0 } ?? ""),
                RedisArgument(change.adding.map { "=" + $0.member } ?? ""),
                RedisArgument(change.adding?.score ?? 0), RedisArgument(change.watched),
            ]
        }
        let reply = try await client.evaluate(Self.changeScript, keys: keys, arguments: arguments)
        guard let rows = reply.array, rows.count == changes.count else {
            throw RedisClientError(.unexpectedReply, "rank change: not one answer per change")
        }
        return try rows.map { row in
            guard let fields = row.array, fields.count == 6, let oldRank = fields[0].integer,
                let newRank = fields[2].integer, let count = fields[3].integer, let start = fields[4].integer,
                let window = fields[5].array
            else { throw RedisClientError(.unexpectedReply, "rank change: malformed answer") }
            return RankChangeOutcome(
                oldRank: oldRank < 0 ? nil : Int(oldRank), oldScore: fields[1].string.flatMap { Double($0) },
                newRank: newRank < 0 ? nil : Int(newRank), count: Int(count), windowStart: Int(start),
                window: Self.entries(window))
        }
    }

    /// ARGV holds five values per change: the board's key index, the member leaving and the one entering (each
    /// prefixed with "=", or empty for none), the entering score, and how many top places to report. Ranks come back
    /// 0-based, -1 for none; scores as strings (Redis truncates Lua numbers). The window is
    /// ``RankChangeOutcome/window(oldRank:newRank:count:watched:)`` in Lua.
    static let changeScript = RedisScript(
        """
        local out = {}
        for i = 1, #ARGV, 5 do
          local key = KEYS[tonumber(ARGV[i])]
          local leaving, entering = ARGV[i + 1], ARGV[i + 2]
          local watched = tonumber(ARGV[i + 4])
          local old_rank, old_score, new_rank = -1, '', -1
          if leaving ~= '' then
            local member = string.sub(leaving, 2)
            local rank = redis.call('ZREVRANK', key, member)
            if rank then
              old_rank = rank
              old_score = redis.call('ZSCORE', key, member)
              redis.call('ZREM', key, member)
            end
          end
          if entering ~= '' then
            local member = string.sub(entering, 2)
            redis.call('ZADD', key, ARGV[i + 3], member)
            new_rank = redis.call('ZREVRANK', key, member)
          end
          local count = redis.call('ZCARD', key)
          local low, high = -1, -1
          if old_rank >= 0 and new_rank >= 0 then
            low, high = math.min(old_rank, new_rank), math.max(old_rank, new_rank)
          elseif old_rank >= 0 then
            low, high = old_rank, count - 1
          elseif new_rank >= 0 then
            low, high = new_rank, count - 1
          end
          high = math.min(high, math.min(count, watched) - 1)
          local window = {}
          if low >= 0 and low <= high then
            window = redis.call('ZREVRANGE', key, low, high, 'WITHSCORES')
          else
            low = 0
          end
          out[#out + 1] = {old_rank, old_score, new_rank, count, low, window}
        end
        return out
        """
    )
}
