import Foundation
import GRPCCore
import ServiceKit
import TestSupport
import Testing

@testable import InteractionService

/// An InteractionAuthority on a real database, with records (id → owner) standing in for RankingService.
struct InteractionHarness {
    let interactions: InteractionAuthority
    let database: ServiceDatabase
    static let records = ["rec-1": "owner", "rec-2": "owner"]

    static func with(
        _ backend: StorageBackend, clock: any WallClock = SystemWallClock(),
        _ body: @Sendable (InteractionHarness) async throws -> Void
    ) async throws {
        try await withTestDatabase(backend) { database in
            _ = try await MigrationRunner.apply(InteractionMigrations.all, to: database, logger: TestEnvironment.logger)
            let interactions = InteractionAuthority(
                database: database, events: InProcessEventBus(), logger: TestEnvironment.logger,
                clock: clock, random: SystemRandomSource(),
                lookup: { id in
                    guard let owner = records[id] else {
                        throw InteractionError(code: "record_not_found", detail: "", status: .notFound)
                    }
                    return RecordOwner(recordID: id, ownerMachineID: owner)
                })
            try await body(InteractionHarness(interactions: interactions, database: database))
        }
    }
}

@Suite("InteractionAuthority on real storage", .timeLimit(.minutes(2)))
struct InteractionAuthorityTests {
    @Test(
        "concurrent reactions give exact counts; one reaction per device however it clicks",
        arguments: StorageBackend.available)
    func concurrentReactions(_ backend: StorageBackend) async throws {
        try await InteractionHarness.with(backend) { harness in
            let interactions = harness.interactions
            try await withThrowingTaskGroup(of: Void.self) { group in
                for device in 0..<40 {
                    group.addTask {
                        _ = try await interactions.setReaction(.like, record: "rec-1", machineID: "d\(device)")
                    }
                }
                // One device clicking like and dislike back and forth at the same time.
                for click in 0..<20 {
                    group.addTask {
                        _ = try await interactions.setReaction(
                            click % 2 == 0 ? .like : .dislike, record: "rec-1", machineID: "fickle")
                    }
                }
                try await group.waitForAll()
            }
            let afterLikes = try await interactions.counts(["rec-1"], machineID: "fickle")[0]
            #expect(afterLikes.likes + afterLikes.dislikes == 41)
            #expect(afterLikes.mine != nil)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for device in 0..<15 {
                    group.addTask {
                        _ = try await interactions.setReaction(.dislike, record: "rec-1", machineID: "d\(device)")
                    }
                }
                for device in 15..<25 {
                    group.addTask {
                        _ = try await interactions.removeReaction(record: "rec-1", machineID: "d\(device)")
                    }
                }
                try await group.waitForAll()
            }
            let counts = try await interactions.counts(["rec-1", "rec-2"], machineID: "d0")
            let fickleLikes = afterLikes.mine == .like ? 1 : 0
            #expect(counts[0].likes == 15 + fickleLikes && counts[0].dislikes == 15 + (1 - fickleLikes))
            #expect(counts[0].mine == .dislike)
            #expect(counts[1] == ReactionCounts(recordID: "rec-2"))
            #expect(try await countRows("reactions", in: harness.database) == 31)
            #expect(
                await serviceErrorCode {
                    _ = try await interactions.setReaction(.like, record: "nope", machineID: "d1")
                }
                    == "record_not_found")
        }
    }

    @Test("hostile comments are stored and returned exactly as written", arguments: StorageBackend.available)
    func hostileComments(_ backend: StorageBackend) async throws {
        try await InteractionHarness.with(backend) { harness in
            let hostile = [
                "<script>alert('x')</script>", "'; DROP TABLE comments; --", "Robert'); DELETE FROM reactions;--",
                "  padded\nwith lines\tand tabs  ", "emoji 👩‍💻 and 中文", String(repeating: "x", count: 2000),
            ]
            for text in hostile {
                let comment = try await harness.interactions.addComment(
                    record: "rec-1", content: text, authorName: "<b>bold</b>", actor: Participant(ip: "203.0.113.9"))
                #expect(comment.content == text)
            }
            var seen: [String] = []
            var cursor = ""
            repeat {
                let page = try await harness.interactions.comments(record: "rec-1", cursor: cursor, limit: 4)
                seen += page.comments.map(\.content)
                #expect(page.comments.allSatisfy { $0.authorName == "<b>bold</b>" && $0.ip == "203.0.113.9" })
                cursor = page.next
            } while !cursor.isEmpty
            #expect(seen == hostile.reversed())
            #expect(try await countRows("reactions", in: harness.database) == 0)
            #expect(try await harness.interactions.counts(["rec-1"], machineID: nil)[0].comments == hostile.count)
        }
    }

    @Test("bad comments, flags and deletions are refused with a clear code", arguments: StorageBackend.available)
    func badInput(_ backend: StorageBackend) async throws {
        try await InteractionHarness.with(backend) { harness in
            let interactions = harness.interactions
            func add(_ text: String, _ actor: Participant = Participant()) async -> String? {
                await serviceErrorCode {
                    _ = try await interactions.addComment(record: "rec-1", content: text, authorName: "", actor: actor)
                }
            }
            #expect(await add("") == "empty_comment")
            #expect(await add(" \n\t ") == "empty_comment")
            #expect(await add(String(repeating: "y", count: 2001)) == "comment_too_long")
            #expect(await add("bell \u{07}") == "invalid_characters")
            #expect(await add("spoof \u{202E}gnp.exe") == "invalid_characters")
            #expect(
                await serviceErrorCode {
                    _ = try await interactions.addComment(
                        record: "gone", content: "hi", authorName: "", actor: Participant())
                } == "record_not_found")
            #expect(try await countRows("comments", in: harness.database) == 0)

            let mine = try await interactions.addComment(
                record: "rec-1", content: "mine", authorName: "me", actor: Participant(machineID: "author"))
            let anonymous = try await interactions.addComment(
                record: "rec-1", content: "anon", authorName: "", actor: Participant())
            #expect(anonymous.authorName == "anonymous")
            #expect(
                await serviceErrorCode {
                    _ = try await interactions.deleteComment(mine.commentID, actor: Participant(machineID: "other"))
                } == "not_comment_author")
            #expect(
                await serviceErrorCode {
                    _ = try await interactions.deleteComment(
                        anonymous.commentID, actor: Participant(machineID: "author"))
                } == "not_comment_author")
            #expect(
                try await interactions.deleteComment(mine.commentID, actor: Participant(machineID: "author")).deletedAt
                    != nil
            )
            #expect(
                try await interactions.deleteComment(anonymous.commentID, actor: Participant(isOperator: true))
                    .deletedAt
                    != nil)
            #expect(try await interactions.comments(record: "rec-1", cursor: "", limit: 10).comments.isEmpty)
            #expect(try await interactions.counts(["rec-1"], machineID: nil)[0].comments == 0)

            #expect(
                await serviceErrorCode {
                    _ = try await interactions.flag(.record, id: "rec-1", reason: " ", actor: Participant())
                } == "invalid_reason")
            #expect(
                await serviceErrorCode {
                    _ = try await interactions.flag(.comment, id: mine.commentID, reason: "spam", actor: Participant())
                } == "comment_not_found")
            let flag = try await interactions.flag(
                .record, id: "rec-2", reason: "impossible tps", actor: Participant(ip: "198.51.100.1"))
            #expect(try await interactions.flags(cursor: "", limit: 10, includeResolved: false).flags == [flag])
            #expect(
                await serviceErrorCode { _ = try await interactions.comments(record: "rec-1", cursor: "%%", limit: 10) }
                    == "invalid_cursor")
            #expect(
                await serviceErrorCode { _ = try await interactions.comments(record: "rec-1", cursor: "", limit: 500) }
                    == "invalid_limit")
        }
    }

    @Test(
        "owners are notified once per source, numbered without gaps, and can mark them read",
        arguments: StorageBackend.available)
    func notifications(_ backend: StorageBackend) async throws {
        try await InteractionHarness.with(backend) { harness in
            let interactions = harness.interactions
            _ = try await interactions.addComment(
                record: "rec-1", content: "nice run", authorName: "fan", actor: Participant(machineID: "fan"))
            _ = try await interactions.addComment(
                record: "rec-1", content: "thanks", authorName: "me", actor: Participant(machineID: "owner"))
            _ = try await interactions.setReaction(.like, record: "rec-1", machineID: "fan")
            _ = try await interactions.setReaction(.dislike, record: "rec-1", machineID: "fan")  // same source: once
            _ = try await interactions.setReaction(.like, record: "rec-2", machineID: "owner")  // own record: none
            for _ in 0..<2 {  // two replicas hearing the same board event
                try await interactions.rankChanged(
                    board: "v:v1", sequence: 7, recordID: "rec-2", oldRank: 3, newRank: 2)
            }
            try await interactions.rankChanged(board: "v:v1", sequence: 8, recordID: "unknown", oldRank: 1, newRank: 2)
            let all = try await interactions.notifications(for: "owner", since: 0, limit: 50, unreadOnly: false)
            #expect(all.notifications.map(\.sequence) == [1, 2, 3] && all.latest == 3)
            #expect(all.notifications.map(\.kind) == [.comment, .reaction, .rankChange])
            #expect(all.notifications[2].summary == "Your record moved from #3 to #2.")
            #expect(
                try await interactions.notifications(for: "owner", since: 2, limit: 50, unreadOnly: false).notifications
                    .map(\.sequence) == [3])
            #expect(try await interactions.markRead("owner", upTo: 2) == 2)
            #expect(
                try await interactions.notifications(for: "owner", since: 0, limit: 50, unreadOnly: true).notifications
                    .map(\.sequence) == [3])
            #expect(
                try await interactions.notifications(for: "fan", since: 0, limit: 50, unreadOnly: false).notifications
                    .isEmpty)
        }
    }

    @Test("retention drops old notifications and resolved flags; open flags stay", arguments: StorageBackend.available)
    func retention(_ backend: StorageBackend) async throws {
        let clock = ManualWallClock(microsecondsSinceEpoch: 1_800_000_000_000_000)
        try await InteractionHarness.with(backend, clock: clock) { harness in
            let interactions = harness.interactions
            let retention = InteractionRetention()
            let fan = Participant(machineID: "fan")
            _ = try await interactions.addComment(record: "rec-1", content: "nice", authorName: "fan", actor: fan)
            let resolved = try await interactions.flag(.record, id: "rec-1", reason: "spam", actor: fan)
            _ = try await interactions.resolve(flag: resolved.flagID, resolution: "dismissed", note: "spam confirmed")
            let open = try await interactions.flag(.record, id: "rec-2", reason: "spam", actor: fan)
            #expect(try await interactions.housekeeping(retention).values.reduce(0, +) == 0)

            clock.advance(by: .seconds(91 * 86_400))
            _ = try await interactions.setReaction(.like, record: "rec-1", machineID: "fan")  // a fresh notification
            #expect(try await interactions.housekeeping(retention) == ["notifications": 1, "resolved_flags": 0])
            let left = try await interactions.notifications(for: "owner", since: 0, limit: 50, unreadOnly: false)
            // Numbering goes on after the purge: the new one is the second ever.
            #expect(left.notifications.map(\.sequence) == [2])

            clock.advance(by: .seconds(275 * 86_400))
            #expect(try await interactions.housekeeping(retention)["resolved_flags"] == 1)
            let flags = try await interactions.flags(cursor: "", limit: 50, includeResolved: true).flags
            #expect(flags.map(\.flagID) == [open.flagID])
            // With every window off, nothing goes.
            #expect(
                try await interactions.housekeeping(InteractionRetention(notifications: nil, resolvedFlags: nil))
                    .isEmpty)
        }
    }
}
