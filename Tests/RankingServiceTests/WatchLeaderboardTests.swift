import Foundation
import GRPCCore
import GRPCInProcessTransport
import LeaderboardAPI
import ServiceKit
import SwiftProtobuf
import Synchronization
import TestSupport
import Testing

@testable import RankingService

/// Events seen so far, per watcher.
final class WatchProgress: Sendable {
    let seen = Mutex<[Int: Int]>([:])  // written by the watchers' tasks, read by the test
}

// Three minutes: under a full parallel run (browsers, fuzzing, schemathesis) on two cores a minute was not enough.
@Suite("WatchLeaderboard over gRPC", .timeLimit(.minutes(3)))
struct WatchLeaderboardTests {
    /// What a watcher saw, as comparable text.
    static func describe(_ event: Leaderboard_Ranking_V1_LeaderboardEvent) -> String {
        switch event.event {
        case .recordAccepted(let record): "\(event.sequence) accepted \(record.recordID) #\(record.rank)"
        case .rankChanged(let change): "\(event.sequence) moved \(change.recordID) \(change.oldRank)→\(change.newRank)"
        case .recordRemoved(let id): "\(event.sequence) removed \(id)"
        case nil: "\(event.sequence) empty"
        }
    }

    @Test(
        "two watchers see the same ordered events, from storage and then live, and a late one resumes after a sequence number",
        arguments: StorageBackend.available)
    func watch(_ backend: StorageBackend) async throws {
        try await RankingHarness.with(backend) { harness in
            let service = RankingRPCService(
                ranking: harness.ranking, events: harness.ranking.events, watchPoll: .milliseconds(200))
            let transport = InProcessTransport()
            let server = GRPCServer(transport: transport.server, services: [service])
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { try await server.serve() }
                try await withGRPCClient(transport: transport.client) { grpc in
                    let client = Leaderboard_Ranking_V1_RankingService.Client(wrapping: grpc)
                    let progress = WatchProgress()
                    func watcher(_ name: Int, after: UInt64?, count: Int) -> Task<[String], any Error> {
                        Task {
                            try await client.watchLeaderboard(
                                .with { if let after { $0.afterSequence = after } }
                            ) { response in
                                var seen: [String] = []
                                for try await event in response.messages {
                                    #expect(event.datasetVersion == "v1")
                                    seen.append(Self.describe(event))
                                    progress.seen.withLock { $0[name] = seen.count }
                                    if seen.count == count { break }
                                }
                                return seen
                            }
                        }
                    }
                    // From sequence 0, so whenever the watch begins nothing is missed; once both have seen the
                    // first event they are subscribed, and the rest reach them live.
                    let first = watcher(1, after: 0, count: 5)
                    let second = watcher(2, after: 0, count: 5)
                    var ids: [String] = []
                    for (machine, tps) in [("a", 100.0), ("b", 200.0), ("c", 150.0)] {
                        ids.append(
                            try #require(try await harness.run(try await harness.start(machine), tps: tps).recordID))
                        if ids.count == 1 {
                            #expect(
                                try await eventually(within: .seconds(20)) {
                                    progress.seen.withLock { $0[1] == 1 && $0[2] == 1 }
                                })
                        }
                    }
                    let expected = [
                        "1 accepted \(ids[0]) #1", "2 accepted \(ids[1]) #1", "3 moved \(ids[0]) 1→2",
                        "4 accepted \(ids[2]) #2", "5 moved \(ids[0]) 2→3",
                    ]
                    // A watcher that misses an event would wait for it forever: it is stopped, and the values say
                    // what it saw.
                    let complete = try await eventually(within: .seconds(60)) {
                        progress.seen.withLock { $0[1] == 5 && $0[2] == 5 }
                    }
                    #expect(complete, "watchers saw \(progress.seen.withLock { $0 })")
                    if !complete {
                        first.cancel()
                        second.cancel()
                    }
                    #expect(try await first.value == expected)
                    #expect(try await second.value == expected)
                    // A watcher that reconnects after sequence 3 gets exactly the rest.
                    #expect(try await watcher(3, after: 3, count: 2).value == Array(expected.suffix(2)))
                }
                server.beginGracefulShutdown()
            }
        }
    }
}
