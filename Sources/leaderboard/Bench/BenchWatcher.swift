import Foundation
import NIOCore
import NIOPosix

/// A board watcher for the fan-out bench that costs the load generator as little as possible: a raw NIO connection
/// that sends the upgrade request, then reads the server's frames on its event loop and reports each text message's
/// kind — no task, no JSON decoding, no client library per watcher. With 10,000 watchers on the same two cores as
/// the gateway, the SDK's client (a task group, a ping task and a decoding task per connection) took more of the
/// machine than the fan-out it measured. It answers pings (the gateway closes a watcher that does not) and checks
/// nothing else: the SDK's own watcher is covered by the tests.
final class BenchWatcher: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: `buffer` and `upgraded` are used only on the channel's event loop.
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// What a watcher sees: the snapshot after the upgrade, each diff after it, and its end.
    enum Event { case snapshot, diff, ended }

    private let report: @Sendable (Event) -> Void
    private var buffer = ByteBuffer()
    private var upgraded = false
    private var ended = false

    private init(report: @escaping @Sendable (Event) -> Void) { self.report = report }

    /// Connects a watcher of `path`; `report` is called on the connection's event loop.
    static func connect(host: String, port: Int, path: String, report: @escaping @Sendable (Event) -> Void)
        async throws -> any Channel
    {
        let request = [
            "GET \(path) HTTP/1.1", "Host: \(host):\(port)", "Upgrade: websocket", "Connection: Upgrade",
            "Sec-WebSocket-Key: \(Data((0..<16).map { _ in UInt8.random(in: 0...255) }).base64EncodedString())",
            "Sec-WebSocket-Version: 13", "", "",
        ].joined(separator: "\r\n")
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(BenchWatcher(report: report))
                }
            }
            .connect(host: host, port: port).get()
        try await channel.writeAndFlush(ByteBuffer(string: request))
        return channel
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        buffer.writeBuffer(&bytes)
        if !upgraded {
            guard let length = Self.headLength(buffer) else { return }
            guard buffer.getString(at: buffer.readerIndex, length: 12) == "HTTP/1.1 101" else { return finish(context) }
            buffer.moveReaderIndex(forwardBy: length)
            upgraded = true
        }
        while let (opcode, payload) = nextFrame() {
            switch opcode {
            case 0x1:  // text: the snapshot (its sorted keys start with `dataset_version`), or a diff (`at`)
                report(payload.getString(at: payload.readerIndex, length: 3) == "{\"d" ? .snapshot : .diff)
            case 0x9:  // ping: a pong with the same data, masked (with a zero key) as a client's frames must be
                var pong = context.channel.allocator.buffer(capacity: 6 + payload.readableBytes)
                pong.writeBytes([0x8A, 0x80 | UInt8(payload.readableBytes), 0, 0, 0, 0])
                var data = payload
                pong.writeBuffer(&data)
                context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
            case 0x8:
                return finish(context)
            default:
                break
            }
        }
        buffer.discardReadBytes()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !ended {
            ended = true
            report(.ended)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { finish(context) }

    private func finish(_ context: ChannelHandlerContext) {
        context.close(promise: nil)
    }

    /// The length of the response head with its blank line, once it is all in `buffer`.
    private static func headLength(_ buffer: ByteBuffer) -> Int? {
        let bytes = buffer.readableBytesView
        var matched = 0
        for (offset, byte) in bytes.enumerated() {
            matched = byte == (matched % 2 == 0 ? 0x0D : 0x0A) ? matched + 1 : (byte == 0x0D ? 1 : 0)
            if matched == 4 { return offset + 1 }
        }
        return nil
    }

    /// The next whole frame of the server's (unmasked, unfragmented: the gateway sends each message as one frame).
    private func nextFrame() -> (opcode: UInt8, payload: ByteBuffer)? {
        guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
            let second = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt8.self)
        else { return nil }
        var offset = 2
        var length = Int(second & 0x7F)
        if length == 126 {
            guard let extended = buffer.getInteger(at: buffer.readerIndex + 2, as: UInt16.self) else { return nil }
            (length, offset) = (Int(extended), 4)
        } else if length == 127 {
            guard let extended = buffer.getInteger(at: buffer.readerIndex + 2, as: UInt64.self) else { return nil }
            (length, offset) = (Int(clamping: extended), 10)
        }
        guard buffer.readableBytes >= offset + length else { return nil }
        buffer.moveReaderIndex(forwardBy: offset)
        guard let payload = buffer.readSlice(length: length) else { return nil }
        return (first & 0x0F, payload)
    }
}
