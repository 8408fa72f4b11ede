import GRPCCore
import GRPCNIOTransportHTTP2
import Synchronization
import TestSupport
import Testing

@testable import ServiceKit

@Suite("Refreshing DNS resolution", .timeLimit(.minutes(1)))
struct RefreshingDNSTests {
    static func result(_ ports: [Int]) -> NameResolutionResult {
        NameResolutionResult(
            endpoints: ports.map { Endpoint(addresses: [.ipv4(host: "10.0.0.1", port: $0)]) }, serviceConfig: nil)
    }

    @Test("a name is looked up again each interval and its addresses pushed only when they change; failures wait")
    func pushesChanges() async throws {
        // What the lookups return in turn: a first address, the same again, a failure, a new address.
        let answers = Mutex<[Result<[Int], any Error>]>([
            .success([1]), .success([1]), .failure(CancellationError()), .success([1]), .success([2]),
        ])
        let lookups = Mutex(0)
        let sequence = RefreshingResolution(interval: .milliseconds(10)) {
            lookups.withLock { $0 += 1 }
            let next = answers.withLock { $0.isEmpty ? .success([2]) : $0.removeFirst() }
            return Self.result(try next.get())
        }
        var iterator = sequence.makeAsyncIterator()
        #expect(try await iterator.next() == Self.result([1]))
        #expect(try await iterator.next() == Self.result([2]))
        #expect(lookups.withLock { $0 } == 5)
    }

    @Test("a lookup that never succeeds ends only when the channel's task is cancelled")
    func endsOnCancellation() async throws {
        let sequence = RefreshingResolution(interval: .milliseconds(5)) {
            throw RPCError(code: .unavailable, message: "no")
        }
        let task = Task {
            var iterator = sequence.makeAsyncIterator()
            return try await iterator.next()
        }
        try await Task.sleep(for: .milliseconds(50))
        task.cancel()
        await #expect(throws: CancellationError.self) { _ = try await task.value }
    }

    @Test("a real name resolves through the registered factory")
    func resolvesLocalhost() async throws {
        let resolver = RefreshingDNSResolverFactory().resolver(
            for: RefreshingDNSTarget(host: "localhost", port: 9090, interval: .seconds(60)))
        #expect(resolver.updateMode == .push)
        var iterator = resolver.names.makeAsyncIterator()
        let first = try #require(try await iterator.next())
        #expect(first.endpoints.contains { $0.addresses.contains { "\($0)".contains("9090") } })
        #expect(
            GRPCTransports.resolvers.makeResolver(for: GRPCTransports.target(HostPort(host: "auth", port: 9090))) != nil
        )
    }
}
