import Foundation
import ServiceKit
import TestSupport
import Testing

@Suite("RankIndex contract", .timeLimit(.minutes(3)))
struct RankIndexContractTests {
    func make(_ backend: SharedBackend) throws -> (any RankIndex, RedisClient?) {
        switch backend {
        case .inProcess: return (InMemoryRankIndex(), nil)
        case .redis:
            let client = try TestEnvironment.redisClient()
            return (RedisRankIndex(client: client, prefix: TestEnvironment.uniquePrefix("rank")), client)
        }
    }

    @Test("ranks run from the highest score, 0-based, with ranges and counts", arguments: SharedBackend.available)
    func ordering(backend: SharedBackend) async throws {
        let (index, client) = try make(backend)
        try await index.upsert(
            [.init(member: "a", score: 10), .init(member: "b", score: 30), .init(member: "c", score: 20)], in: "v1")
        #expect(try await index.rank(of: "b", in: "v1") == 0)
        #expect(try await index.rank(of: "c", in: "v1") == 1)
        #expect(try await index.rank(of: "a", in: "v1") == 2)
        #expect(try await index.rank(of: "zz", in: "v1") == nil)
        #expect(try await index.count(in: "v1") == 3)
        #expect(try await index.count(in: "other") == 0)
        #expect(try await index.range(in: "v1", offset: 1, limit: 5).map(\.member) == ["c", "a"])
        #expect(try await index.range(in: "v1", offset: 3, limit: 5).isEmpty)
        #expect(try await index.score(of: "c", in: "v1") == 20)
        await client?.close()
    }

    @Test("a change reports the places before and after and the members it moved", arguments: SharedBackend.available)
    func change(backend: SharedBackend) async throws {
        let (index, client) = try make(backend)
        try await index.upsert((1...6).map { RankEntry(member: "r\($0)", score: Double(70 - 10 * $0)) }, in: "b")
        // r1 60, r2 50, r3 40, r4 30, r5 20, r6 10. r5 is replaced by its owner's better run, which lands second.
        let outcomes = try await index.apply([
            RankChange(board: "b", removing: "r5", adding: RankEntry(member: "n5", score: 55), watched: 4),
            RankChange(board: "b", removing: nil, adding: RankEntry(member: "n7", score: 5), watched: 100),
            RankChange(board: "b", removing: "r1", adding: nil, watched: 3),
            RankChange(board: "b", removing: "gone", adding: nil, watched: 3),
        ])
        #expect(outcomes[0].oldRank == 4 && outcomes[0].oldScore == 20 && outcomes[0].newRank == 1)
        #expect(outcomes[0].count == 6 && outcomes[0].windowStart == 1)
        // Places 1...4 (0-based) moved or were entered, cut at the 4 watched places.
        #expect(outcomes[0].window.map(\.member) == ["n5", "r2", "r3"])
        #expect(outcomes[1].oldRank == nil && outcomes[1].newRank == 6 && outcomes[1].count == 7)
        #expect(outcomes[1].windowStart == 6 && outcomes[1].window.map(\.member) == ["n7"])
        #expect(outcomes[2].oldRank == 0 && outcomes[2].newRank == nil && outcomes[2].count == 6)
        #expect(outcomes[2].windowStart == 0 && outcomes[2].window.map(\.member) == ["n5", "r2", "r3"])
        #expect(outcomes[3] == RankChangeOutcome(oldRank: nil, oldScore: nil, newRank: nil, count: 6))
        #expect(
            try await index.range(in: "b", offset: 0, limit: 10).map(\.member) == ["n5", "r2", "r3", "r4", "r6", "n7"])

        // The inverse changes, applied newest first, give the board back.
        let changes = [
            RankChange(board: "b", removing: "r2", adding: RankEntry(member: "x", score: 1), watched: 0),
            RankChange(board: "b", removing: "x", adding: RankEntry(member: "y", score: 100), watched: 0),
        ]
        let done = try await index.apply(changes)
        _ = try await index.apply(zip(changes, done).reversed().map { $0.inverse($1) })
        #expect(
            try await index.range(in: "b", offset: 0, limit: 10).map(\.member) == ["n5", "r2", "r3", "r4", "r6", "n7"])
        #expect(try await index.score(of: "r2", in: "b") == 50)
        await client?.close()
    }

    @Test("random changes agree with the same steps made one call at a time", arguments: SharedBackend.available)
    func changesMatchSteps(backend: SharedBackend) async throws {
        let (index, client) = try make(backend)
        var generator = SeededGenerator(seed: 7)
        var members: [String] = []
        for round in 0..<60 {
            let removing =
                members.isEmpty || Bool.random(using: &generator) ? nil : members.randomElement(using: &generator)
            let adding =
                Int.random(in: 0..<4, using: &generator) == 0
                ? nil : RankEntry(member: "m\(round)", score: Double(Int.random(in: 0..<20, using: &generator)))
            let watched = Int.random(in: 0..<12, using: &generator)
            // The reference: the old calls on a twin board.
            let oldRank = try await removing.asyncValue { try await index.rank(of: $0, in: "twin") }
            let oldScore = try await removing.asyncValue { try await index.score(of: $0, in: "twin") }
            if let removing { try await index.remove(removing, from: "twin") }
            if let adding { try await index.upsert([adding], in: "twin") }
            let newRank = try await adding.asyncValue { try await index.rank(of: $0.member, in: "twin") }
            let count = try await index.count(in: "twin")
            let outcome = try await index.apply([
                RankChange(board: "main", removing: removing, adding: adding, watched: watched)
            ])[0]
            #expect(outcome.oldRank == oldRank && outcome.oldScore == oldScore, "round \(round)")
            #expect(outcome.newRank == newRank && outcome.count == count, "round \(round)")
            if let places = RankChangeOutcome.window(oldRank: oldRank, newRank: newRank, count: count, watched: watched)
            {
                let expected = try await index.range(in: "twin", offset: places.lowerBound, limit: places.count)
                #expect(outcome.windowStart == places.lowerBound && outcome.window == expected, "round \(round)")
            } else {
                #expect(outcome.window.isEmpty, "round \(round)")
            }
            if let removing { members.removeAll { $0 == removing } }
            if let adding { members.append(adding.member) }
        }
        #expect(
            try await index.range(in: "main", offset: 0, limit: 100)
                == index.range(in: "twin", offset: 0, limit: 100))
        await client?.close()
    }

    @Test("equal scores rank the larger member first, like ZREVRANK", arguments: SharedBackend.available)
    func ties(backend: SharedBackend) async throws {
        let (index, client) = try make(backend)
        try await index.upsert(
            [.init(member: "m1", score: 5), .init(member: "m3", score: 5), .init(member: "m2", score: 5)], in: "t")
        #expect(try await index.range(in: "t", offset: 0, limit: 3).map(\.member) == ["m3", "m2", "m1"])
        await client?.close()
    }

    @Test("updating a score moves the member; removing it and the board work", arguments: SharedBackend.available)
    func updateAndRemove(backend: SharedBackend) async throws {
        let (index, client) = try make(backend)
        try await index.upsert([.init(member: "a", score: 1), .init(member: "b", score: 2)], in: "u")
        try await index.upsert("a", score: 3, in: "u")
        #expect(try await index.rank(of: "a", in: "u") == 0)
        #expect(try await index.count(in: "u") == 2)
        #expect(try await index.remove("a", from: "u"))
        #expect(try await index.remove("a", from: "u") == false)
        #expect(try await index.rank(of: "b", in: "u") == 0)
        try await index.removeBoard("u")
        #expect(try await index.count(in: "u") == 0)
        await client?.close()
    }

    @Test(
        "the in-process index agrees with Redis after thousands of random operations",
        .enabled(if: TestEnvironment.hasRedis))
    func differential() async throws {
        let client = try TestEnvironment.redisClient()
        let redis = RedisRankIndex(client: client, prefix: TestEnvironment.uniquePrefix("rank-diff"))
        let local = InMemoryRankIndex()
        var generator = SeededGenerator(seed: 7)
        for _ in 0..<3000 {
            let member = "r\(Int.random(in: 0..<2500, using: &generator))"
            if Int.random(in: 0..<10, using: &generator) == 0 {
                let removedLocal = try await local.remove(member, from: "b")
                let removedRedis = try await redis.remove(member, from: "b")
                #expect(removedLocal == removedRedis)
            } else {
                // Few distinct scores, so ties are common.
                let score = Double(Int.random(in: 0..<50, using: &generator)) / 2
                try await local.upsert(member, score: score, in: "b")
                try await redis.upsert(member, score: score, in: "b")
            }
        }
        let count = try await local.count(in: "b")
        #expect(try await redis.count(in: "b") == count)
        let localAll = try await local.range(in: "b", offset: 0, limit: count)
        let redisAll = try await redis.range(in: "b", offset: 0, limit: count)
        #expect(localAll == redisAll)
        for probe in stride(from: 0, to: 2500, by: 97) {
            let member = "r\(probe)"
            let expected = try await redis.rank(of: member, in: "b")
            #expect(try await local.rank(of: member, in: "b") == expected)
        }
        await client.close()
    }

    @Test("the in-process index ranks correctly across chunk splits")
    func manyMembers() async throws {
        let index = InMemoryRankIndex()
        let entries = (0..<5000).map { RankEntry(member: "m\($0)", score: Double(($0 * 7919) % 5000)) }
        try await index.upsert(entries, in: "big")
        #expect(try await index.count(in: "big") == 5000)
        for entry in entries.prefix(200) {
            // Scores are a permutation of 0..<5000, so the rank is fully determined.
            #expect(try await index.rank(of: entry.member, in: "big") == 4999 - Int(entry.score))
        }
        let page = try await index.range(in: "big", offset: 2500, limit: 3).map(\.score)
        #expect(page == [2499, 2498, 2497])
    }

    @Test("a rank among a million members takes O(log n) steps, and stays right after updates", .timeLimit(.minutes(3)))
    func millionMembers() async throws {
        let index = InMemoryRankIndex()
        let n = 1_000_000
        // Scores are a permutation of 0..<n, so every rank is known: rank = n − 1 − score.
        let entries = (0..<n).map { RankEntry(member: "m\($0)", score: Double(($0 &* 7919) % n)) }
        for batch in stride(from: 0, to: n, by: 50_000) {
            try await index.upsert(Array(entries[batch..<batch + 50_000]), in: "huge")
        }
        let small = InMemoryRankIndex()
        try await small.upsert(
            Array(entries.prefix(1000)).enumerated().map { RankEntry(member: $1.member, score: Double($0)) },
            in: "small")

        let bound = 2 * Int(log2(Double(n)).rounded(.up))  // 40 comparisons and tree steps
        var generator = SeededGenerator(seed: 11)
        var worst = 0
        for _ in 0..<200 {
            let entry = entries[Int.random(in: 0..<n, using: &generator)]
            let (rank, steps) = index.rankWithSteps(of: entry.member, in: "huge")
            #expect(rank == n - 1 - Int(entry.score))
            worst = max(worst, steps)
        }
        #expect(worst <= bound, "rank lookup took \(worst) steps among \(n); bound \(bound)")
        let smallSteps = small.rankWithSteps(of: "m500", in: "small").steps
        // A thousand times more members cost a bounded number of extra steps, not a thousand times more.
        #expect(worst - smallSteps <= 2 * 10 + 2, "1k: \(smallSteps) steps, 1M: \(worst)")

        // Moving and removing members keeps ranks and pages right (tree updates and chunk removals).
        for member in ["m0", "m1", "m2"] { try await index.remove(member, from: "huge") }
        try await index.upsert("top", score: Double(n), in: "huge")
        #expect(try await index.rank(of: "top", in: "huge") == 0)
        let probe = entries[123_456]
        let expected =
            (n - 1 - Int(probe.score)) + 1
            - [entries[0], entries[1], entries[2]].filter { $0.score > probe.score }.count
        #expect(try await index.rank(of: probe.member, in: "huge") == expected)
        let page = try await index.range(in: "huge", offset: expected, limit: 2)
        #expect(page.first?.member == probe.member)
    }
}

extension Optional {
    fileprivate func asyncValue<T>(_ transform: (Wrapped) async throws -> T?) async rethrows -> T? {
        guard let self else { return nil }
        return try await transform(self)
    }
}
