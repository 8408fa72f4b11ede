import Foundation
import GRPCCore
import HTTPTypes
import Hummingbird
import LeaderboardAPI
public import Logging
import NIOCore
import NIOWebSocket
import ServiceKit
import SwiftProtobuf
import Synchronization
import UntrustedInput

/// Close codes the gateway uses besides the standard ones (RFC 6455 leaves 4000–4999 to applications).
enum CloseCode {
    /// Bad parameters of the upgrade request.
    static let badRequest = WebSocketErrorCode(codeNumber: 4400)
    /// Missing or failed device signature; the reason is the problem code (e.g. `signature_mismatch`).
    static let unauthorized = WebSocketErrorCode(codeNumber: 4401)
    /// The client did not read fast enough; reconnect and resume.
    static let tooSlow = WebSocketErrorCode(codeNumber: 4408)
    /// A service behind the gateway failed; reconnect later.
    static let unavailable = WebSocketErrorCode(codeNumber: 4503)
    /// No such board (a framework without records).
    static let notFound = WebSocketErrorCode(codeNumber: 4404)

    /// The close code for a problem: 4000 plus its HTTP status for the ones clients act on, else 4503.
    static func closing(_ problem: Problem) -> WebSocketErrorCode {
        switch problem.status.code {
        case 400: badRequest
        case 401: unauthorized
        case 404: notFound
        default: unavailable
        }
    }
}

/// The gateway's WebSocket endpoints: `/api/v1/ws/leaderboard` (a snapshot of a board's top N, then its ordered
/// diffs) and `/api/v1/ws/notifications` (a device's notifications, signed at upgrade). Protocol:
/// docs/INTERACTIONS.md. Upgrades are limited per client address: past the limit the upgrade is refused with 429
/// (each connection holds a watch). Connections are served by ``GatewayHTTPChannel`` and ``WebSocketConnection``.
public struct GatewayWebSockets: Sendable {
    static let leaderboardPath = "/api/v1/ws/leaderboard"
    static let notificationsPath = "/api/v1/ws/notifications"

    /// What becomes of an upgrade request.
    enum Decision: Sendable {
        case upgrade(any WebSocketSession)
        /// Not upgraded: this answer (a problem+json document) is sent and the connection closed.
        case refuse(HTTPResponse, ByteBuffer)
    }

    let dependencies: GatewayDependencies
    let hub: LeaderboardHub?
    /// The dataset version a watcher's `dataset_version` names ("" for the latest), shared by the watchers asking
    /// at once (``SharedReads``).
    let versions: SharedReads<String, String>?
    let logger: Logger

    public init(_ dependencies: GatewayDependencies, logger: Logger) {
        self.dependencies = dependencies
        let timeout = dependencies.configuration.requestTimeout
        self.hub = dependencies.services.map {
            LeaderboardHub(ranking: $0.ranking, logger: logger, readTimeout: timeout)
        }
        self.versions = dependencies.services.map { services in
            SharedReads { requested in
                try await RequestDeadline.$current.withValue(.now + timeout) {
                    requested.isEmpty
                        ? try await services.datasets.getLatestDataset(.with { _ in }).version
                        : try await services.datasets.getDataset(.with { $0.version = requested }).version
                }
            }
        }
        self.logger = logger
    }

    func decide(_ head: HTTPRequest, channel: any Channel) async -> Decision {
        let request = Request(head: head, body: .init(buffer: ByteBuffer()))
        let requestID = RequestID.accept(head.headerFields[.requestID])
        func refuse(_ problem: Problem) -> Decision {
            let (head, body) = problem.refusedUpgrade(requestID: requestID, path: request.uri.path)
            return .refuse(head, body)
        }
        let path = request.uri.path
        guard let services = dependencies.services, let hub, let versions,
            path == Self.leaderboardPath || path == Self.notificationsPath
        else {
            return refuse(Problem(.notFound, code: "not_found", detail: "No WebSocket endpoint at this path."))
        }
        guard head.method == .get else {
            return refuse(
                Problem(.methodNotAllowed, code: "method_not_allowed", detail: "A WebSocket upgrade is a GET."))
        }
        let peer = channel.remoteAddress?.ipAddress ?? ""
        let key =
            dependencies.configuration.clientAddresses.resolve(peer: peer, fields: head.headerFields)?.limitKey
            ?? "ip:\(peer)"
        do {
            try await dependencies.rateLimiter.enforce(
                dependencies.policies.webSockets, key: key, clock: dependencies.clock,
                detail: "Too many WebSocket connections from your address; try again later.")
        } catch {
            return refuse(Problem.from(error))
        }
        if path == Self.leaderboardPath {
            return .upgrade(LeaderboardSession(request: request, hub: hub, versions: versions))
        }
        return .upgrade(
            NotificationSession(
                request: request, services: services, clock: dependencies.clock, logger: logger))
    }
}

extension WebSocketConnection {
    /// Closes with a code and reason a moment after the upgrade: a close frame that arrives in the same read as the
    /// `101` response is lost by some client libraries (NIO's upgrade handler among them), which then see no reason
    /// at all.
    func refuse(_ code: WebSocketErrorCode, _ reason: String) {
        eventLoop.scheduleTask(in: .milliseconds(100)) { self.closeOnLoop(code, reason: reason) }
    }
}

/// A watcher of a board: its snapshot, then the board's diffs written by ``LeaderboardHub`` from the event loop.
///
/// No task runs for a watcher while it watches: one starts it (parameters, the board's subscription, the first
/// snapshot) and ends; a later snapshot the client asks for runs in one more, at most one per
/// ``minimumSnapshotInterval``, asks made while one is waiting being the same ask.
final class LeaderboardSession: WebSocketSession {
    /// Most top records a snapshot carries.
    static let maximumSnapshot = 200
    /// Least time between two snapshots a client asks for on one connection.
    static let minimumSnapshotInterval: Duration = .seconds(2)

    let request: Request
    let hub: LeaderboardHub
    let versions: SharedReads<String, String>

    private struct State {
        var subscriber: LeaderboardHub.Subscriber?
        var limit = 50
        /// The task starting the watch or sending a snapshot (at most one at a time).
        var task: Task<Void, Never>?
        /// A snapshot was asked for and not yet taken.
        var asked = false
        var lastSnapshot: ContinuousClock.Instant?
        var closed = false
    }
    private let state = Mutex(State())  // the event loop's callbacks and the session's tasks

    init(request: Request, hub: LeaderboardHub, versions: SharedReads<String, String>) {
        self.request = request
        self.hub = hub
        self.versions = versions
    }

    func opened(_ connection: WebSocketConnection) {
        state.withLock { $0.task = Task { await self.start(connection) } }
    }

    func received(_ text: String, on connection: WebSocketConnection) {
        // Any text asks for a fresh snapshot (after the client saw a gap).
        state.withLock { state in
            guard !state.asked, !state.closed else { return }
            state.asked = true
            guard state.task == nil, let subscriber = state.subscriber else { return }  // the running task sees it
            state.task = Task { await self.resend(to: subscriber, on: connection) }
        }
    }

    func closed() {
        let (task, subscriber) = state.withLock { state in
            state.closed = true
            defer { (state.task, state.subscriber) = (nil, nil) }
            return (state.task, state.subscriber)
        }
        task?.cancel()
        if let subscriber { hub.unsubscribe(subscriber) }
    }

    /// Reads the parameters, joins the board and sends the first snapshot; a bad parameter or an unknown board
    /// closes with its code, and so does a service that does not answer within the hub's read timeout.
    private func start(_ connection: WebSocketConnection) async {
        let query: DeclaredQuery
        do {
            query = try request.query(RouteQueries.leaderboardSocket)
        } catch {
            return connection.refuse(CloseCode.badRequest, error.code)
        }
        let framework = (query["framework"] ?? "").lowercased()
        let limit = Int(query.integer("limit") ?? 50)
        let version: String
        do {
            version = try await versions.value(of: query["dataset_version"] ?? "")
        } catch {
            let problem = Problem.from(error)
            return connection.refuse(
                problem.status.code >= 500 ? CloseCode.unavailable : CloseCode.badRequest, problem.code)
        }
        let subscriber: LeaderboardHub.Subscriber
        do {
            subscriber = try await RequestDeadline.$current.withValue(.now + hub.readTimeout) {
                try await hub.subscribe(
                    LeaderboardHub.BoardKey(version: version, framework: framework), connection: connection)
            }
        } catch {
            let problem = Problem.from(error)
            return connection.refuse(CloseCode.closing(problem), problem.code)
        }
        let joined = state.withLock { state in
            guard !state.closed else { return false }
            (state.subscriber, state.limit) = (subscriber, limit)
            return true
        }
        guard joined else { return hub.unsubscribe(subscriber) }
        await snapshot(to: subscriber, on: connection)
    }

    /// A snapshot the client asked for, once the interval since the last one has passed.
    private func resend(to subscriber: LeaderboardHub.Subscriber, on connection: WebSocketConnection) async {
        let last = state.withLock { $0.lastSnapshot }
        if let last { try? await Task.sleep(until: last + Self.minimumSnapshotInterval) }
        guard !Task.isCancelled else { return }
        subscriber.hold()
        await snapshot(to: subscriber, on: connection)
    }

    /// Sends a snapshot and releases the diffs held for it, then runs the next asked-for one, if any.
    private func snapshot(to subscriber: LeaderboardHub.Subscriber, on connection: WebSocketConnection) async {
        let limit = state.withLock { state in
            state.asked = false  // asks from now on are answered by another snapshot
            return state.limit
        }
        do {
            let snapshot = try await hub.snapshot(of: subscriber.board, limit: limit)
            // The snapshot and the diffs after it leave in order: both are written on the connection's loop.
            connection.eventLoop.execute {
                connection.writeOnLoop(snapshot.frame)
                connection.flushOnLoop()
                subscriber.releaseOnLoop(after: snapshot.sequence)
            }
        } catch {
            if Task.isCancelled { return }
            let problem = Problem.from(error)
            return connection.close(CloseCode.closing(problem), reason: problem.code)
        }
        state.withLock { state in
            state.lastSnapshot = .now
            state.task = nil
            guard state.asked, !state.closed else { return }
            state.task = Task { await self.resend(to: subscriber, on: connection) }
        }
    }

    /// `{"type":"snapshot","sequence":S,…,"records":[…]}`; diffs after S follow.
    static func snapshot(_ board: LeaderboardHub.BoardKey, limit: Int, ranking: RankingClient) async throws
        -> LeaderboardHub.Snapshot
    {
        let page = try await ranking.listRecords(
            .with {
                $0.filter.datasetVersion = board.version
                $0.filter.framework = board.framework
                $0.page.limit = Int32(limit)
            })
        let text = compactJSON([
            "type": "snapshot", "sequence": Int(page.sequence), "dataset_version": board.version,
            "framework": jsonValue(board.framework.isEmpty ? nil : board.framework), "total": Int(page.total),
            "records": page.records.map(RankingRoutes.recordJSON),
        ])
        return LeaderboardHub.Snapshot(frame: .init(text: ByteBuffer(string: text)), sequence: page.sequence)
    }

    /// An event as a diff of the board watched: an accepted record's `rank` is its place on that board when it was
    /// accepted (RankingService sets the framework rank for a framework board; the record's global rank then is its
    /// current one, another board's place).
    static func diffJSON(_ event: Leaderboard_Ranking_V1_LeaderboardEvent, framework: String) -> String {
        var object: [String: Any] = ["sequence": Int(event.sequence), "at": jsonValue(event.at.rfc3339)]
        switch event.event {
        case .recordAccepted(let record):
            object["type"] = "accepted"
            object["record"] = RankingRoutes.recordJSON(record)
            object["rank"] = Int(framework.isEmpty ? record.rank : record.frameworkRank)
        case .rankChanged(let change):
            object["type"] = "rank_changed"
            object["record_id"] = change.recordID
            object["old_rank"] = Int(change.oldRank)
            object["new_rank"] = Int(change.newRank)
        case .recordRemoved(let id):
            object["type"] = "removed"
            object["record_id"] = id
        case nil:
            object["type"] = "unknown"
        }
        return compactJSON(object)
    }

}

/// A device's notifications: stored ones after `?since=` (default: none of the old ones), then live ones, from one
/// task that follows InteractionService's watch for as long as the connection lasts.
final class NotificationSession: WebSocketSession {
    let request: Request
    let services: GatewayServices
    let clock: any WallClock
    let logger: Logger
    private let task = Mutex<Task<Void, Never>?>(nil)  // the loop's callbacks

    init(request: Request, services: GatewayServices, clock: any WallClock, logger: Logger) {
        self.request = request
        self.services = services
        self.clock = clock
        self.logger = logger
    }

    func opened(_ connection: WebSocketConnection) {
        task.withLock { $0 = Task { await self.run(connection) } }
    }

    func received(_ text: String, on connection: WebSocketConnection) {}  // the client only listens

    func closed() {
        task.withLock { $0 }?.cancel()
    }

    private func run(_ connection: WebSocketConnection) async {
        let machineID: String
        do {
            machineID = try await Self.verifyUpgrade(request, auth: services.auth, clock: clock)
        } catch {
            return connection.refuse(CloseCode.unauthorized, Problem.from(error).code)
        }
        let query: DeclaredQuery
        do {
            query = try request.query(RouteQueries.notificationsSocket)
        } catch {
            return connection.refuse(CloseCode.badRequest, error.code)
        }
        let since: UInt64
        if let value = query.integer("since") {
            since = UInt64(value)
        } else {
            do {
                since = try await services.interactions.listNotifications(
                    .with {
                        $0.machineID = machineID
                        $0.limit = 1
                    }
                ).latestSequence
            } catch {
                let problem = Problem.from(error)
                return connection.refuse(CloseCode.closing(problem), problem.code)
            }
        }
        let slow = SlowFlag()
        let services = services
        await Progress(since).resume(
            logger: logger, "notification watch interrupted; reconnecting", stop: { slow.isSet }
        ) { position, progress in
            try await services.interactions.watchNotifications(
                .with {
                    $0.machineID = machineID
                    $0.since = position
                }
            ) { response in
                for try await notification in response.messages {
                    progress.advance(to: notification.sequence)
                    // More than the write buffer's high mark unsent: the client does not read.
                    guard connection.isWritable else {
                        slow.set()
                        return connection.close(CloseCode.tooSlow, reason: "slow_consumer")
                    }
                    connection.send(
                        ByteBuffer(
                            string: compactJSON(
                                InteractionRoutes.notificationJSON(notification).merging(["type": "notification"]) {
                                    $1
                                })))
                }
            }
        }
    }

    /// The device of a signed upgrade request (headers as docs/SIGNING.md, over method, path, query and an empty
    /// body), its nonce consumed like any signed request's.
    static func verifyUpgrade(_ request: Request, auth: AuthClient, clock: any WallClock) async throws -> String {
        try await verifyDeviceSignature(request, auth: auth, clock: clock) { ByteBuffer() }
    }
}

/// Set once when a client falls behind.
final class SlowFlag: Sendable {
    private let flag = Mutex(false)  // writer and reader tasks
    func set() { flag.withLock { $0 = true } }
    var isSet: Bool { flag.withLock { $0 } }
}
