import LeaderboardAPI
import SwiftProtobuf
import Testing

@testable import Gateway

@Suite("Leaderboard hub")
struct LeaderboardHubTests {
    @Test("a client that falls a full queue behind is dropped, keeping what it had queued")
    func slowConsumer() async {
        let subscriber = LeaderboardHub.Subscriber(
            id: 0, board: .init(version: "v1", framework: ""), buffer: 2)
        for sequence in 1...2 {
            subscriber.offer(.event(.init(.with { $0.sequence = UInt64(sequence) }, on: subscriber.board)))
        }
        #expect(!subscriber.wasTooSlow)
        subscriber.offer(.event(.init(.with { $0.sequence = 3 }, on: subscriber.board)))
        #expect(subscriber.wasTooSlow)
        var delivered: [UInt64] = []
        for await message in subscriber.stream {
            if case .event(let event) = message { delivered.append(event.sequence) }
        }
        #expect(delivered == [1, 2])  // the stream ended instead of growing
    }
}
