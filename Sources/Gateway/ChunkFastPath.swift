import HTTPTypes
import Logging
import NIOCore
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import ServiceKit
import UntrustedInput

/// Dataset chunk downloads answered on the connection's event loop, before Hummingbird's request task and the
/// middleware chain, when DatasetService runs in the gateway's process (docs/GATEWAY.md "Early chunk downloads",
/// docs/PERFORMANCE-NOTES.md "P4"). The request is answered as `GET /api/v1/datasets/{version}/chunks/{index}` is
/// by its route (``ChunkFileBody``), with the same headers, the same charge to the address's download budget, the
/// access line (with `"early": true`), the request metrics under the route's name and the chunk counters.
///
/// Only what needs nothing else is answered here: a GET of exactly that path with no query, no body, no `Origin`,
/// no `If-None-Match`, no `Connection: close`, for a chunk whose file DatasetService has already checked in its
/// current state (``LocalChunkSource/checkedChunkFile(version:index:)``), opened here and found to be that very
/// file. Everything else — an unknown version or chunk, a file not checked yet or changed, an address over its
/// budget, a limiter that fails — goes the general way, which answers it (and its errors) as before.
public struct ChunkFastPath: Sendable {
    static let route = "/api/v1/datasets/{version}/chunks/{index}"
    private static let prefix = "/api/v1/datasets/"

    let chunks: LocalChunkFiles
    let rateLimiter: any RateLimiter
    let policy: RateLimitPolicy
    let clock: any WallClock
    let resolver: ClientAddressResolver

    /// The fast path of a gateway whose DatasetService shares its process and whose chunks may go out by
    /// `sendfile` (no TLS); nil otherwise.
    public init?(dependencies: GatewayDependencies) {
        guard dependencies.sendsFiles, let chunks = dependencies.localChunks else { return nil }
        self.chunks = chunks
        rateLimiter = dependencies.rateLimiter
        policy = dependencies.policies.download
        clock = dependencies.clock
        resolver = dependencies.configuration.clientAddresses
    }

    /// A chunk download this path will answer once the budget allows it: the file is open.
    final class Download {
        let file: ChunkFileBody.OpenFile
        let checked: CheckedChunkFile
        let key: String
        let cost: Int
        let client: IPAddress?

        init(file: ChunkFileBody.OpenFile, checked: CheckedChunkFile, key: String, cost: Int, client: IPAddress?) {
            self.file = file
            self.checked = checked
            self.key = key
            self.cost = cost
            self.client = client
        }

        func close() { file.close() }
    }

    /// The download `request` asks for, if this path answers it; the file is then open until ``Download/close()``.
    func prepare(_ request: HTTPRequest, peer: CacheFastPath.Peer, channel: any Channel) -> Download? {
        guard CacheFastPath.isPlainGet(request), let path = request.path, path.hasPrefix(Self.prefix),
            request.headerFields[.ifNoneMatch] == nil,
            let (version, index) = Self.chunk(in: path.utf8.dropFirst(Self.prefix.utf8.count)),
            let source = chunks.current, let checked = source.checkedChunkFile(version: version, index: index),
            // An HTTP/1 connection with the codec the file goes out below.
            (try? channel.pipeline.syncOperations.context(handlerType: HTTP1ToHTTPServerCodec.self)) != nil,
            let file = ChunkFileBody.OpenFile(checked.file)
        else { return nil }
        let client = peer.client(of: request, resolver: resolver)?.address
        return Download(
            file: file, checked: checked, key: client?.limitKey ?? "ip:\(peer.text)",
            cost: DatasetRoutes.downloadCost(checked.ciphertextSize, policy: policy), client: client)
    }

    /// The budget's answer without waiting, from a process-local limiter; nil when it must be asked elsewhere.
    func chargeImmediately(_ download: Download) -> Bool? {
        rateLimiter.acquireImmediately(
            key: download.key, policy: policy, cost: download.cost, now: clock.microsecondsSinceEpoch()
        )?.allowed
    }

    /// Charges the budget (a shared limiter): whether the download may go out now.
    static func charge(key: String, cost: Int, through path: ChunkFastPath) async throws -> Bool {
        try await path.rateLimiter.acquire(
            key: key, policy: path.policy, cost: cost, now: path.clock.microsecondsSinceEpoch()
        ).allowed
    }

    /// `version` and `index` of a path's rest `{version}/chunks/{index}`, the index in plain decimal.
    static func chunk(in rest: Substring.UTF8View) -> (String, Int)? {
        guard let slash = rest.firstIndex(of: UInt8(ascii: "/")) else { return nil }
        let version = rest[..<slash]
        let tail = rest[rest.index(after: slash)...]
        let marker = "chunks/".utf8
        guard !version.isEmpty, tail.starts(with: marker) else { return nil }
        let digits = tail.dropFirst(marker.count)
        guard (1...9).contains(digits.count), digits.allSatisfy({ (0x30...0x39).contains($0) }),
            digits.count == 1 || digits.first != UInt8(ascii: "0")
        else { return nil }
        let index = digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
        return (String(Substring(version)), index)
    }

    /// Writes the answer: the head through `context` (so the connection's state handler sees it), the file below
    /// the HTTP/1 codec as a `FileRegion` (`sendfile`), the end through `context` again; then flushes. The file is
    /// closed once written, or when the write fails.
    func send(
        _ download: Download, request: HTTPRequest, context: ChannelHandlerContext, start: ContinuousClock.Instant,
        fastPath: CacheFastPath
    ) {
        let checked = download.checked
        let requestID = RequestID.accept(request.headerFields[.requestID])
        var headers = DatasetRoutes.chunkHeaders(ciphertextSHA256: checked.ciphertextSHA256)
        headers[.contentLength] = "\(checked.ciphertextSize)"
        headers[.requestID] = requestID
        headers[.date] = HTTPDate.now
        headers[.server] = fastPath.serverName
        context.write(NIOAny(HTTPResponsePart.head(HTTPResponse(status: .ok, headerFields: headers))), promise: nil)
        let written = context.eventLoop.makePromise(of: Void.self)
        written.futureResult.assumeIsolated().whenComplete { _ in download.close() }
        do {
            try ChunkFileBody.write(
                download.file, size: checked.ciphertextSize, below: context.pipeline, flush: false, promise: written)
        } catch {
            // The codec is gone (the connection is closing): the response cannot complete.
            written.fail(error)
            context.close(promise: nil)
            return
        }
        context.write(NIOAny(HTTPResponsePart.end(nil)), promise: nil)
        context.flush()
        ChunkFileBody.bytesServed.increment(by: checked.ciphertextSize)
        ChunkFileBody.chunksSent.increment()
        fastPath.record(
            route: Self.route, status: .ok, requestID: requestID, path: request.path ?? "",
            client: download.client.map { "\($0)" }, since: start)
    }
}
