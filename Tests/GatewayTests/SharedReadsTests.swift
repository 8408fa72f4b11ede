import Synchronization
import Testing

@testable import Gateway

@Suite("Shared reads")
struct SharedReadsTests {
    /// Reads that each wait until the test lets them finish, numbered in the order they started.
    final class Reads: Sendable {
        private struct State {
            var started = 0
            var gates: [Int: CheckedContinuation<Void, Never>] = [:]
            var failing: Set<Int> = []
        }
        private let state = Mutex(State())

        struct Failed: Error {}

        var started: Int { state.withLock { $0.started } }

        func read(_ key: String) async throws -> String {
            let number = state.withLock { state in
                state.started += 1
                return state.started
            }
            await withCheckedContinuation { gate in state.withLock { $0.gates[number] = gate } }
            if state.withLock({ $0.failing.contains(number) }) { throw Failed() }
            return "\(key)#\(number)"
        }

        /// Lets read `number` finish (once it has started), failing it if asked.
        func finish(_ number: Int, failing: Bool = false) async {
            while true {
                let gate = state.withLock { state in
                    if failing { state.failing.insert(number) }
                    return state.gates.removeValue(forKey: number)
                }
                if let gate { return gate.resume() }
                try? await Task.sleep(for: .milliseconds(1))
            }
        }
    }

    static func eventually(_ condition: () -> Bool, sourceLocation: SourceLocation = #_sourceLocation) async {
        let start = ContinuousClock.now
        while !condition() {
            guard ContinuousClock.now - start < .seconds(10) else {
                Issue.record("still not so after 10 s", sourceLocation: sourceLocation)
                return
            }
            try? await Task.sleep(for: .milliseconds(1))
        }
    }

    @Test(
        "callers asking while a read runs share the next read, which starts after it; a failure fails only its own callers"
    )
    func sharing() async throws {
        let reads = Reads()
        let shared = SharedReads<String, String> { try await reads.read($0) }

        let first = Task { try await shared.value(of: "board") }
        await Self.eventually { reads.started == 1 }
        // Three callers arrive while read 1 runs: none of them may take its answer (it may predate them).
        let later = (0..<3).map { _ in Task { try await shared.value(of: "board") } }
        let other = Task { try await shared.value(of: "other") }
        await Self.eventually { shared.waiting(for: "board") == 3 && reads.started == 2 }
        #expect(reads.started == 2)  // read 1 of "board" and read 2 of "other": no read per caller
        await reads.finish(1)
        #expect(try await first.value == "board#1")
        await Self.eventually { reads.started == 3 }
        await reads.finish(3)
        for task in later { #expect(try await task.value == "board#3") }
        await reads.finish(2)
        #expect(try await other.value == "other#2")
        await Self.eventually { shared.waiting(for: "board") == nil }

        // A read that fails fails its callers; the next caller gets a read of its own.
        let failing = Task { try await shared.value(of: "board") }
        await Self.eventually { reads.started == 4 }
        await reads.finish(4, failing: true)
        await #expect(throws: Reads.Failed.self) { try await failing.value }
        let again = Task { try await shared.value(of: "board") }
        await Self.eventually { reads.started == 5 }
        await reads.finish(5)
        #expect(try await again.value == "board#5")
        await Self.eventually { shared.waiting(for: "board") == nil }
    }
}
