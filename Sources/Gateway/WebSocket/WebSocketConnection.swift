import NIOCore
import NIOWebSocket

/// What an endpoint does with an upgraded connection. Its calls come from the connection's event loop, one at a time.
protocol WebSocketSession: AnyObject, Sendable {
    /// The `101` is out and frames flow.
    func opened(_ connection: WebSocketConnection)
    /// A complete text message from the client (at most ``WebSocketConnection/maximumMessage`` bytes, valid UTF-8).
    func received(_ text: String, on connection: WebSocketConnection)
    /// The connection is gone, closed by either side or dropped; nothing more is sent.
    func closed()
}

/// One upgraded WebSocket connection, served by a channel handler with no task of its own (docs/INTERACTIONS.md
/// "WebSockets", docs/PERFORMANCE-NOTES.md "P5"): it answers pings, pings an idle client, runs the closing handshake,
/// assembles the client's (short) messages and hands them to its ``WebSocketSession``.
///
/// Its state lives on the channel's event loop; ``send(_:)`` and ``close(_:reason:)`` may be called from anywhere and
/// hop there. The `…OnLoop` methods are for code already on the loop (the leaderboard fan-out writes every
/// connection of a loop in one pass and flushes each once).
final class WebSocketConnection: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    // @unchecked: every mutable property is touched only on `eventLoop`: the handler callbacks and the `…OnLoop`
    // methods run there, `send` and `close` hop there.
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    /// Most bytes of one message from a client (clients send only short control texts).
    static let maximumMessage = 1024
    /// Most bytes of one frame from a client; a longer one is a protocol error (NIO's decoder closes with 1009).
    static let maximumFrame = 1 << 14
    /// Frames a connection may have waiting in user space (beyond the kernel's socket buffer) before its client
    /// counts as too slow and is closed with 4408: its write buffer's high mark, well above a full snapshot
    /// (200 records).
    static let unsentBytesLimit = 1 << 20
    /// How long an idle connection waits between pings, and for the pong of the last one.
    static let pingInterval = TimeAmount.seconds(30)
    /// How long a close frame waits for the client's before the connection is dropped.
    static let closeTimeout = TimeAmount.seconds(10)

    let channel: any Channel
    var eventLoop: any EventLoop { channel.eventLoop }
    /// Whether the connection's unsent bytes are below its write buffer's high mark.
    var isWritable: Bool { channel.isWritable }

    /// A text frame encoded once (header and payload, unmasked as a server's are) for many connections: written below
    /// NIO's frame encoder, each connection's write is one buffer shared by all of them, not a header made per
    /// connection beside the payload.
    struct EncodedFrame: Sendable {
        let bytes: ByteBuffer
        /// The payload alone, for a connection without NIO's encoder (tests on an embedded channel).
        let text: ByteBuffer

        init(text: ByteBuffer) {
            self.text = text
            let length = text.readableBytes
            var bytes = ByteBuffer()
            bytes.reserveCapacity(length + 10)
            bytes.writeInteger(UInt8(0x81))  // FIN, text
            switch length {
            case ..<126: bytes.writeInteger(UInt8(length))
            case ..<65536: bytes.writeMultipleIntegers(UInt8(126), UInt16(length))
            default: bytes.writeMultipleIntegers(UInt8(127), UInt64(length))
            }
            var payload = text
            bytes.writeBuffer(&payload)
            self.bytes = bytes
        }
    }

    private let session: any WebSocketSession
    private var context: ChannelHandlerContext?
    /// NIO's frame encoder's context: an ``EncodedFrame`` is written from it, so it skips the encoder.
    private var encoder: ChannelHandlerContext?
    private enum State { case open, closing, closed }
    private var state = State.open
    private var message: ByteBuffer?  // a fragmented message being assembled
    private var pinger: RepeatedTask?
    private var awaitingPong = false
    private var closeTimer: Scheduled<Void>?

    init(channel: any Channel, session: any WebSocketSession) {
        self.channel = channel
        self.session = session
    }

    // MARK: From anywhere

    /// Sends a text frame (dropped once the connection is closing).
    func send(_ text: ByteBuffer) {
        onLoop {
            $0.writeOnLoop(text)
            $0.flushOnLoop()
        }
    }

    /// Starts the closing handshake with `code` and `reason` (a no-op once closing).
    func close(_ code: WebSocketErrorCode, reason: String) {
        onLoop { $0.closeOnLoop(code, reason: reason) }
    }

    private func onLoop(_ body: @escaping @Sendable (WebSocketConnection) -> Void) {
        if eventLoop.inEventLoop {
            body(self)
        } else {
            eventLoop.execute { body(self) }
        }
    }

    // MARK: On the event loop

    /// Writes a text frame without flushing; whether it wrote (not once closing).
    @discardableResult
    func writeOnLoop(_ text: ByteBuffer) -> Bool {
        guard state == .open, let context else { return false }
        context.write(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, data: text)), promise: nil)
        return true
    }

    /// Writes an encoded text frame without flushing; whether it wrote (not once closing).
    @discardableResult
    func writeOnLoop(_ frame: EncodedFrame) -> Bool {
        guard state == .open, context != nil else { return false }
        guard let encoder else { return writeOnLoop(frame.text) }
        encoder.write(NIOAny(frame.bytes), promise: nil)
        return true
    }

    func flushOnLoop() {
        context?.flush()
    }

    func closeOnLoop(_ code: WebSocketErrorCode, reason: String) {
        guard state == .open, let context else { return }
        state = .closing
        var data = context.channel.allocator.buffer(capacity: 2 + reason.utf8.count)
        data.write(webSocketErrorCode: code)
        data.writeString(String(reason.utf8.prefix(123)) ?? "")
        context.writeAndFlush(
            wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: data)), promise: nil)
        // The client answers with its own close frame, then the server closes the connection; one that does not
        // answer is dropped.
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        closeTimer = context.eventLoop.scheduleTask(in: Self.closeTimeout) { loopBound.value.close(promise: nil) }
    }

    // MARK: ChannelHandler

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        encoder = try? context.pipeline.syncOperations.context(handlerType: WebSocketFrameEncoder.self)
        _ = context.channel.setOption(
            ChannelOptions.writeBufferWaterMark,
            value: .init(low: Self.unsentBytesLimit / 2, high: Self.unsentBytesLimit))
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        pinger = context.eventLoop.scheduleRepeatedTask(
            initialDelay: Self.pingInterval, delay: Self.pingInterval
        ) { _ in loopBound.value.ping() }
        // A client gone before the handler was added is done already.
        if context.channel.isActive { session.opened(self) } else { ended() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        ended()
        self.context = nil
        encoder = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        ended()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        // RFC 6455 §5.1, §5.2: a client masks every frame, and without an extension sets no reserved bit.
        guard frame.maskKey != nil, !frame.rsv1, !frame.rsv2, !frame.rsv3 else {
            return fail(.protocolError, "protocol_error")
        }
        switch frame.opcode {
        case .text, .binary:
            guard message == nil else { return fail(.protocolError, "protocol_error") }
            guard frame.opcode == .text else { return fail(.unacceptableData, "text_only") }
            message = frame.unmaskedData
            if frame.fin { deliver() }
        case .continuation:
            guard var pending = message else { return fail(.protocolError, "protocol_error") }
            message = nil
            var data = frame.unmaskedData
            pending.writeBuffer(&data)
            message = pending
            if frame.fin { deliver() }
        case .ping:
            guard frame.fin, frame.length <= 125 else { return fail(.protocolError, "protocol_error") }
            guard state == .open else { return }
            context.writeAndFlush(
                wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
        case .pong:
            awaitingPong = false
        case .connectionClose:
            receivedClose(frame, context: context)
        default:
            fail(.protocolError, "protocol_error")
        }
        if let message, message.readableBytes > Self.maximumMessage {
            self.message = nil
            fail(.messageTooLarge, "message_too_large")
        }
    }

    // MARK: Internals

    private func deliver() {
        guard let data = message else { return }
        message = nil
        guard data.readableBytes <= Self.maximumMessage else { return fail(.messageTooLarge, "message_too_large") }
        guard let text = String(validating: data.readableBytesView, as: UTF8.self) else {
            return fail(.dataInconsistentWithMessage, "invalid_utf8")
        }
        // While closing, the client's data is read and dropped until its close frame.
        if state == .open { session.received(text, on: self) }
    }

    private func receivedClose(_ frame: WebSocketFrame, context: ChannelHandlerContext) {
        if state == .open {
            // Echo the client's code (RFC 6455 §5.5.1), then close: the server ends the TCP connection.
            state = .closing
            var data = frame.unmaskedData
            var echo = context.channel.allocator.buffer(capacity: 2)
            if let code = data.readWebSocketErrorCode() { echo.write(webSocketErrorCode: code) }
            let channel = context.channel
            context.writeAndFlush(
                wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: echo))
            ).whenComplete { _ in channel.close(promise: nil) }
        } else {
            context.close(promise: nil)
        }
    }

    private func fail(_ code: WebSocketErrorCode, _ reason: String) {
        closeOnLoop(code, reason: reason)
    }

    /// Every ``pingInterval``: a ping, unless the last one is still unanswered, which ends the connection.
    private func ping() {
        guard state == .open, let context else { return }
        if awaitingPong {
            closeOnLoop(.goingAway, reason: "ping_timeout")
            return
        }
        awaitingPong = true
        context.writeAndFlush(
            wrapOutboundOut(
                WebSocketFrame(fin: true, opcode: .ping, data: context.channel.allocator.buffer(capacity: 0))),
            promise: nil)
    }

    private func ended() {
        guard state != .closed else { return }
        state = .closed
        pinger?.cancel()
        pinger = nil
        closeTimer?.cancel()
        closeTimer = nil
        message = nil
        session.closed()
    }
}
