import ServiceKit
import ServiceLifecycle
import TestSupport
import Testing

@Suite("EventBus contract", .timeLimit(.minutes(2)))
struct EventBusContractTests {
    /// Runs `body` with a bus; the Redis bus's subscriber loop runs alongside and is cancelled afterwards.
    func withBus(_ backend: SharedBackend, _ body: (any EventBus) async throws -> Void) async throws {
        switch backend {
        case .inProcess:
            try await body(InProcessEventBus())
        case .redis:
            let client = try TestEnvironment.redisClient()
            let bus = RedisEventBus(
                client: client, prefix: TestEnvironment.uniquePrefix("events"), logger: TestEnvironment.logger)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await bus.run() }
                try await body(bus)
                group.cancelAll()
            }
            await client.close()
        }
    }

    @Test("every subscriber of a channel receives its events in publish order", arguments: SharedBackend.available)
    func fanOutInOrder(backend: SharedBackend) async throws {
        try await withBus(backend) { bus in
            let first = try await bus.subscribe(to: "board")
            let second = try await bus.subscribe(to: "board")
            let other = try await bus.subscribe(to: "elsewhere")
            for value in 0..<20 { try await bus.publish([UInt8(value)], to: "board") }
            try await bus.publish([99], to: "elsewhere")
            var iterators = [first.makeAsyncIterator(), second.makeAsyncIterator()]
            for index in iterators.indices {
                var received: [UInt8] = []
                for _ in 0..<20 { received += await iterators[index].next() ?? [] }
                #expect(received == (0..<20).map(UInt8.init))
            }
            var otherIterator = other.makeAsyncIterator()
            #expect(await otherIterator.next() == [99])
        }
    }

    /// 1,000 payloads: two script runs on Redis, and within a subscriber's buffer (1,024) while nobody reads.
    @Test("payloads published as one step arrive in order, among single ones", arguments: SharedBackend.available)
    func publishMany(backend: SharedBackend) async throws {
        try await withBus(backend) { bus in
            let subscription = try await bus.subscribe(to: "batch")
            try await bus.publish([0], to: "batch")
            try await bus.publish((1...1000).map { [UInt8($0 % 256), UInt8($0 / 256)] }, to: "batch")
            try await bus.publish([[UInt8]](), to: "batch")
            try await bus.publish([[7, 7]], to: "batch")
            var iterator = subscription.makeAsyncIterator()
            #expect(await iterator.next() == [0])
            for value in 1...1000 {
                let received = await iterator.next()
                guard received == [UInt8(value % 256), UInt8(value / 256)] else {
                    Issue.record("payload \(value) arrived as \(String(describing: received))")
                    return
                }
            }
            #expect(await iterator.next() == [7, 7])
        }
    }

    @Test("a subscription that ended does not stop others", arguments: SharedBackend.available)
    func unsubscribe(backend: SharedBackend) async throws {
        try await withBus(backend) { bus in
            let dropped = try await bus.subscribe(to: "c")
            let reader = Task { for await _ in dropped {} }
            reader.cancel()
            await reader.value
            let kept = try await bus.subscribe(to: "c")
            try await bus.publish([1, 2, 3], to: "c")
            var iterator = kept.makeAsyncIterator()
            #expect(await iterator.next() == [1, 2, 3])
        }
    }
}
