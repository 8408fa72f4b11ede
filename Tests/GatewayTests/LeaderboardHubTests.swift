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

    /// A session that does nothing: the hub's side of a connection is under test.
    final class Idle: WebSocketSession {
        func opened(_ connection: WebSocketConnection) {}
        func received(_ text: String, on connection: WebSocketConnection) {}
        func closed() {}
    }

    /// A subscriber on an open connection of an embedded channel.
    static func subscriber(id: Int, buffer: Int) async throws -> (LeaderboardHub.Subscriber, EmbeddedChannel) {
        let channel = EmbeddedChannel()
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).get()
        let connection = WebSocketConnection(channel: channel, session: Idle())
        try channel.pipeline.syncOperations.addHandler(connection)
        let subscriber = LeaderboardHub.Subscriber(
            id: id, board: .init(version: "v1", framework: ""), connection: connection, buffer: buffer)
        return (subscriber, channel)
    }

    /// The sequences of the diff frames written to `channel` (a close frame as 0).
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
        let (subscriber, channel) = try await Self.subscriber(id: 0, buffer: 8)
        let board = subscriber.board
        for sequence in UInt64(1)...3 { #expect(!subscriber.deliver(Self.diff(sequence, on: board))) }
        #expect(try Self.written(channel).isEmpty)  // held: the snapshot is not out yet
        subscriber.releaseOnLoop(after: 2)  // the snapshot covered 1 and 2
        #expect(try Self.written(channel) == [3])
        var group = LeaderboardHub.LoopGroup(loop: channel.eventLoop)
        group.add(subscriber)
        LeaderboardHub.deliver(Self.diff(4, on: board), to: [group])
        LeaderboardHub.deliver(Self.diff(4, on: board), to: [group])
        channel.embeddedEventLoop.run()
        #expect(try Self.written(channel) == [4])
        // A fresh snapshot up to 6: 5 and 6 held meanwhile are covered by it, 7 is not.
        subscriber.hold()
        channel.embeddedEventLoop.run()
        for sequence in UInt64(5)...7 { _ = subscriber.deliver(Self.diff(sequence, on: board)) }
        subscriber.releaseOnLoop(after: 6)
        #expect(try Self.written(channel) == [7])
        #expect(!subscriber.wasTooSlow)
    }

    @Test("a client with a full hold, or with a connection past its write buffer, is closed with 4408")
    func slowConsumer() async throws {
        let (held, heldChannel) = try await Self.subscriber(id: 0, buffer: 2)
        for sequence in 1...2 { _ = held.deliver(Self.diff(UInt64(sequence), on: held.board)) }
        #expect(!held.wasTooSlow)
        _ = held.deliver(Self.diff(3, on: held.board))
        #expect(held.wasTooSlow)
        #expect(try Self.closeCode(heldChannel) == 4408)

        let (behind, channel) = try await Self.subscriber(id: 1, buffer: 8)
        behind.releaseOnLoop(after: 0)
        #expect(behind.deliver(Self.diff(1, on: behind.board)))
        channel.flush()
        #expect(try Self.written(channel) == [1])
        channel.isWritable = false
        #expect(!behind.deliver(Self.diff(2, on: behind.board)))
        #expect(behind.wasTooSlow)
        #expect(!behind.deliver(Self.diff(3, on: behind.board)))
        #expect(try Self.closeCode(channel) == 4408)
        #expect(try Self.written(channel).isEmpty)  // nothing after the close frame
    }

    @Test("a loop's group keeps every subscriber once through joins and leaves in any order")
    func loopGroup() async throws {
        var group = LeaderboardHub.LoopGroup(loop: EmbeddedEventLoop())
        var subscribers: [LeaderboardHub.Subscriber] = []
        for id in 0..<6 { subscribers.append(try await Self.subscriber(id: id, buffer: 1).0) }
        for subscriber in subscribers { group.add(subscriber) }
        var removed: [Bool] = []
        for id in [1, 1, 5, 0] { removed.append(group.remove(subscribers[id])) }  // 5 is the last one
        #expect(removed == [true, false, true, true])
        #expect(Set(group.subscribers.map(\.id)) == [2, 3, 4])
        removed = []
        for id in [3, 2, 4] { removed.append(group.remove(subscribers[id])) }
        #expect(removed == [true, true, true])
        #expect(group.isEmpty)
    }

    /// The code of the close frame written next to `channel`.
    static func closeCode(_ channel: EmbeddedChannel) throws -> Int? {
        var frame = try channel.readOutbound(as: WebSocketFrame.self)
        guard frame?.opcode == .connectionClose else { return nil }
        guard case .unknown(let code)? = frame?.data.readWebSocketErrorCode() else { return nil }
        return Int(code)
    }
}
