import LeaderboardAPI
import NIOCore
import NIOEmbedded
import NIOWebSocket
import SwiftProtobuf
import Testing

@testable import Gateway

@Suite("Leaderboard hub")
struct LeaderboardHubTests {
    static func diff(_ sequence: UInt64, on board: LeaderboardHub.BoardKey) -> LeaderboardHub.Diff {
        .init(.with { $0.sequence = sequence }, on: board)
    }

    /// The sequences of the diff frames written to `channel`.
    static func written(_ channel: EmbeddedChannel) throws -> [UInt64] {
        var sequences: [UInt64] = []
        while let frame = try channel.readOutbound(as: WebSocketFrame.self) {
            let text = String(buffer: frame.data)
            let digits = text.split(separator: "\"sequence\":").last?.prefix { $0.isNumber } ?? ""
            sequences.append(UInt64(digits) ?? 0)
        }
        return sequences
    }

    @Test("diffs wait for the snapshot, skip what it covers, then flow in order; a late duplicate is not sent again")
    func ordering() async throws {
        let channel = EmbeddedChannel()
        let subscriber = LeaderboardHub.Subscriber(
            id: 0, board: .init(version: "v1", framework: ""), channel: channel, buffer: 8)
        let board = subscriber.board
        for sequence in UInt64(1)...3 { #expect(!subscriber.deliver(Self.diff(sequence, on: board))) }
        #expect(try Self.written(channel).isEmpty)  // held: the snapshot is not out yet
        subscriber.release(after: 2)  // the snapshot covered 1 and 2
        channel.embeddedEventLoop.run()
        #expect(try Self.written(channel) == [3])
        LeaderboardHub.deliver(Self.diff(4, on: board), to: [subscriber])
        LeaderboardHub.deliver(Self.diff(4, on: board), to: [subscriber])
        channel.embeddedEventLoop.run()
        #expect(try Self.written(channel) == [4])
        // A fresh snapshot up to 6: 5 and 6 held meanwhile are covered by it, 7 is not.
        subscriber.hold()
        channel.embeddedEventLoop.run()
        for sequence in UInt64(5)...7 { _ = subscriber.deliver(Self.diff(sequence, on: board)) }
        subscriber.release(after: 6)
        channel.embeddedEventLoop.run()
        #expect(try Self.written(channel) == [7])
        #expect(!subscriber.wasTooSlow)
    }

    @Test("a client with a full hold, or with a connection past its write buffer, is dropped and its session told")
    func slowConsumer() async throws {
        let held = LeaderboardHub.Subscriber(
            id: 0, board: .init(version: "v1", framework: ""), channel: EmbeddedChannel(), buffer: 2)
        for sequence in 1...2 { _ = held.deliver(Self.diff(UInt64(sequence), on: held.board)) }
        #expect(!held.wasTooSlow)
        _ = held.deliver(Self.diff(3, on: held.board))
        #expect(held.wasTooSlow)
        for await _ in held.snapshotRequests {}  // the session's wait ended

        let channel = EmbeddedChannel()
        let behind = LeaderboardHub.Subscriber(
            id: 1, board: .init(version: "v1", framework: ""), channel: channel, buffer: 8)
        behind.release(after: 0)
        channel.embeddedEventLoop.run()
        #expect(behind.deliver(Self.diff(1, on: behind.board)))
        channel.flush()
        channel.isWritable = false
        #expect(!behind.deliver(Self.diff(2, on: behind.board)))
        #expect(behind.wasTooSlow)
        #expect(!behind.deliver(Self.diff(3, on: behind.board)))
        #expect(try Self.written(channel) == [1])
    }
}
