import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOWebSocket
import ServiceKit
import ServiceLifecycle

/// The gateway's HTTP/1.1 connections, upgraded to ``WebSocketConnection``s for the WebSocket endpoints.
///
/// Hummingbird's own upgrade channel hands every WebSocket to an async handler: a task group, a ping task and async
/// inbound and outbound bridges per connection, on top of the session's own task — most of what a watcher cost
/// (docs/PERFORMANCE-NOTES.md "P5"). Here an upgraded connection is a channel handler and one suspended task (the
/// server's, which closes it on shutdown); the endpoint's work runs on the event loop or in short tasks. Plain HTTP
/// requests go to the router as in Hummingbird's `HTTP1Channel`, with the same pipeline. A refused upgrade gets the
/// endpoint's problem+json (e.g. 429 with `Retry-After`) rather than an empty 400.
struct GatewayHTTPChannel: ServerChildChannel, HTTPChannelHandler {
    enum UpgradeResult: Sendable {
        case webSocket(WebSocketConnection)
        case http(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
        case refused(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, HTTPResponse, ByteBuffer)
    }

    struct Value: ServerChildChannelValue {
        let upgradeResult: EventLoopFuture<UpgradeResult>
        let channel: any Channel
    }

    let responder: HTTPChannelHandler.Responder
    let configuration: HTTP1Channel.Configuration
    let webSockets: GatewayWebSockets

    init(
        responder: @escaping HTTPChannelHandler.Responder, configuration: HTTP1Channel.Configuration,
        webSockets: GatewayWebSockets
    ) {
        self.responder = Self.redirectingLateUpgrades(responder)
        self.configuration = configuration
        self.webSockets = webSockets
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            // What `shouldUpgrade` decided, for the pipeline handler or the plain HTTP path; on the channel's loop.
            let decided = NIOLoopBoundBox<GatewayWebSockets.Decision?>(nil, eventLoop: channel.eventLoop)
            let upgrader = NIOTypedWebSocketServerUpgrader<UpgradeResult>(
                maxFrameSize: WebSocketConnection.maximumFrame,
                shouldUpgrade: { channel, head in
                    let request: HTTPRequest
                    do {
                        request = try HTTPRequest(head, secure: false, splitCookie: false)
                    } catch {
                        return channel.eventLoop.makeFailedFuture(error)
                    }
                    let promise = channel.eventLoop.makePromise(of: GatewayWebSockets.Decision.self)
                    promise.completeWithTask { await webSockets.decide(request, channel: channel) }
                    return promise.futureResult.map { decision -> HTTPHeaders? in
                        decided.value = decision
                        guard case .upgrade = decision else { return nil }
                        return HTTPHeaders()
                    }
                },
                upgradePipelineHandler: { channel, _ in
                    channel.eventLoop.makeCompletedFuture {
                        guard case .upgrade(let session) = decided.value else {
                            throw ChannelError.inappropriateOperationForState
                        }
                        let connection = WebSocketConnection(channel: channel, session: session)
                        try channel.pipeline.syncOperations.addHandler(connection)
                        return UpgradeResult.webSocket(connection)
                    }
                }
            )
            let plainHTTP = NIOTypedHTTPServerUpgradeConfiguration(
                upgraders: [upgrader],
                notUpgradingCompletionHandler: { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
                        try channel.pipeline.syncOperations.addHandlers(configuration.additionalChannelHandlers())
                        try channel.pipeline.syncOperations.addHandler(
                            HTTPConnectionStateHandler(
                                idleTimeout: configuration.idleTimeout.map { .init($0) }, logger: logger))
                        let asyncChannel = try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(
                            wrappingChannelSynchronously: channel,
                            configuration: .init(isOutboundHalfClosureEnabled: true))
                        if case .refuse(let head, let body) = decided.value {
                            return UpgradeResult.refused(asyncChannel, head, body)
                        }
                        return UpgradeResult.http(asyncChannel)
                    }
                })
            var pipeline = NIOUpgradableHTTPServerPipelineConfiguration<UpgradeResult>(
                upgradeConfiguration: plainHTTP)
            pipeline.enablePipelining = false  // NIOAsyncChannel reads one request at a time
            pipeline.enableErrorHandling = false  // Hummingbird answers errors
            pipeline.enableResponseHeaderValidation = false  // HTTPTypes validate
            pipeline.decoderConfiguration.maxHeaderFieldSize = configuration.httpDecoder.maxHeaderFieldSize
            pipeline.decoderConfiguration.maxHeaderListSize = configuration.httpDecoder.maxHeaderListSize
            pipeline.decoderConfiguration.maxHeaderFieldCount = configuration.httpDecoder.maxHeaderFieldCount
            let upgradeResult = try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(
                configuration: pipeline)
            let decoder = try channel.pipeline.syncOperations.handler(
                type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try channel.pipeline.syncOperations.addHandler(UpgradeRequestFilter(), position: .after(decoder))
            return Value(upgradeResult: upgradeResult, channel: channel)
        }
    }

    func handle(value: Value, logger: Logger) async {
        do {
            switch try await value.upgradeResult.get() {
            case .http(let http):
                await handleHTTP(asyncChannel: http, logger: logger)
            case .refused(let http, let head, let body):
                await Self.answer(http, head: head, body: body, logger: logger)
            case .webSocket(let connection):
                // The connection runs on its event loop; this task only waits for its end, and on shutdown says
                // the server is going away.
                await withGracefulShutdownHandler {
                    await withTaskCancellationHandler {
                        try? await connection.channel.closeFuture.get()
                    } onCancel: {
                        connection.channel.close(promise: nil)
                    }
                } onGracefulShutdown: {
                    connection.close(.goingAway, reason: "server_shutting_down")
                }
            }
        } catch let error as ChannelError where error == .inputClosed {
            logger.trace("connection closed before its first request")
        } catch {
            logger.debug("connection ended during its upgrade", metadata: ["error": "\(error)"])
        }
    }

    /// Writes a refused upgrade's answer and closes the connection.
    private static func answer(
        _ http: NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, head: HTTPResponse, body: ByteBuffer,
        logger: Logger
    ) async {
        do {
            try await http.executeThenClose { _, outbound in
                try await outbound.write(contentsOf: [.head(head), .body(body), .end(nil)])
            }
        } catch {
            logger.trace("refused upgrade: the client left first", metadata: ["error": "\(error)"])
        }
    }

    /// A WebSocket upgrade on a connection that already served a request goes through NIO's upgrade only on a new
    /// connection: such a request is redirected to itself with `Connection: close` (as Hummingbird does).
    private static func redirectingLateUpgrades(_ responder: @escaping HTTPChannelHandler.Responder)
        -> HTTPChannelHandler.Responder
    {
        struct RedirectedUpgrade: Error {}
        return { request, writer, channel in
            guard request.headers[.upgrade]?.lowercased() == "websocket" else {
                return try await responder(request, writer, channel)
            }
            let target = request.uri.query.map { "\(request.uri.path)?\($0)" } ?? request.uri.path
            try await writer.writeResponse(
                HTTPResponse(status: .temporaryRedirect, headerFields: [.connection: "close", .location: target]))
            throw RedirectedUpgrade()
        }
    }
}

/// Sorts out a connection's first request before NIO's upgrade handler sees it: an upgrade to anything but
/// WebSocket (e.g. curl's `Upgrade: h2c`) is served as the plain request it also is — NIO's handler would drop its
/// head and answer nothing — and a WebSocket upgrade without what RFC 6455 §4.2.1 asks for gets a problem+json
/// answer (400, or 426 with `Sec-WebSocket-Version: 13`) instead of a closed connection. Removes itself after the
/// first request head (later ones never reach the upgrade handler); a refused request's remaining parts are dropped.
final class UpgradeRequestFilter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private var refused = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused else { return }
        guard case .head(var head) = unwrapInboundIn(data) else { return context.fireChannelRead(data) }
        let protocols = Self.tokens(head.headers, "upgrade")
        if protocols.contains("websocket") {
            if let problem = Self.problem(head) { return refuse(problem, head, context: context) }
        } else if !protocols.isEmpty {
            let connection = head.headers[canonicalForm: "connection"].filter { $0.lowercased() != "upgrade" }
            head.headers.remove(name: "upgrade")
            head.headers.replaceOrAdd(name: "connection", value: connection.joined(separator: ", "))
            if connection.isEmpty { head.headers.remove(name: "connection") }
        }
        context.fireChannelRead(wrapInboundOut(.head(head)))
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    /// What is wrong with a WebSocket upgrade request, if anything.
    static func problem(_ head: HTTPRequestHead) -> Problem? {
        guard tokens(head.headers, "connection").contains("upgrade") else {
            return Problem(
                .badRequest, code: "invalid_upgrade",
                detail: "A WebSocket upgrade needs the headers Connection: Upgrade and Upgrade: websocket.")
        }
        guard head.headers["sec-websocket-version"].first?.trimmingCharacters(in: .whitespaces) == "13" else {
            var problem = Problem(
                .upgradeRequired, code: "unsupported_websocket_version",
                detail: "This server speaks WebSocket version 13 (RFC 6455).")
            problem.headers[.secWebSocketVersion] = "13"
            return problem
        }
        guard let key = head.headers["sec-websocket-key"].first,
            Data(base64Encoded: key.trimmingCharacters(in: .whitespaces))?.count == 16
        else {
            return Problem(
                .badRequest, code: "invalid_websocket_key",
                detail: "Sec-WebSocket-Key must be 16 random bytes in base64 (RFC 6455 §4.1).")
        }
        return nil
    }

    private static func tokens(_ headers: HTTPHeaders, _ name: String) -> [String] {
        headers[canonicalForm: name].map { $0.lowercased() }
    }

    private func refuse(_ problem: Problem, _ request: HTTPRequestHead, context: ChannelHandlerContext) {
        refused = true
        let (head, body) = problem.refusedUpgrade(
            requestID: RequestID.accept(request.headers["x-request-id"].first),
            path: String(request.uri.prefix { $0 != "?" }))
        var headers = HTTPHeaders()
        for field in head.headerFields { headers.add(name: field.name.rawName, value: field.value) }
        let status = HTTPResponseStatus(statusCode: head.status.code)
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}

extension Problem {
    /// The answer to an upgrade refused before the `101` (by ``UpgradeRequestFilter`` or by the endpoint): the
    /// problem+json document with its request id, closing the connection.
    func refusedUpgrade(requestID: String, path: String) -> (head: HTTPResponse, body: ByteBuffer) {
        let body = body(requestID: requestID, instance: path)
        var head = HTTPResponse(status: status, headerFields: headers)
        head.headerFields[.contentType] = "application/problem+json"
        head.headerFields[.contentLength] = "\(body.readableBytes)"
        head.headerFields[.requestID] = requestID
        head.headerFields[.connection] = "close"
        return (head, body)
    }
}
