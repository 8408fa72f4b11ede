import NIOCore
import NIOHTTP1
import NIOPosix

/// One keep-alive HTTP/1.1 connection for the load generators: requests one after another, no pooling, no
/// redirects, the body read whole. Small on purpose, so the client spends as little of the machine's two cores as
/// the reference tools (wrk, pgbench) do.
final class BenchHTTPConnection {
    struct Reply {
        var status: Int
        var headers = HTTPHeaders()
        var body: ByteBuffer
    }

    private var inbound: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>
    private let host: String

    private init(
        inbound: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>, host: String
    ) {
        self.inbound = inbound
        self.outbound = outbound
        self.host = host
    }

    /// Connects to `host:port`, runs `body` with the connection, then closes it.
    static func with<Result: Sendable>(
        host: String, port: Int, _ body: (BenchHTTPConnection) async throws -> Result
    ) async throws -> Result {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(
                        wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await body(BenchHTTPConnection(inbound: inbound.makeAsyncIterator(), outbound: outbound, host: host))
        }
    }

    func send(_ method: HTTPMethod, _ path: String, headers: [(String, String)] = [], body: [UInt8] = [])
        async throws -> Reply
    {
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: path)
        head.headers.add(name: "Host", value: host)
        head.headers.add(contentsOf: headers)
        if !body.isEmpty || method == .POST { head.headers.add(name: "Content-Length", value: "\(body.count)") }
        try await outbound.write(.head(head))
        if !body.isEmpty { try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body)))) }
        try await outbound.write(.end(nil))
        var reply = Reply(status: 0, body: ByteBuffer())
        while let part = try await inbound.next() {
            switch part {
            case .head(let response):
                reply.status = Int(response.status.code)
                reply.headers = response.headers
            case .body(var piece): reply.body.writeBuffer(&piece)
            case .end: return reply
            }
        }
        throw BenchError("the server closed the connection")
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
