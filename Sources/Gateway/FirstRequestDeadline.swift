public import HummingbirdCore
import HummingbirdWebSocket
public import Logging
public import NIOCore
import NIOHTTP1

/// A connection must deliver its first complete request head within a deadline, or it is closed.
///
/// Hummingbird's idle timeout starts counting only once a first request has been read when WebSocket upgrades are
/// possible, so a client sending its first headers a byte a minute would hold its connection for ever. This handler
/// sits right after the HTTP decoder, closes the channel if no request head arrives in time, and removes itself at
/// the first one (later requests fall under the idle timeout; an upgraded connection under WebSocket pings).
final class FirstRequestDeadlineHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart

    let timeout: TimeAmount
    private var timer: Scheduled<Void>?

    init(timeout: TimeAmount) { self.timeout = timeout }

    func handlerAdded(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: timeout) { loopBound.value.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        context.fireChannelRead(data)
        if case .head = part {
            timer?.cancel()
            timer = nil
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }
}

/// A child channel that adds ``FirstRequestDeadlineHandler`` after the HTTP decoder of the channel it wraps.
struct FirstRequestDeadlineChannel<Base: ServerChildChannel>: ServerChildChannel {
    let base: Base
    let timeout: TimeAmount

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Base.Value> {
        base.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let decoder = try channel.pipeline.syncOperations.handler(
                type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try channel.pipeline.syncOperations.addHandler(
                FirstRequestDeadlineHandler(timeout: timeout), position: .after(decoder))
            return value
        }
    }

    func handle(value: Base.Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}
