import Foundation
import GRPCCore
import HTTPTypes
public import Hummingbird
public import HummingbirdWebSocket
import LeaderboardAPI
public import Logging
public import NIOCore
public import NIOWebSocket
import ServiceKit
import SwiftProtobuf
import Synchronization
import UntrustedInput

/// The request context of WebSocket upgrades.
public struct GatewayWebSocketContext: RequestContext, WebSocketRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let webSocket: WebSocketHandlerReference<Self>
    /// The peer's IP address (no port).
    public let peerIP: String
    /// The connection: board diffs are written to it directly (``LeaderboardHub``).
    public let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        webSocket = .init()
        peerIP = source.channel.remoteAddress?.ipAddress ?? ""
        channel = source.channel
    }
}

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

/// `/api/v1/ws/leaderboard` (a snapshot of a board's top N, then its ordered diffs) and `/api/v1/ws/notifications`
/// (a device's notifications, signed at upgrade). Protocol: docs/INTERACTIONS.md.
public func buildGatewayWebSocketRouter(_ dependencies: GatewayDependencies, logger: Logger)
    -> Router<GatewayWebSocketContext>
{
    let router = Router(context: GatewayWebSocketContext.self)
    guard let services = dependencies.services else { return router }
    let hub = LeaderboardHub(ranking: services.ranking, logger: logger)
    /// Upgrades are limited per client address (429 before the upgrade): each connection holds a watch.
    @Sendable func admit(_ request: Request, _ context: GatewayWebSocketContext) async throws -> RouterShouldUpgrade {
        let resolver = dependencies.configuration.clientAddresses
        let key =
            resolver.resolve(peer: context.peerIP, fields: request.headers)?.limitKey ?? "ip:\(context.peerIP)"
        try await dependencies.rateLimiter.enforce(
            dependencies.policies.webSockets, key: key, clock: dependencies.clock,
            detail: "Too many WebSocket connections from your address; try again later.")
        return .upgrade([:])
    }
    router.ws("/api/v1/ws/leaderboard") { request, context in
        try await admit(request, context)
    } onUpgrade: { inbound, outbound, context in
        try await WebSocketSessions.leaderboard(
            inbound: inbound, outbound: outbound, request: context.request, channel: context.requestContext.channel,
            hub: hub, services: services)
    }
    router.ws("/api/v1/ws/notifications") { request, context in
        try await admit(request, context)
    } onUpgrade: { inbound, outbound, context in
        try await WebSocketSessions.notifications(
            inbound: inbound, outbound: outbound, request: context.request, services: services,
            clock: dependencies.clock, logger: logger)
    }
    return router
}

enum WebSocketSessions {
    /// Most top records a snapshot carries.
    static let maximumSnapshot = 200
    /// Least time between two snapshots a client asks for on one connection.
    static let minimumSnapshotInterval: Duration = .seconds(2)

    /// Diffs a connection may have waiting in user space (beyond the kernel's socket buffer) before its client
    /// counts as too slow and is dropped: NIO's write buffer high mark for leaderboard sockets, well above a full
    /// snapshot (200 records).
    static let unsentBytesLimit = 1 << 20

    static func leaderboard(
        inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, request: Request, channel: any Channel,
        hub: LeaderboardHub, services: GatewayServices
    ) async throws {
        let query: DeclaredQuery
        do {
            query = try request.query(RouteQueries.leaderboardSocket)
        } catch {
            try await refuse(inbound, outbound, CloseCode.badRequest, error.code)
            return
        }
        let framework = (query["framework"] ?? "").lowercased()
        let limit = Int(query.integer("limit") ?? 50)
        let version: String
        do {
            let requested = query["dataset_version"] ?? ""
            version =
                requested.isEmpty
                ? try await services.datasets.getLatestDataset(.with { _ in }).version
                : try await services.datasets.getDataset(.with { $0.version = requested }).version
        } catch {
            try await refuse(inbound, outbound, CloseCode.badRequest, Problem.from(error).code)
            return
        }
        let board = LeaderboardHub.BoardKey(version: version, framework: framework)
        let subscriber: LeaderboardHub.Subscriber
        do {
            try await channel.setOption(
                ChannelOptions.writeBufferWaterMark,
                value: .init(low: unsentBytesLimit / 2, high: unsentBytesLimit)
            ).get()
            subscriber = try await hub.subscribe(board, channel: channel)
        } catch {
            let problem = Problem.from(error)
            try await refuse(inbound, outbound, CloseCode.closing(problem), problem.code)
            return
        }
        defer { hub.unsubscribe(subscriber) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            // Any text from the client asks for a fresh snapshot (after it saw a gap); the connection ends with it.
            group.addTask {
                // However the connection ends (closed, or dropped mid-read), the session ends with it.
                defer { subscriber.end() }
                for try await _ in inbound.messages(maxSize: 1024) { subscriber.requestSnapshot() }
            }
            // Diffs are held from the subscription until the snapshot is out, then flow without this task.
            subscriber.release(
                after: try await sendSnapshot(board, limit: limit, services: services, outbound: outbound))
            var lastSnapshot = ContinuousClock.now
            for await _ in subscriber.snapshotRequests {
                // At most one snapshot per interval per connection, however often the client asks.
                try await Task.sleep(until: lastSnapshot + minimumSnapshotInterval)
                subscriber.snapshotTaken()
                subscriber.hold()
                subscriber.release(
                    after: try await sendSnapshot(board, limit: limit, services: services, outbound: outbound))
                lastSnapshot = ContinuousClock.now
            }
            group.cancelAll()
        }
        if subscriber.wasTooSlow { try? await outbound.close(CloseCode.tooSlow, reason: "slow_consumer") }
    }

    /// Closes with a code and reason, then reads until the client answers the close.
    ///
    /// The close waits a moment after the upgrade: a close frame that arrives in the same read as the `101` response
    /// is lost by some client libraries (NIO's upgrade handler among them), which then see no reason at all. Reading
    /// until the client answers keeps the handler alive until the frame is on the wire.
    static func refuse(
        _ inbound: WebSocketInboundStream, _ outbound: WebSocketOutboundWriter, _ code: WebSocketErrorCode,
        _ reason: String
    ) async throws {
        try await Task.sleep(for: .milliseconds(100))
        try await outbound.close(code, reason: reason)
        for try await _ in inbound.messages(maxSize: 1024) {}
    }

    /// Sends `{"type":"snapshot","sequence":S,…,"records":[…]}`; diffs after S follow.
    static func sendSnapshot(
        _ board: LeaderboardHub.BoardKey, limit: Int, services: GatewayServices, outbound: WebSocketOutboundWriter
    ) async throws -> UInt64 {
        let page = try await services.ranking.listRecords(
            .with {
                $0.filter.datasetVersion = board.version
                $0.filter.framework = board.framework
                $0.page.limit = Int32(limit)
            })
        try await outbound.write(
            .text(
                RankingRoutes.compactJSON([
                    "type": "snapshot", "sequence": Int(page.sequence), "dataset_version": board.version,
                    "framework": jsonValue(board.framework.isEmpty ? nil : board.framework), "total": Int(page.total),
                    "records": page.records.map(RankingRoutes.recordJSON),
                ])))
        return page.sequence
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
        return RankingRoutes.compactJSON(object)
    }

    /// A device's notifications: stored ones after `?since=` (default: none of the old ones), then live ones.
    static func notifications(
        inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, request: Request, services: GatewayServices,
        clock: any WallClock, logger: Logger
    ) async throws {
        let machineID: String
        do {
            machineID = try await verifyUpgrade(request, auth: services.auth, clock: clock)
        } catch {
            try await refuse(inbound, outbound, CloseCode.unauthorized, Problem.from(error).code)
            return
        }
        let since: UInt64
        let query: DeclaredQuery
        do {
            query = try request.query(RouteQueries.notificationsSocket)
        } catch {
            try await refuse(inbound, outbound, CloseCode.badRequest, error.code)
            return
        }
        if let value = query.integer("since") {
            since = UInt64(value)
        } else {
            since = try await services.interactions.listNotifications(
                .with {
                    $0.machineID = machineID
                    $0.limit = 1
                }
            ).latestSequence
        }
        let (stream, continuation) = AsyncStream<Leaderboard_Interaction_V1_Notification>.makeStream(
            bufferingPolicy: .bufferingOldest(256))
        let slow = SlowFlag()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                defer { continuation.finish() }  // closed or dropped: the session ends
                for try await _ in inbound.messages(maxSize: 1024) {}  // the client only listens
            }
            group.addTask {
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
                            if case .dropped = continuation.yield(notification) {
                                slow.set()
                                continuation.finish()
                                return
                            }
                        }
                    }
                }
            }
            for await notification in stream {
                try await outbound.write(
                    .text(
                        RankingRoutes.compactJSON(
                            InteractionRoutes.notificationJSON(notification).merging(["type": "notification"]) { $1 })))
            }
            group.cancelAll()
        }
        if slow.isSet { try? await outbound.close(CloseCode.tooSlow, reason: "slow_consumer") }
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
