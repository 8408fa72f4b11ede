import Foundation
import HTTPTypes
import HummingbirdCore
public import Logging
import Metrics
public import NIOCore
import NIOHTTPTypes
import ServiceKit
import Synchronization
public import UntrustedInput

/// Answers cache hits of public GET routes on the connection's event loop, before Hummingbird's request task and
/// the middleware chain (docs/GATEWAY.md "Caching", docs/PERFORMANCE-NOTES.md "P1").
///
/// A request is answered here only when it is exactly a request target a cached route answered 200 before
/// (``ResponseCache/earlyAnswer(target:)``) and its in-process entry is fresh, and only when nothing about it needs
/// the chain: a GET without a body, no `Origin` (CORS answers go the general way), no `Connection: close`, and
/// nothing of the same connection still being answered there (so responses keep their order). It answers as the
/// chain would — the same headers (`ETag`, `Cache-Control`, `X-Cache: HIT`, `Vary`, `X-Request-ID`, `Date`,
/// `Server`), 304 for a matching `If-None-Match`, the entry's one gzip form when accepted — and keeps what the
/// operator sees: the access line (with `"early": true`), the request metrics under the route's name, the cache hit
/// counter. What it skips costs nothing on a hit: routing, the deadline race, the rate limit (hits are free), the
/// NUL guard (a registered target was already accepted). Everything else takes the general path unchanged.
public struct CacheFastPath: Sendable {
    let cache: ResponseCache
    let resolver: ClientAddressResolver
    let logger: Logger
    let serverName: String
    /// Dataset chunk downloads answered here too, when DatasetService shares the process (``ChunkFastPath``).
    let chunks: ChunkFastPath?
    private let routes = RouteMetrics()

    public init(
        cache: ResponseCache, clientAddresses: ClientAddressResolver, logger: Logger, serverName: String,
        chunks: ChunkFastPath? = nil
    ) {
        self.cache = cache
        resolver = clientAddresses
        self.logger = logger
        self.serverName = serverName
        self.chunks = chunks
    }

    /// The handler HTTP/1 connections add after their HTTP codec (`additionalChannelHandlers`). It moves itself
    /// behind Hummingbird's connection-state handler at the first request, so idle timeouts and graceful shutdown
    /// count the requests answered here as they count every other.
    public func channelHandlers() -> [any RemovableChannelHandler] { [CacheFastPathInstaller(fastPath: self)] }

    /// A connection's peer as the early answers need it, worked out at its first request.
    struct Peer: Sendable {
        let text: String
        /// The client of every request of the connection and its text, when no header can change it
        /// (``ClientAddressResolver/fixedClient(peer:)``).
        let fixed: (address: IPAddress, text: String)?

        init(_ text: String, resolver: ClientAddressResolver) {
            self.text = text
            fixed = resolver.fixedClient(peer: text).map { ($0, "\($0)") }
        }

        /// The client `request` comes from, and its text for the access line.
        func client(of request: HTTPRequest, resolver: ClientAddressResolver) -> (address: IPAddress, text: String)? {
            if let fixed { return fixed }
            return resolver.resolve(peer: text, fields: request.headerFields).map { ($0, "\($0)") }
        }
    }

    /// The response parts for `request`, or nil when the general path must answer it.
    func answer(_ request: HTTPRequest, peer: Peer) -> [HTTPResponsePart]? {
        guard Self.isPlainGet(request), let target = request.path,
            let (cached, route) = cache.earlyAnswer(target: target)
        else { return nil }
        let start = ContinuousClock.now
        let answer = ResponseCacheMiddleware.answer(cached, hit: true, request: request)
        let requestID = RequestID.accept(request.headerFields[.requestID])
        var headers = answer.headers
        if let body = answer.body {
            headers[.contentLength] = "\(body.readableBytes)"
        }
        headers[.requestID] = requestID
        headers[.date] = HTTPDate.now
        headers[.server] = serverName
        ResponseCacheMiddleware.hits.increment()
        record(
            route: route, status: answer.status, requestID: requestID, path: target,
            client: peer.client(of: request, resolver: resolver)?.text, since: start)
        var parts: [HTTPResponsePart] = [.head(HTTPResponse(status: answer.status, headerFields: headers))]
        if let body = answer.body { parts.append(.body(body)) }
        parts.append(.end(nil))
        return parts
    }
}

extension CacheFastPath {
    /// Whether `request` is one an early answer may take: a `GET` without a body, without `Origin` (CORS answers go
    /// the general way) and without `Connection: close` (closing is the general path's).
    static func isPlainGet(_ request: HTTPRequest) -> Bool {
        request.method == .get && request.headerFields[.origin] == nil
            && request.headerFields[.contentLength] == nil && request.headerFields[.transferEncoding] == nil
            && !closes(request.headerFields)
    }

    /// Whether a request's `Connection` field has the `close` option (options are case-insensitive tokens).
    static func closes(_ fields: HTTPFields) -> Bool {
        guard let value = fields[.connection] else { return false }
        return value.split(separator: ",").contains { option in
            option.lowercased().filter { $0 != " " && $0 != "\t" } == "close"
        }
    }

    /// What an answer given here leaves for the operator: the request metrics under the route's name and the access
    /// line, marked `"early": true`.
    func record(
        route: String, status: HTTPResponse.Status, requestID: String, path: String, client: String?,
        since start: ContinuousClock.Instant
    ) {
        routes.record(route: route, status: status, since: start)
        var metadata: Logger.Metadata = [
            "request_id": "\(requestID)", "method": "GET",
            "path": "\(Substring(path.utf8.prefix(while: { $0 != UInt8(ascii: "?") })))",
            "status": "\(status.code)", "duration_ms": "\(Double((ContinuousClock.now - start).microseconds) / 1000)",
            "early": "true",
        ]
        if let client { metadata["client"] = .string(client) }
        logger.info("access", metadata: metadata)
    }
}

/// Puts a ``CacheFastPathHandler`` right after Hummingbird's `HTTPConnectionStateHandler` at the connection's first
/// request part, then removes itself. (Handlers given to Hummingbird's HTTP/1 channels are added before that
/// handler, where answers would not count as activity for its idle timer.)
final class CacheFastPathInstaller: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart

    let fastPath: CacheFastPath

    init(fastPath: CacheFastPath) { self.fastPath = fastPath }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let pipeline = context.pipeline.syncOperations
        if let state = try? pipeline.handler(type: HTTPConnectionStateHandler.self) {
            try? pipeline.addHandler(CacheFastPathHandler(fastPath: fastPath), position: .after(state))
        }
        context.fireChannelRead(data)
        pipeline.removeHandler(context: context, promise: nil)
    }
}

/// Answers a connection's cache hits and chunk downloads itself (``CacheFastPath``, ``ChunkFastPath``) and passes
/// every other request on. A request is answered here only while every request passed on has been answered in full,
/// so responses leave in request order even when a client pipelines. A chunk download whose budget is asked of a
/// shared limiter waits for that answer on the event loop: meanwhile the connection reads nothing more, and parts
/// already read wait here, then go their way in order.
final class CacheFastPathHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let fastPath: CacheFastPath
    /// Requests passed on whose response has not ended.
    private var passedOn = 0
    /// Inside a request answered here: its remaining parts are dropped.
    private var answered = false
    private var needsFlush = false
    private var peer: CacheFastPath.Peer?
    /// A chunk download waiting for its budget: inbound parts read meanwhile wait in `held`, reads in `readHeld`.
    private var waiting = false
    private var held: [HTTPRequestPart] = []
    private var readHeld = false

    init(fastPath: CacheFastPath) { self.fastPath = fastPath }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if waiting {
            held.append(part)
        } else {
            handle(part, context: context)
        }
    }

    private func handle(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let request):
            if passedOn == 0, context.channel.isWritable {
                if let parts = fastPath.answer(request, peer: peer(context)) {
                    answered = true
                    for part in parts { context.write(wrapOutboundOut(part), promise: nil) }
                    needsFlush = true
                    return
                }
                if let chunks = fastPath.chunks,
                    let download = chunks.prepare(request, peer: peer(context), channel: context.channel)
                {
                    answered = true
                    start(download, of: request, through: chunks, context: context)
                    return
                }
            }
            passOn(part, context: context)
        case .body:
            if !answered { context.fireChannelRead(wrapInboundOut(part)) }
        case .end:
            if answered {
                answered = false
            } else {
                context.fireChannelRead(wrapInboundOut(part))
            }
        }
    }

    private func passOn(_ head: HTTPRequestPart, context: ChannelHandlerContext) {
        passedOn += 1
        context.fireChannelRead(wrapInboundOut(head))
    }

    /// Sends `download` once its budget allows; passes the request on when it does not (the route answers the 429)
    /// or when the limiter fails (the route answers that too).
    private func start(
        _ download: ChunkFastPath.Download, of request: HTTPRequest, through chunks: ChunkFastPath,
        context: ChannelHandlerContext
    ) {
        let start = ContinuousClock.now
        if let allowed = chunks.chargeImmediately(download) {
            finish(download, of: request, allowed: allowed, through: chunks, start: start, context: context)
            return
        }
        waiting = true
        let (key, cost) = (download.key, download.cost)
        let charged = context.eventLoop.makePromise(of: Bool.self)
        charged.completeWithTask { try await ChunkFastPath.charge(key: key, cost: cost, through: chunks) }
        charged.futureResult.assumeIsolated().whenComplete { result in
            self.waiting = false
            guard context.channel.isActive else {
                download.close()
                self.held = []
                return
            }
            let allowed = (try? result.get()) ?? false
            self.finish(download, of: request, allowed: allowed, through: chunks, start: start, context: context)
            self.resume(context: context)
        }
    }

    private func finish(
        _ download: ChunkFastPath.Download, of request: HTTPRequest, allowed: Bool, through chunks: ChunkFastPath,
        start: ContinuousClock.Instant, context: ChannelHandlerContext
    ) {
        guard allowed else {
            download.close()
            answered = false
            passOn(.head(request), context: context)
            return
        }
        chunks.send(download, request: request, context: context, start: start, fastPath: fastPath)
    }

    /// After a download's wait: handles the parts that arrived meanwhile, until another download waits, and reads
    /// again. What was passed on here (the waiting request itself, when refused) is followed by a read-complete, as
    /// a read from the socket is: the handlers after this one (the request task's inbound stream) deliver what they
    /// buffered on it.
    private func resume(context: ChannelHandlerContext) {
        while !waiting, !held.isEmpty {
            handle(held.removeFirst(), context: context)
        }
        context.fireChannelReadComplete()
        if needsFlush {
            needsFlush = false
            context.flush()
        }
        if !waiting, readHeld {
            readHeld = false
            context.read()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if needsFlush {
            needsFlush = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if waiting {
            readHeld = true
        } else {
            context.read()
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { passedOn = max(0, passedOn - 1) }
        context.write(data, promise: promise)
    }

    private func peer(_ context: ChannelHandlerContext) -> CacheFastPath.Peer {
        if let peer { return peer }
        let peer = CacheFastPath.Peer(context.channel.remoteAddress?.ipAddress ?? "", resolver: fastPath.resolver)
        self.peer = peer
        return peer
    }
}

/// Request counts and durations under Hummingbird's metric names and labels (its `MetricsMiddleware`), so early
/// answers appear on `/metrics` beside the route's other answers.
final class RouteMetrics: Sendable {
    private struct Key: Hashable {
        var route: String
        var status: Int
    }
    private let made = Mutex<[Key: (Counter, Metrics.Timer)]>([:])

    func record(route: String, status: HTTPResponse.Status, since start: ContinuousClock.Instant) {
        let key = Key(route: route, status: status.code)
        let (counter, timer) = made.withLock { made in
            if let pair = made[key] { return pair }
            let dimensions = [
                ("http.route", route), ("http.request.method", "GET"), ("http.response.status_code", "\(status.code)"),
            ]
            let pair = (
                Counter(label: "hb.requests", dimensions: dimensions),
                Metrics.Timer(
                    label: "http.server.request.duration", dimensions: dimensions, preferredDisplayUnit: .seconds)
            )
            made[key] = pair
            return pair
        }
        counter.increment()
        timer.recordMicroseconds((ContinuousClock.now - start).microseconds)
    }
}

/// The `Date` header's value (RFC 9110 IMF-fixdate), formatted once a second.
enum HTTPDate {
    private static let cached = Mutex<(second: Int, text: String)>((-1, ""))

    static var now: String {
        var seconds = time(nil)
        return cached.withLock { cached in
            if cached.second == seconds { return cached.text }
            var parts = tm()
            gmtime_r(&seconds, &parts)
            let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
            let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
            func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
            let text =
                "\(days[Int(parts.tm_wday) % 7]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon) % 12]) "
                + "\(parts.tm_year + 1900) \(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
            cached = (seconds, text)
            return text
        }
    }
}
