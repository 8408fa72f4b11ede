import Logging
import NIOCore
import NIOPosix

/// Pairs replies with the commands that caused them (Redis answers in order), so one connection pipelines many
/// concurrent commands. In subscribe mode, pushed messages go to `onPush` instead.
final class RedisCommandHandler: ChannelDuplexHandler {
    typealias InboundIn = RESPValue
    typealias OutboundIn = RedisCommand
    typealias OutboundOut = ByteBuffer

    private var pending = CircularBuffer<EventLoopPromise<RESPValue>>(initialCapacity: 64)
    private let onPush: (@Sendable (String, [UInt8]) -> Void)?

    init(onPush: (@Sendable (String, [UInt8]) -> Void)? = nil) {
        self.onPush = onPush
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let command = unwrapOutboundIn(data)
        var buffer = context.channel.allocator.buffer(capacity: 64)
        HiredisCommandFormatter.format(command.arguments, into: &buffer)
        pending.append(command.reply)
        context.write(wrapOutboundOut(buffer), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let value = unwrapInboundIn(data)
        if let onPush, case .array(let parts) = value, parts.count == 3, parts[0].string == "message",
            let channel = parts[1].string, let payload = parts[2].bytes
        {
            onPush(channel, payload)
            return
        }
        guard let promise = pending.popFirst() else {
            context.fireErrorCaught(RedisClientError(.protocolError, "reply without a command"))
            context.close(promise: nil)
            return
        }
        promise.succeed(value)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(RedisClientError(.connectionClosed, "connection closed"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(error)
        context.close(promise: nil)
    }

    private func failAll(_ error: any Error) {
        while let promise = pending.popFirst() { promise.fail(error) }
    }
}

/// A command travelling down the pipeline with the promise for its reply.
struct RedisCommand: Sendable {
    let arguments: [RedisArgument]
    let reply: EventLoopPromise<RESPValue>
}

/// One TCP connection to Redis.
struct RedisConnection: Sendable {
    let channel: any Channel

    static func connect(
        to url: RedisURL,
        timeout: Duration,
        group: any EventLoopGroup,
        onPush: (@Sendable (String, [UInt8]) -> Void)? = nil
    ) async throws -> RedisConnection {
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(.milliseconds(timeout.milliseconds))
                // TCP_NODELAY is a TCP-level option: at the socket level (SOL_SOCKET) the same number is SO_DEBUG, which needs
                // CAP_NET_ADMIN — refused in a container, and silently something else outside one.
                .channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HiredisReplyDecoder()))
                        try channel.pipeline.syncOperations.addHandler(RedisCommandHandler(onPush: onPush))
                    }
                }
                .connect(host: url.host, port: url.port)
                .get()
        } catch {
            throw RedisClientError(.connectionFailed, "cannot connect to \(url.host):\(url.port): \(error)")
        }
        let connection = RedisConnection(channel: channel)
        do {
            if let password = url.password {
                let auth: [RedisArgument] =
                    url.username.map { ["AUTH", RedisArgument($0), RedisArgument(password)] }
                    ?? ["AUTH", RedisArgument(password)]
                try await connection.send(auth, timeout: timeout).expectOK("AUTH")
            }
            if url.database != 0 {
                try await connection.send(["SELECT", RedisArgument(url.database)], timeout: timeout).expectOK("SELECT")
            }
        } catch {
            try? await channel.close()
            throw error
        }
        return connection
    }

    /// Sends one command; a reply slower than `timeout` closes the connection (failing everything in flight on
    /// it) because a pipelined connection cannot skip one reply.
    func send(_ arguments: [RedisArgument], timeout: Duration) async throws -> RESPValue {
        let reply = write(arguments)
        let channel = self.channel
        // Fails every command in flight with .timeout and closes; the pool reconnects on next use.
        let timer = channel.eventLoop.scheduleTask(in: .microseconds(timeout.microseconds)) {
            channel.pipeline.fireErrorCaught(RedisClientError(.timeout, "no reply within \(timeout)"))
        }
        reply.whenComplete { _ in timer.cancel() }
        let value = try await reply.get()
        if case .error(let message) = value { throw RedisClientError(.server, message) }
        return value
    }

    /// Writes one command and returns its reply, which always completes: a write to a closed channel never reaches
    /// the handler, so it fails here with `.notSent`.
    func write(_ arguments: [RedisArgument]) -> EventLoopFuture<RESPValue> {
        let reply = channel.eventLoop.makePromise(of: RESPValue.self)
        let written = channel.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenFailure { _ in
            reply.fail(RedisClientError(.notSent, "connection closed before the command was sent"))
        }
        channel.writeAndFlush(RedisCommand(arguments: arguments, reply: reply), promise: written)
        return reply.futureResult
    }

    var isActive: Bool { channel.isActive }

    func close() async {
        try? await channel.close()
    }
}

extension RESPValue {
    func expectOK(_ command: String) throws {
        guard case .simpleString("OK") = self else {
            throw RedisClientError(.unexpectedReply, "\(command) did not answer OK")
        }
    }
}
