import Crypto
import Foundation
public import Logging
public import NIOCore
public import NIOPosix
public import ServiceLifecycle
import Synchronization
import Tracing

/// A pool of pipelined Redis connections.
///
/// Commands are spread round-robin over `poolSize` connections, each pipelining any number of concurrent commands
/// (hiredis parses replies inside the NIO pipeline, so no event loop ever blocks). A connection that fails or times
/// out is dropped and re-established on next use. Blocking commands (BLPOP, MULTI across awaits) are not supported
/// and not needed: atomic multi-step work uses Lua scripts.
public final class RedisClient: Sendable {
    public let url: RedisURL
    let timeout: Duration
    let group: any EventLoopGroup
    let logger: Logger
    private let slots: [SlotBox]
    private let next = Atomic<Int>(0)
    private let closed = Atomic<Bool>(false)
    private let metrics = RedisMetrics()

    private enum Slot: Sendable {
        case idle
        case connecting(EventLoopFuture<RedisConnection>)
        case connected(RedisConnection)
    }

    /// One pool slot; a class because `Mutex` cannot live in an array.
    private final class SlotBox: Sendable {
        let state = Mutex(Slot.idle)  // requests and close callbacks race on it

        func withLock<T: Sendable>(_ body: (inout Slot) -> T) -> T { state.withLock { body(&$0) } }
    }

    public init(
        url: RedisURL,
        poolSize: Int,
        timeout: Duration,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger
    ) {
        self.url = url
        self.timeout = timeout
        self.group = group
        self.logger = logger
        slots = (0..<max(1, poolSize)).map { _ in SlotBox() }
    }

    /// Sends one command. Server error replies throw ``RedisClientError`` with kind `.server`.
    @discardableResult
    public func send(_ arguments: [RedisArgument]) async throws -> RESPValue {
        try await metrics.measure(arguments.first) { try await unmeasuredSend(arguments) }
    }

    private func unmeasuredSend(_ arguments: [RedisArgument]) async throws -> RESPValue {
        guard !closed.load(ordering: .relaxed) else { throw RedisClientError(.connectionClosed, "client closed") }
        let index = next.wrappingAdd(1, ordering: .relaxed).oldValue % slots.count
        let connection = try await connection(at: index)
        do {
            return try await connection.send(arguments, timeout: timeout)
        } catch let error as RedisClientError where error.kind == .notSent && !closed.load(ordering: .relaxed) {
            // Redis never saw the command, so one retry on a fresh connection cannot apply it twice. A command in
            // flight when a connection drops is not retried: SET NX or a rate-limit script must not run twice.
            let fresh = try await self.connection(at: index)
            return try await fresh.send(arguments, timeout: timeout)
        }
    }

    /// PING, for readiness checks.
    public func ping() async throws {
        let reply = try await send(["PING"])
        guard reply.string == "PONG" else { throw RedisClientError(.unexpectedReply, "PING did not answer PONG") }
    }

    /// Runs a Lua script by SHA, loading it on the first NOSCRIPT.
    public func evaluate(_ script: RedisScript, keys: [String], arguments: [RedisArgument]) async throws -> RESPValue {
        let tail = [RedisArgument(keys.count)] + keys.map { RedisArgument($0) } + arguments
        do {
            return try await send(["EVALSHA", RedisArgument(script.sha1)] + tail)
        } catch let error as RedisClientError where error.kind == .server && error.message.hasPrefix("NOSCRIPT") {
            return try await send(["EVAL", RedisArgument(script.source)] + tail)
        }
    }

    /// Deletes every key that starts with `prefix` (SCAN and UNLINK in batches); returns how many went.
    public func deleteKeys(matchingPrefix prefix: String) async throws -> Int {
        // SCAN's MATCH is a glob: escape its special characters in the prefix.
        var pattern = ""
        for character in prefix {
            if "*?[]\\".contains(character) { pattern.append("\\") }
            pattern.append(character)
        }
        pattern.append("*")
        var cursor = "0"
        var deleted = 0
        repeat {
            let reply = try await send([
                "SCAN", RedisArgument(cursor), "MATCH", RedisArgument(pattern), "COUNT", "1000",
            ])
            guard case .array(let parts) = reply, parts.count == 2, let next = parts[0].string,
                case .array(let keys) = parts[1]
            else { throw RedisClientError(.unexpectedReply, "SCAN did not answer [cursor, keys]") }
            let names = keys.compactMap(\.bytes).map { RedisArgument(bytes: $0) }
            if !names.isEmpty { deleted += Int(try await send(["UNLINK"] + names).integer ?? 0) }
            cursor = next
        } while cursor != "0"
        return deleted
    }

    /// Closes every connection; later commands fail.
    public func close() async {
        closed.store(true, ordering: .relaxed)
        for slot in slots {
            let state = slot.withLock { state -> Slot in
                defer { state = .idle }
                return state
            }
            switch state {
            case .connected(let connection): await connection.close()
            case .connecting(let future): if let connection = try? await future.get() { await connection.close() }
            case .idle: break
            }
        }
    }

    private func connection(at index: Int) async throws -> RedisConnection {
        let slot = slots[index]
        enum Action {
            case use(RedisConnection), wait(EventLoopFuture<RedisConnection>), connect(
                EventLoopPromise<RedisConnection>)
        }
        let action = slot.withLock { state -> Action in
            switch state {
            case .connected(let connection) where connection.isActive:
                return .use(connection)
            case .connecting(let future):
                return .wait(future)
            case .connected, .idle:
                let promise = group.any().makePromise(of: RedisConnection.self)
                state = .connecting(promise.futureResult)
                return .connect(promise)
            }
        }
        switch action {
        case .use(let connection):
            return connection
        case .wait(let future):
            return try await future.get()
        case .connect(let promise):
            do {
                let connection = try await RedisConnection.connect(to: url, timeout: timeout, group: group)
                slot.withLock { (state: inout Slot) in state = .connected(connection) }
                metrics.connections.increment()
                connection.channel.closeFuture.whenComplete { [logger, metrics] _ in
                    metrics.connections.decrement()
                    slot.withLock { state in
                        if case .connected(let current) = state, current.channel === connection.channel {
                            state = .idle
                        }
                    }
                    logger.debug("redis connection closed", metadata: ["slot": "\(index)"])
                }
                promise.succeed(connection)
                return connection
            } catch {
                slot.withLock { (state: inout Slot) in state = .idle }
                promise.fail(error)
                throw error
            }
        }
    }
}

extension RedisClient: Service {
    /// Keeps the pool open until graceful shutdown, then closes it.
    public func run() async throws {
        try? await gracefulShutdown()
        await close()
    }
}

/// The pool's figures (``MetricFamilies``), per command name; the names are constants of our code.
final class RedisMetrics: Sendable {
    struct Command: Sendable {
        let name: String
        let ok: MetricCounter
        let error: MetricCounter
        let failed: MetricCounter
        let seconds: MetricHistogram
    }

    let connections = MetricFamilies.redisConnections.gauge()
    let inFlight = MetricFamilies.redisInFlight.gauge()
    private let commands = Mutex<[RedisArgument: Command]>([:])  // every concurrent send looks up its command

    func measure(_ name: RedisArgument?, _ body: () async throws -> RESPValue) async throws -> RESPValue {
        let command = self.command(name)
        return try await TracingSetup.withChildSpan(
            "redis \(command.name)",
            attributes: {
                $0["db.system"] = "redis"
                $0["db.operation.name"] = command.name
            }
        ) {
            try await measured(command, body)
        }
    }

    private func measured(_ command: Command, _ body: () async throws -> RESPValue) async throws -> RESPValue {
        let start = ContinuousClock.now
        inFlight.increment()
        defer {
            inFlight.decrement()
            command.seconds.record(ContinuousClock.now - start)
        }
        do {
            let reply = try await body()
            command.ok.increment()
            return reply
        } catch let error as RedisClientError where error.kind == .server {
            command.error.increment()
            throw error
        } catch {
            command.failed.increment()
            throw error
        }
    }

    /// The series of a command, looked up by its name as sent (our code's constants), so the label is made once.
    private func command(_ argument: RedisArgument?) -> Command {
        let key = argument ?? ""
        return commands.withLock { known in
            if let command = known[key] { return command }
            let name = String(decoding: key.bytes.prefix(16), as: UTF8.self).uppercased()
            let label = name.allSatisfy { $0.isASCII && ($0.isLetter || $0 == "_") } && !name.isEmpty ? name : "OTHER"
            let command = Command(
                name: label,
                ok: MetricFamilies.redisCommands.counter(label, "ok"),
                error: MetricFamilies.redisCommands.counter(label, "error"),
                failed: MetricFamilies.redisCommands.counter(label, "failed"),
                seconds: MetricFamilies.redisCommandSeconds.histogram(label))
            known[key] = command
            return command
        }
    }
}

/// A Lua script with its SHA-1, run with EVALSHA.
public struct RedisScript: Sendable {
    public let source: String
    public let sha1: String

    public init(_ source: String) {
        self.source = source
        sha1 = Insecure.SHA1.hash(data: Array(source.utf8)).hexEncoded
    }
}
