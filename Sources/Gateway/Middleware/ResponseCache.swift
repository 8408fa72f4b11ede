import CompressNIO
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
public import Logging
import NIOCore
public import ServiceKit
import Synchronization
import UntrustedInput

/// What a cached public response depends on; a write or an event invalidates whole scopes.
public enum CacheScope: String, Sendable, CaseIterable {
    /// Boards, records, similar systems, stats (records carry reaction and comment counts, so reactions count here).
    case ranking
    /// Comment threads.
    case comments
    /// Dataset metadata.
    case datasets
}

/// One cached response: a 200 with its body and the headers that describe it.
struct CachedResponse: Sendable, Equatable {
    var contentType: String
    var cacheControl: String
    var etag: String
    /// The body as sent, with its gzip form made at most once (``CachedBody``).
    let payload: CachedBody

    var body: [UInt8] { Array(payload.plain.readableBytesView) }

    /// The three header values as one line each, a blank line, then the body as it is — no re-encoding of the
    /// body (a JSON array of byte values would be several times its size).
    var stored: [UInt8] {
        Array("\(contentType)\n\(cacheControl)\n\(etag)\n\n".utf8) + payload.plain.readableBytesView
    }

    init(contentType: String, cacheControl: String, etag: String, body: [UInt8]) {
        self.contentType = contentType
        self.cacheControl = cacheControl
        self.etag = etag
        payload = CachedBody(ByteBuffer(bytes: body), contentType: contentType)
    }

    /// Reads ``stored``; nil when the bytes are not in that form.
    init?(stored bytes: [UInt8]) {
        var lines: [String] = []
        var start = 0
        while lines.count < 4, let end = bytes[start...].firstIndex(of: 0x0A) {
            lines.append(String(decoding: bytes[start..<end], as: UTF8.self))
            start = end + 1
        }
        guard lines.count == 4, lines[3].isEmpty else { return nil }
        self.init(contentType: lines[0], cacheControl: lines[1], etag: lines[2], body: Array(bytes[start...]))
    }

    static func == (lhs: CachedResponse, rhs: CachedResponse) -> Bool {
        lhs.contentType == rhs.contentType && lhs.cacheControl == rhs.cacheControl && lhs.etag == rhs.etag
            && lhs.payload.plain == rhs.payload.plain
    }

    /// Weak, because gzip changes the bytes on the wire but not the representation.
    static func etag(of body: [UInt8]) -> String {
        "W/\"" + SHA256.hash(data: body).prefix(16).hexEncoded + "\""
    }

    /// The headers every answer from the cache carries (a 304 too), in the order the gateway writes them.
    func describingHeaders(hit: Bool) -> HTTPFields {
        var headers: HTTPFields = [.eTag: etag, .cacheControl: cacheControl, .xCache: hit ? "HIT" : "MISS"]
        headers[.vary] = "Accept-Encoding"
        return headers
    }
}

/// A cached body as it goes on the wire: the bytes once, shared by every answer (no copy per hit), and their gzip
/// form made the first time a client accepts it and kept for the entry's life, instead of compressing the same bytes
/// on every hit.
final class CachedBody: Sendable {
    let plain: ByteBuffer
    /// Whether gzip applies at all: a compressible type, within ``CompressionMiddleware``'s sizes.
    let compressible: Bool
    private let compressed = Mutex<ByteBuffer??>(nil)

    init(_ plain: ByteBuffer, contentType: String) {
        self.plain = plain
        compressible =
            CompressionMiddleware.compressible(contentType)
            && (CompressionMiddleware.smallest...CompressionMiddleware.largest).contains(plain.readableBytes)
    }

    /// The gzip form, made once (nil: not compressible, or gzip would not make it smaller).
    var gzipped: ByteBuffer? {
        guard compressible else { return nil }
        return compressed.withLock { made in
            if let made { return made }
            var input = plain
            let output = try? input.compress(with: .gzip())
            let kept = output.flatMap { $0.readableBytes < plain.readableBytes ? $0 : nil }
            made = .some(kept)
            return kept
        }
    }
}

/// Public GET responses in two layers (docs/GATEWAY.md "Caching"):
///
/// - a short in-process layer (`localTTL`, default 1 s) that answers without any I/O, emptied per scope by this
///   gateway's own writes at once and by other replicas' writes when their events arrive;
/// - a shared layer (Redis when configured) under a per-scope generation token: invalidating writes a fresh random
///   token, so every entry filled before it becomes unreachable on every replica at once, and an entry filled from
///   data read before the write lands under the old token, where nobody looks.
///
/// Concurrent misses of one key on one gateway are answered by one upstream call (single flight); a fill that began
/// before an invalidation is never served after it. Cache failures are logged and answered from upstream: the cache
/// is never the reason a request fails.
public final class ResponseCache: Sendable {
    private struct LocalEntry {
        var response: CachedResponse
        var epoch: UInt64
        var expiresAt: ContinuousClock.Instant
    }

    /// Which entry an exact request target was answered from, for ``earlyAnswer(target:)``.
    private struct Alias {
        var scope: CacheScope
        var key: String
        var route: String
    }

    private struct State {
        var epochs: [CacheScope: UInt64] = [:]
        var entries: [String: LocalEntry] = [:]
        var flights: [String: Flight] = [:]
        var aliases: [String: Alias] = [:]
    }

    /// The waiters of one in-flight fill.
    private final class Flight: Sendable {
        let waiters = Mutex<[CheckedContinuation<CachedResponse?, Never>]>([])
    }

    private let state = Mutex(State())
    private let shared: (any Cache)?
    private let sharedTTL: Duration
    private let localTTL: Duration
    private let maximumLocalEntries: Int
    private let logger: Logger

    /// - Parameters:
    ///   - shared: the cache shared by replicas (nil: in-process only, as when embedded).
    ///   - sharedTTL: life of a shared entry; zero turns caching off.
    ///   - localTTL: life of an in-process entry; zero skips the in-process layer.
    public init(
        shared: (any Cache)?, sharedTTL: Duration, localTTL: Duration, maximumLocalEntries: Int = 4096,
        logger: Logger
    ) {
        self.shared = shared
        self.sharedTTL = sharedTTL
        self.localTTL = shared == nil ? max(localTTL, sharedTTL) : localTTL
        self.maximumLocalEntries = maximumLocalEntries
        self.logger = logger
    }

    var isEnabled: Bool { sharedTTL > .zero }

    /// The cached response for `key`, or the one `produce` makes (nil: not cacheable, e.g. an error).
    func response(
        scope: CacheScope, key: String, produce: () async throws -> CachedResponse?
    ) async throws -> (response: CachedResponse?, hit: Bool) {
        let fullKey = "\(scope.rawValue):\(key)"
        let now = ContinuousClock.now
        enum Step {
            case hit(CachedResponse)
            case wait(Flight)
            case lead(Flight, epoch: UInt64)
        }
        let step = state.withLock { state -> Step in
            let epoch = state.epochs[scope, default: 0]
            if let entry = state.entries[fullKey], entry.epoch == epoch, entry.expiresAt > now {
                return .hit(entry.response)
            }
            let flightKey = "\(epoch):\(fullKey)"
            if let flight = state.flights[flightKey] { return .wait(flight) }
            let flight = Flight()
            state.flights[flightKey] = flight
            return .lead(flight, epoch: epoch)
        }
        switch step {
        case .hit(let response):
            return (response, true)
        case .wait(let flight):
            let response = await withCheckedContinuation { continuation in
                flight.waiters.withLock { $0.append(continuation) }
            }
            // The leader failed or made nothing cacheable: ask upstream ourselves.
            if let response { return (response, true) }
            return (try await produce(), false)
        case .lead(let flight, let epoch):
            var result: CachedResponse?
            var hit = false
            defer {
                state.withLock { state in
                    state.flights["\(epoch):\(fullKey)"] = nil
                    if let result, localTTL > .zero, state.epochs[scope, default: 0] == epoch {
                        state.entries[fullKey] = LocalEntry(
                            response: result, epoch: epoch, expiresAt: ContinuousClock.now + localTTL)
                        if state.entries.count > maximumLocalEntries { Self.evict(&state.entries) }
                    }
                }
                // Waiters that queued after the flight was removed start their own; those queued before get this.
                let waiters = flight.waiters.withLock { waiters in
                    defer { waiters = [] }
                    return waiters
                }
                for waiter in waiters { waiter.resume(returning: result) }
            }
            let sharedKey = await sharedKey(scope: scope, key: key)
            if let sharedKey, let stored = await readShared(sharedKey) {
                result = stored
                hit = true
            } else {
                result = try await produce()
                if let sharedKey, let result { await writeShared(sharedKey, result) }
            }
            return (result, hit)
        }
    }

    /// The fresh in-process entry a request for exactly `target` (path and query as sent) was last answered from,
    /// with the route that answered it; nil when there is none, and the request then takes the general path
    /// (``CacheFastPath``). An entry is found only through a target a route has registered
    /// (``allowEarlyAnswers(target:scope:key:route:)``), so only URLs the router already accepted and answered 200
    /// from the cache are answered early, and an invalidation reaches both paths at once.
    func earlyAnswer(target: String) -> (response: CachedResponse, route: String)? {
        let now = ContinuousClock.now
        return state.withLock { state in
            guard let alias = state.aliases[target], let entry = state.entries[alias.key],
                entry.epoch == state.epochs[alias.scope, default: 0], entry.expiresAt > now
            else { return nil }
            return (entry.response, alias.route)
        }
    }

    /// Lets ``earlyAnswer(target:)`` answer requests for `target` from `key`'s in-process entry while it is fresh.
    func allowEarlyAnswers(target: String, scope: CacheScope, key: String, route: String) {
        guard localTTL > .zero else { return }
        let fullKey = "\(scope.rawValue):\(key)"
        state.withLock { state in
            guard state.aliases[target]?.key != fullKey else { return }
            // Targets are what clients send (parameter order, unknown parameters), so they are bounded separately.
            if state.aliases.count >= maximumLocalEntries * 4 { state.aliases = [:] }
            state.aliases[target] = Alias(scope: scope, key: fullKey, route: route)
        }
    }

    /// Forgets every response of `scopes`, here at once and on every replica sharing the cache.
    public func invalidate(_ scopes: Set<CacheScope>) async {
        guard isEnabled, !scopes.isEmpty else { return }
        invalidateLocally(scopes)
        guard let shared else { return }
        for scope in scopes {
            do {
                let token = Array(UUID().uuidString.utf8)
                try await shared.set(Self.generationKey(scope), value: token, ttl: .seconds(86_400))
            } catch {
                logger.warning(
                    "could not invalidate the shared response cache",
                    metadata: ["scope": "\(scope)", "error": "\(error)"])
            }
        }
    }

    /// Forgets this gateway's in-process responses of `scopes` (another replica's write, heard as an event).
    public func invalidateLocally(_ scopes: Set<CacheScope>) {
        state.withLock { state in
            for scope in scopes { state.epochs[scope, default: 0] &+= 1 }
            state.entries = state.entries.filter { entry in !scopes.contains { entry.key.hasPrefix("\($0.rawValue):") }
            }
        }
    }

    private static func generationKey(_ scope: CacheScope) -> String { "response-generation:\(scope.rawValue)" }

    /// The shared key of `key` under its scope's current generation (nil: no shared layer, or it failed).
    private func sharedKey(scope: CacheScope, key: String) async -> String? {
        guard let shared else { return nil }
        do {
            let generation = try await shared.get(Self.generationKey(scope)).map { String(decoding: $0, as: UTF8.self) }
            return "response:\(scope.rawValue):\(generation ?? "0"):\(key)"
        } catch {
            logger.warning("shared response cache unavailable", metadata: ["error": "\(error)"])
            return nil
        }
    }

    private func readShared(_ key: String) async -> CachedResponse? {
        do {
            guard let bytes = try await shared?.get(key) else { return nil }
            return CachedResponse(stored: bytes)
        } catch {
            logger.warning("shared response cache read failed", metadata: ["error": "\(error)"])
            return nil
        }
    }

    private func writeShared(_ key: String, _ response: CachedResponse) async {
        do {
            try await shared?.set(key, value: response.stored, ttl: sharedTTL)
        } catch {
            logger.warning("shared response cache write failed", metadata: ["error": "\(error)"])
        }
    }

    /// Drops the quarter of entries closest to expiry.
    private static func evict(_ entries: inout [String: LocalEntry]) {
        let victims = entries.sorted { $0.value.expiresAt < $1.value.expiresAt }.prefix(max(1, entries.count / 4))
        for victim in victims { entries[victim.key] = nil }
    }
}

extension HTTPField.Name {
    static let xCache = Self("X-Cache")!
}

/// Serves a public GET route through the ``ResponseCache`` with `ETag` / `If-None-Match` (304).
///
/// The key is the path plus the route's declared query parameters in canonical form (``RouteQueries``), so
/// undeclared parameters neither split entries nor get past the cache. A hit costs the client nothing; a request
/// that goes upstream (a miss, or an uncacheable answer) spends one unit of the client's `public-read` budget (429
/// past it). Only 200 responses with a known length up to 1 MiB are kept; anything else passes through unchanged.
struct ResponseCacheMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    let cache: ResponseCache
    let scope: CacheScope
    let query: QuerySpec
    let misses: RateLimitPolicy
    let rateLimiter: any RateLimiter
    let clock: any WallClock
    /// Whether the answers may also be given by ``CacheFastPath`` before the middleware chain: not for routes
    /// whose outer middleware adds to or changes a cached answer (the site's pages).
    let answersEarly: Bool
    static let largestCachedBody = 1 << 20
    static let hits = MetricFamilies.cacheLookups.counter("hit")
    static let misses = MetricFamilies.cacheLookups.counter("miss")

    init(dependencies: GatewayDependencies, scope: CacheScope, query: QuerySpec, answersEarly: Bool = true) {
        cache = dependencies.cache
        self.answersEarly = answersEarly
        self.scope = scope
        self.query = query
        misses = dependencies.policies.publicReads
        rateLimiter = dependencies.rateLimiter
        clock = dependencies.clock
    }

    func handle(
        _ request: Request,
        context: GatewayRequestContext,
        next: (Request, GatewayRequestContext) async throws -> Response
    ) async throws -> Response {
        func upstream(_ request: Request, _ context: GatewayRequestContext) async throws -> Response {
            try await rateLimiter.enforce(
                misses, key: context.clientKey, clock: clock,
                detail: "Too many uncached reads from your address; try again later.")
            return try await next(request, context)
        }
        guard cache.isEnabled, request.method == .get else { return try await upstream(request, context) }
        let key = try Self.key(request, query: query)
        var passthrough: Response?
        let (cached, hit) = try await cache.response(scope: scope, key: key) {
            let response = try await upstream(request, context)
            guard response.status == .ok, let length = response.body.contentLength,
                length <= Self.largestCachedBody
            else {
                passthrough = response
                return nil
            }
            let body = try await response.body.collect(upTo: length)
            let cached = CachedResponse(
                contentType: response.headers[.contentType] ?? "application/json",
                cacheControl: response.headers[.cacheControl] ?? "public, no-cache",
                etag: CachedResponse.etag(of: body),
                body: body)
            return cached
        }
        (hit ? Self.hits : Self.misses).increment()
        if let passthrough { return passthrough }
        guard let cached else { return try await upstream(request, context) }
        if answersEarly, let route = context.endpointPath {
            cache.allowEarlyAnswers(target: request.uri.description, scope: scope, key: key, route: route)
        }
        let answer = Self.answer(cached, hit: hit, request: request.head)
        return Response(
            status: answer.status, headers: answer.headers,
            body: answer.body.map { ResponseBody(byteBuffer: $0) } ?? .init())
    }

    /// The answer to `request` from `cached`: 304 when its `If-None-Match` matches, else the body, gzipped (the
    /// entry's one gzip form) when the client accepts it. The general path and ``CacheFastPath`` both answer with it.
    static func answer(_ cached: CachedResponse, hit: Bool, request: HTTPRequest) -> (
        status: HTTPResponse.Status, headers: HTTPFields, body: ByteBuffer?
    ) {
        var headers = cached.describingHeaders(hit: hit)
        if let match = request.headerFields[.ifNoneMatch], matches(match, etag: cached.etag) {
            return (.notModified, headers, nil)
        }
        headers[.contentType] = cached.contentType
        if CompressionMiddleware.accepts(request.headerFields[.acceptEncoding]), let gzipped = cached.payload.gzipped {
            headers[.contentEncoding] = "gzip"
            return (.ok, headers, gzipped)
        }
        return (.ok, headers, cached.payload.plain)
    }

    /// Path plus the declared query parameters in canonical form: `?a=1&b=2`, `?b=2&a=1&utm=x` and `?a=%31&b=2`
    /// share an entry. A query that does not parse is the route's 400, never cached.
    static func key(_ request: Request, query: QuerySpec) throws -> String {
        let canonical = try request.query(query).canonical
        return canonical.isEmpty ? request.uri.path : "\(request.uri.path)?\(canonical)"
    }

    /// `If-None-Match` weak comparison (RFC 9110 §13.1.2): any listed tag equal up to `W/`, or `*`.
    static func matches(_ header: String, etag: String) -> Bool {
        let bare = { (tag: Substring) in tag.hasPrefix("W/") ? tag.dropFirst(2) : tag }
        return header.split(separator: ",").contains { candidate in
            let tag = candidate.trimmingCharacters(in: .whitespaces)
            return tag == "*" || bare(Substring(tag)) == bare(Substring(etag))
        }
    }
}

/// After a successful write, invalidates the scopes it changes before answering, so the client that made it (and
/// anyone after) never reads the board from before it.
struct CacheInvalidationMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    let cache: ResponseCache
    let scopes: Set<CacheScope>

    func handle(
        _ request: Request,
        context: GatewayRequestContext,
        next: (Request, GatewayRequestContext) async throws -> Response
    ) async throws -> Response {
        do {
            let response = try await next(request, context)
            if response.status.code < 400 { await cache.invalidate(scopes) }
            return response
        } catch {
            // A write that failed may still have committed (e.g. a deadline hit after the commit): invalidate anyway.
            await cache.invalidate(scopes)
            throw error
        }
    }
}

extension ResponseBody {
    /// The whole body as bytes (for bodies of a known, bounded length).
    func collect(upTo limit: Int) async throws -> [UInt8] {
        let collector = BodyCollector(limit: limit)
        try await write(collector)
        return collector.bytes.withLock { $0 }
    }
}

/// Gathers a response body in memory.
private final class BodyCollector: ResponseBodyWriter, Sendable {
    let bytes = Mutex<[UInt8]>([])
    let limit: Int

    init(limit: Int) { self.limit = limit }

    func write(_ buffer: ByteBuffer) async throws {
        try bytes.withLock { bytes in
            guard bytes.count + buffer.readableBytes <= limit else { throw HTTPError(.contentTooLarge) }
            bytes.append(contentsOf: buffer.readableBytesView)
        }
    }

    func finish(_ trailingHeaders: HTTPFields?) async throws {}
}
