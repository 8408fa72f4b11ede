import Foundation
import GRPCCore
import HTTPTypes
import LeaderboardAPI
import Logging
import NIOCore
import NIOWebSocket
import ServiceKit
import SwiftProtobuf
import Synchronization

/// One upstream `WatchLeaderboard` stream per board for the whole gateway process, fanned out to its WebSocket
/// clients. The upstream reconnects with backoff and resumes after the last sequence it forwarded, so clients see
/// no gap across a RankingService restart; it stops when the board's last client leaves.
///
/// A diff goes to every client of the board in one pass per event loop: it is encoded once, and written to each
/// connection on that connection's own event loop, each connection flushed once — no task wakes per client
/// (docs/PERFORMANCE-NOTES.md "P5"). A watcher has no task of its own: short ones send its snapshots.
final class LeaderboardHub: Sendable {
    /// An event as the clients receive it: encoded once for all of them (with thousands of clients on a board,
    /// encoding per client was most of the fan-out's work), its bytes shared by every send.
    struct Diff: Sendable {
        let sequence: UInt64
        /// The whole WebSocket frame, header and text, written to every connection as it is.
        let frame: WebSocketConnection.EncodedFrame

        init(_ event: Leaderboard_Ranking_V1_LeaderboardEvent, on board: BoardKey) {
            sequence = event.sequence
            frame = .init(text: ByteBuffer(string: LeaderboardSession.diffJSON(event, framework: board.framework)))
        }
    }

    /// A client's place on a board: its connection, what it has been sent, and whether it was dropped for reading
    /// too slowly.
    ///
    /// Diffs are held while a snapshot is on its way (at most `buffer` of them; more means the client is too slow)
    /// and released after it, skipping those the snapshot already covers; then each diff is written as it comes.
    /// Everything that writes runs on the connection's event loop, so the snapshot (written there with its release)
    /// and the diffs leave in order.
    final class Subscriber: Sendable {
        let id: Int
        let board: BoardKey
        let connection: WebSocketConnection
        let buffer: Int
        private let slow = Atomic<Bool>(false)  // set on the event loop

        private struct Delivery {
            /// The last sequence the client was sent, by a snapshot or a diff.
            var position: UInt64 = 0
            /// Diffs waiting for a snapshot to go out first (nil: none is on its way).
            var held: [Diff]? = []
        }
        private let delivery = Mutex(Delivery())  // the event loop and the session's snapshot calls

        init(id: Int, board: BoardKey, connection: WebSocketConnection, buffer: Int) {
            self.id = id
            self.board = board
            self.connection = connection
            self.buffer = buffer
        }

        var wasTooSlow: Bool { slow.load(ordering: .relaxed) }

        /// Writes `diff` to the connection unless it is held for a snapshot or already sent; on the connection's event
        /// loop. Returns whether it wrote (the caller flushes). A connection whose unsent bytes pass its write buffer's
        /// high mark, or with `buffer` diffs held, is too slow: it is closed with 4408.
        func deliver(_ diff: Diff) -> Bool {
            guard !wasTooSlow else { return false }
            enum Step { case write, skip, drop }
            let step = delivery.withLock { delivery -> Step in
                if delivery.held != nil {
                    guard delivery.held?.count ?? 0 < buffer else { return .drop }
                    delivery.held?.append(diff)
                    return .skip
                }
                guard diff.sequence > delivery.position else { return .skip }
                guard connection.isWritable else { return .drop }
                delivery.position = diff.sequence
                return .write
            }
            switch step {
            case .write:
                return connection.writeOnLoop(diff.frame)
            case .skip:
                return false
            case .drop:
                slow.store(true, ordering: .relaxed)
                connection.closeOnLoop(CloseCode.tooSlow, reason: "slow_consumer")
                return false
            }
        }

        /// Holds diffs from now until ``releaseOnLoop(after:)``: a snapshot is about to be read and sent.
        func hold() {
            connection.eventLoop.execute { self.delivery.withLock { $0.held = $0.held ?? [] } }
        }

        /// The snapshot up to `position` has been written to the connection (on its event loop): writes the held
        /// diffs after it, and every later diff as it comes.
        func releaseOnLoop(after position: UInt64) {
            let held = delivery.withLock { delivery -> [Diff] in
                delivery.position = max(delivery.position, position)
                defer { delivery.held = nil }
                return delivery.held ?? []
            }
            var wrote = false
            for diff in held where deliver(diff) { wrote = true }
            if wrote { connection.flushOnLoop() }
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

    /// A board's connections on one event loop, in an array a fan-out shares without copying (it is changed in
    /// place by joins and leaves, copied only if one comes while a fan-out still holds it).
    struct LoopGroup {
        let loop: any EventLoop
        private(set) var subscribers: [Subscriber] = []
        private var positions: [Int: Int] = [:]  // subscriber id → index in `subscribers`

        init(loop: any EventLoop) { self.loop = loop }

        var isEmpty: Bool { subscribers.isEmpty }

        mutating func add(_ subscriber: Subscriber) {
            positions[subscriber.id] = subscribers.count
            subscribers.append(subscriber)
        }

        /// Removes by swapping the last one into its place; whether it was there.
        mutating func remove(_ subscriber: Subscriber) -> Bool {
            guard let position = positions.removeValue(forKey: subscriber.id) else { return false }
            let last = subscribers.removeLast()
            if last.id != subscriber.id {
                subscribers[position] = last
                positions[last.id] = position
            }
            return true
        }
    }

    private struct Board {
        var loops: [ObjectIdentifier: LoopGroup] = [:]
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
    /// Longest a read for a joining watcher may take (the gateway's request timeout): a watcher is answered with a
    /// snapshot or closed, never left waiting.
    let readTimeout: Duration
    /// Snapshots of a board's top N, shared by the watchers asking at once (``SharedReads``).
    private let snapshots: SharedReads<SnapshotKey, Snapshot>

    /// A snapshot as its watchers receive it: its whole frame, encoded once for all of them, and the sequence it
    /// shows the board at.
    struct Snapshot: Sendable {
        let frame: WebSocketConnection.EncodedFrame
        let sequence: UInt64
    }

    struct SnapshotKey: Hashable, Sendable {
        let board: BoardKey
        let limit: Int
    }

    init(
        ranking: RankingClient, logger: Logger, buffer: Int = 256, maximumBoards: Int = 512,
        readTimeout: Duration = .seconds(15)
    ) {
        self.maximumBoards = maximumBoards
        self.ranking = ranking
        self.logger = logger
        self.buffer = buffer
        self.readTimeout = readTimeout
        snapshots = SharedReads { key in
            try await RequestDeadline.$current.withValue(.now + readTimeout) {
                try await LeaderboardSession.snapshot(key.board, limit: key.limit, ranking: ranking)
            }
        }
    }

    /// The board's top `limit` as of a moment after this call began: a watcher that joined the board's fan-out
    /// first gets every diff after it. Watchers asking at once share one read.
    func snapshot(of board: BoardKey, limit: Int) async throws -> Snapshot {
        try await snapshots.value(of: SnapshotKey(board: board, limit: limit))
    }

    /// Joins a board's fan-out. A board's upstream starts after the board's current sequence, read before the
    /// client joins; a snapshot the client reads after joining is therefore at or past every event it missed.
    ///
    /// Only boards that exist are followed (a framework board needs a record), and at most ``maximumBoards`` at
    /// once: each followed board holds an upstream watch, which invented framework names must not multiply.
    func subscribe(_ board: BoardKey, connection: WebSocketConnection) async throws -> Subscriber {
        if let joined = joinFollowed(board, connection: connection) { return joined }
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
        return join(board, connection: connection, startingAfter: first.sequence)
    }

    /// Registers a subscriber if the board is followed already.
    private func joinFollowed(_ board: BoardKey, connection: WebSocketConnection) -> Subscriber? {
        state.withLock { state in
            guard state.boards[board]?.upstream != nil else { return nil }
            return Self.register(board, connection: connection, in: &state, buffer: buffer)
        }
    }

    /// Registers a subscriber, starting to follow the board after `position` unless someone else already does.
    private func join(_ board: BoardKey, connection: WebSocketConnection, startingAfter position: UInt64) -> Subscriber
    {
        state.withLock { state in
            if state.boards[board]?.upstream == nil {
                // Detached: the watch is the board's, not the joining client's — it must not inherit that client's
                // deadline (the watch would end when the join's time is up, and every retry fail at once) or its
                // request id.
                state.boards[board, default: Board(clients: board.clients)].upstream = Task.detached {
                    await self.follow(board, after: position)
                }
            }
            return Self.register(board, connection: connection, in: &state, buffer: buffer)
        }
    }

    private static func register(_ board: BoardKey, connection: WebSocketConnection, in state: inout State, buffer: Int)
        -> Subscriber
    {
        let subscriber = Subscriber(id: state.nextID, board: board, connection: connection, buffer: buffer)
        state.nextID += 1
        let loop = ObjectIdentifier(connection.eventLoop)
        state.boards[board]?.loops[loop, default: LoopGroup(loop: connection.eventLoop)].add(subscriber)
        state.boards[board]?.clients.increment()
        return subscriber
    }

    func unsubscribe(_ subscriber: Subscriber) {
        let upstream = state.withLock { state -> Task<Void, Never>? in
            let loop = ObjectIdentifier(subscriber.connection.eventLoop)
            if state.boards[subscriber.board]?.loops[loop]?.remove(subscriber) == true {
                state.boards[subscriber.board]?.clients.decrement()
                if state.boards[subscriber.board]?.loops[loop]?.isEmpty == true {
                    state.boards[subscriber.board]?.loops[loop] = nil
                }
            }
            guard state.boards[subscriber.board]?.loops.isEmpty == true else { return nil }
            defer { state.boards[subscriber.board] = nil }
            return state.boards[subscriber.board]?.upstream
        }
        upstream?.cancel()
    }

    var boardCount: Int { state.withLock { $0.boards.count } }

    private func fanOut(_ board: BoardKey, _ event: Leaderboard_Ranking_V1_LeaderboardEvent) {
        let groups = state.withLock { Array(($0.boards[board]?.loops ?? [:]).values) }
        guard !groups.isEmpty else { return }
        Self.deliver(Diff(event, on: board), to: groups)
    }

    /// One pass per event loop writes `diff` to that loop's connections, flushing each connection it wrote to.
    static func deliver(_ diff: Diff, to groups: [LoopGroup]) {
        for group in groups {
            let subscribers = group.subscribers
            group.loop.execute {
                for subscriber in subscribers where subscriber.deliver(diff) { subscriber.connection.flushOnLoop() }
            }
        }
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
