import Foundation
import GRPCCore
import HTTPTypes
import LeaderboardAPI
import Logging
import NIOCore
import ServiceKit
import SwiftProtobuf
import Synchronization

/// One upstream `WatchLeaderboard` stream per board for the whole gateway process, fanned out to its WebSocket
/// clients. The upstream reconnects with backoff and resumes after the last sequence it forwarded, so clients see
/// no gap across a RankingService restart; it stops when the board's last client leaves.
final class LeaderboardHub: Sendable {
    /// What a client's stream carries.
    enum Message: Sendable {
        case event(Diff)
        /// The client asked for a fresh snapshot.
        case resnapshot
    }

    /// An event as the clients receive it: encoded once for all of them (with thousands of clients on a board,
    /// encoding per client was most of the fan-out's work), its bytes shared by every send.
    struct Diff: Sendable {
        let sequence: UInt64
        let frame: ByteBuffer

        init(_ event: Leaderboard_Ranking_V1_LeaderboardEvent, on board: BoardKey) {
            sequence = event.sequence
            frame = ByteBuffer(string: WebSocketSessions.diffJSON(event, framework: board.framework))
        }
    }

    /// A client's place on a board: its stream and whether it was dropped for reading too slowly.
    final class Subscriber: Sendable {
        let id: Int
        let board: BoardKey
        let stream: AsyncStream<Message>
        let continuation: AsyncStream<Message>.Continuation
        private let slow = Mutex(false)  // set by the fan-out, read by the client's handler
        private let snapshotPending = Mutex(false)  // set by the client's reader, cleared by its writer

        init(id: Int, board: BoardKey, buffer: Int) {
            self.id = id
            self.board = board
            (stream, continuation) = AsyncStream<Message>.makeStream(bufferingPolicy: .bufferingOldest(buffer))
        }

        var wasTooSlow: Bool { slow.withLock { $0 } }

        /// Asks for a fresh snapshot; asks made while one is already queued are the same ask.
        func requestSnapshot() {
            let queued = snapshotPending.withLock { pending in
                defer { pending = true }
                return pending
            }
            if !queued { offer(.resnapshot) }
        }

        /// The queued snapshot is being sent: the next ask queues another.
        func snapshotTaken() { snapshotPending.withLock { $0 = false } }

        /// Queues a message; a full queue means the client is not keeping up: it is dropped.
        func offer(_ message: Message) {
            if case .dropped = continuation.yield(message) {
                slow.withLock { $0 = true }
                continuation.finish()
            }
        }
    }

    struct BoardKey: Hashable, Sendable {
        var version: String
        var framework: String

        /// `leaderboard_websocket_clients` of this board (a gateway follows at most ``maximumBoards``).
        var clients: MetricGauge {
            MetricFamilies.webSocketClients.gauge(framework.isEmpty ? version : "\(version)/\(framework)")
        }
    }

    private struct Board {
        var subscribers: [Int: Subscriber] = [:]
        var upstream: Task<Void, Never>?
        /// Made once per followed board, not looked up in the registry on every join and leave.
        let clients: MetricGauge
    }

    private struct State {
        var nextID = 0
        var boards: [BoardKey: Board] = [:]
    }

    let ranking: RankingClient
    let logger: Logger
    /// Messages a client may have queued before it counts as too slow.
    let buffer: Int
    private let state = Mutex(State())  // every WebSocket handler and upstream task

    /// Most boards followed at once.
    let maximumBoards: Int

    init(ranking: RankingClient, logger: Logger, buffer: Int = 256, maximumBoards: Int = 512) {
        self.maximumBoards = maximumBoards
        self.ranking = ranking
        self.logger = logger
        self.buffer = buffer
    }

    /// Joins a board's fan-out. A board's upstream starts after the board's current sequence, read before the
    /// client joins; a snapshot the client reads after joining is therefore at or past every event it missed.
    ///
    /// Only boards that exist are followed (a framework board needs a record), and at most ``maximumBoards`` at
    /// once: each followed board holds an upstream watch, which invented framework names must not multiply.
    func subscribe(_ board: BoardKey) async throws -> Subscriber {
        if let joined = joinFollowed(board) { return joined }
        guard boardCount < maximumBoards else {
            throw Problem(
                .serviceUnavailable, code: "too_many_boards", detail: "This gateway follows as many boards as it may.")
        }
        let first = try await ranking.listRecords(
            .with {
                $0.filter.datasetVersion = board.version
                $0.filter.framework = board.framework
                $0.page.limit = 1
            })
        if !board.framework.isEmpty, first.records.isEmpty {
            throw Problem(
                .notFound, code: "unknown_board", detail: "No record of this framework is on the board yet.")
        }
        return join(board, startingAfter: first.sequence)
    }

    /// Registers a subscriber if the board is followed already.
    private func joinFollowed(_ board: BoardKey) -> Subscriber? {
        state.withLock { state in
            guard state.boards[board]?.upstream != nil else { return nil }
            return Self.register(board, in: &state, buffer: buffer)
        }
    }

    /// Registers a subscriber, starting to follow the board after `position` unless someone else already does.
    private func join(_ board: BoardKey, startingAfter position: UInt64) -> Subscriber {
        state.withLock { state in
            if state.boards[board]?.upstream == nil {
                state.boards[board, default: Board(clients: board.clients)].upstream = Task {
                    await self.follow(board, after: position)
                }
            }
            return Self.register(board, in: &state, buffer: buffer)
        }
    }

    private static func register(_ board: BoardKey, in state: inout State, buffer: Int) -> Subscriber {
        let subscriber = Subscriber(id: state.nextID, board: board, buffer: buffer)
        state.nextID += 1
        state.boards[board]?.subscribers[subscriber.id] = subscriber
        state.boards[board]?.clients.increment()
        return subscriber
    }

    func unsubscribe(_ subscriber: Subscriber) {
        let upstream = state.withLock { state -> Task<Void, Never>? in
            if state.boards[subscriber.board]?.subscribers.removeValue(forKey: subscriber.id) != nil {
                state.boards[subscriber.board]?.clients.decrement()
            }
            guard state.boards[subscriber.board]?.subscribers.isEmpty == true else { return nil }
            defer { state.boards[subscriber.board] = nil }
            return state.boards[subscriber.board]?.upstream
        }
        subscriber.continuation.finish()
        upstream?.cancel()
    }

    var boardCount: Int { state.withLock { $0.boards.count } }

    private func fanOut(_ board: BoardKey, _ event: Leaderboard_Ranking_V1_LeaderboardEvent) {
        let subscribers = state.withLock { Array(($0.boards[board]?.subscribers ?? [:]).values) }
        guard !subscribers.isEmpty else { return }
        let diff = Diff(event, on: board)
        for subscriber in subscribers { subscriber.offer(.event(diff)) }
    }

    /// Follows a board from `after` for as long as it has clients (``Progress/resume(logger:_:metadata:stop:_:)``).
    private func follow(_ board: BoardKey, after start: UInt64) async {
        await Progress(start).resume(
            logger: logger, "leaderboard watch interrupted; reconnecting",
            metadata: ["board": "\(board.version)/\(board.framework)"]
        ) { position, progress in
            try await ranking.watchLeaderboard(
                .with {
                    $0.datasetVersion = board.version
                    $0.framework = board.framework
                    $0.afterSequence = position
                }
            ) { response in
                for try await event in response.messages {
                    progress.advance(to: event.sequence)
                    self.fanOut(board, event)
                }
            }
        }
    }
}

/// How far a watch got: the last sequence seen, and whether it moved since last asked.
final class Progress: Sendable {
    private let state: Mutex<(position: UInt64, advanced: Bool)>  // the watch task and its reconnect loop

    init(_ position: UInt64) { state = Mutex((position, false)) }

    var position: UInt64 { state.withLock { $0.position } }

    func advance(to position: UInt64) { state.withLock { $0 = (position, true) } }

    func takeAdvanced() -> Bool {
        state.withLock { state in
            defer { state.advanced = false }
            return state.advanced
        }
    }

    /// Runs a watch from the current position, and again whenever it ends or fails, until the task is cancelled or
    /// `stop` says so: 0.1 s between attempts, doubling to 5 s, back to 0.1 s once an attempt made progress.
    func resume(
        logger: Logger, _ message: Logger.Message, metadata: Logger.Metadata = [:],
        stop: () -> Bool = { false }, _ watch: (_ position: UInt64, _ progress: Progress) async throws -> Void
    ) async {
        var backoff = Duration.milliseconds(100)
        while !Task.isCancelled, !stop() {
            do {
                try await watch(position, self)
            } catch {
                if Task.isCancelled { return }
                logger.warning(message, metadata: metadata.merging(["error": "\(error)"]) { $1 })
            }
            if stop() { return }
            if takeAdvanced() { backoff = .milliseconds(100) }
            try? await Task.sleep(for: backoff)
            backoff = min(backoff * 2, .seconds(5))
        }
    }
}
