import Foundation
import HTTPTypes
import HummingbirdTesting
import HummingbirdWSTesting
import NIOWebSocket
import ServiceKit
import Synchronization
import TestSupport
import Testing
import WSClient
import WSCore

@testable import Gateway

/// Every public route has a stated cost budget (docs/SECURITY.md "Cost budgets"); these show each bound holds.
@Suite("Cost bounds of the public edge", .timeLimit(.minutes(3)), .enabled(if: ExternalTools.hasPythonPackages))
struct CostBoundsTests {
    @Test("cache keys hold only declared parameters; reads that reach the services spend a per-client budget")
    func publicReads() async throws {
        var policies = AuthGateway.lenient
        policies.publicReads = RateLimitPolicy(name: "public-read", limit: 3, period: .seconds(3600))
        try await AuthGateway.with(.sqlite, policies: policies) { gateway in
            _ = try await RankingRoutesTests.dataset(gateway)
            let first = try await gateway.request(.get, "/api/v1/stats?utm_source=\(UUID().uuidString)")
            #expect(first.status == .ok && first.headers[HTTPField.Name("X-Cache")!] == "MISS")
            // Undeclared parameters, in any number and order, are the same entry: a hit, free of charge.
            for query in ["", "?a=1", "?b=2&a=1&\(UUID().uuidString)=x"] {
                let reply = try await gateway.request(.get, "/api/v1/stats\(query)")
                #expect(reply.status == .ok && reply.headers[HTTPField.Name("X-Cache")!] == "HIT", "\(query)")
            }
            // Invented values of a declared parameter reach the service: each spends the budget, then 429.
            for _ in 0..<2 {
                expectProblem(
                    try await gateway.request(.get, "/api/v1/stats?dataset_version=\(UUID().uuidString)"), .notFound,
                    "unknown_dataset_version")
            }
            let limited = try await gateway.request(.get, "/api/v1/stats?dataset_version=\(UUID().uuidString)")
            expectProblem(limited, .tooManyRequests, "rate_limited")
            #expect(limited.headers[HTTPField.Name("RateLimit-Policy")!] == "\"public-read\";q=3;w=3600")
            // Hits stay free once the budget is gone.
            #expect(try await gateway.request(.get, "/api/v1/stats?x=9").status == .ok)
            // A declared parameter that does not parse is a 400 before any cache or service.
            expectProblem(
                try await gateway.request(.get, "/api/v1/benchmarks?limit=1&limit=2"), .badRequest, "invalid_limit")
        }
    }

    @Test("whole-board exports have their own budget per client")
    func exports() async throws {
        var policies = AuthGateway.lenient
        policies.exports = RateLimitPolicy(name: "export", limit: 1, period: .seconds(3600))
        try await AuthGateway.with(.sqlite, policies: policies) { gateway in
            _ = try await RankingRoutesTests.dataset(gateway)
            #expect(try await gateway.request(.get, "/api/v1/benchmarks/export?format=csv").status == .ok)
            expectProblem(
                try await gateway.request(.get, "/api/v1/benchmarks/export?format=json"), .tooManyRequests,
                "rate_limited")
        }
    }

    /// Runs a Python snippet against the live gateway on `port`; returns what it prints.
    static func python(_ script: String, port: Int) async throws -> String {
        try await ExternalTools.run(ExternalTools.python, ["-c", script, String(port)])
    }

    @Test("a connection that sends its headers a byte at a time, or stops, is closed after the idle timeout")
    func slowHeaders() async throws {
        try await AuthGateway.with(
            .sqlite, live: true, configure: { $0.idleTimeout = .seconds(1) }, extend: { _ in }
        ) { gateway in
            let port = try #require(gateway.client.port)
            // Half a request line and a header, then silence: the server must hang up, not wait.
            let printed = try await Self.python(
                """
                import socket, sys, time
                s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
                s.sendall(b"GET /health/live HTTP/1.1\\r\\nHost: x\\r\\n")
                s.settimeout(30)
                start = time.monotonic()
                data = s.recv(4096)
                print("closed" if data == b"" else "answered", round(time.monotonic() - start))
                """, port: port)
            #expect(printed.hasPrefix("closed"), "\(printed)")
        }
    }

    @Test("a signed request with bad headers is refused before its body is read")
    func headersBeforeBody() async throws {
        try await AuthGateway.with(.sqlite, live: true, configure: { $0.idleTimeout = .seconds(20) }, extend: { _ in })
        { gateway in
            let port = try #require(gateway.client.port)
            // An 8 MB body announced, none sent, and a request time an hour old: the answer must come at once.
            let printed = try await Self.python(
                """
                import socket, sys, time
                s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
                stale = str(int(time.time()) - 3600)
                s.sendall((
                    "POST /api/v1/benchmarks/0123/submit HTTP/1.1\\r\\nHost: x\\r\\nContent-Type: application/json\\r\\n"
                    "Content-Length: 8000000\\r\\nX-Device-ID: 0fa60e85d629dda79f882dd836da4a47\\r\\n"
                    "X-Request-Time: " + stale + "\\r\\nX-Nonce: 5f2b8c1e9d4a4c3b8e7f1a2b3c4d5e6f\\r\\n"
                    "X-Signature: " + "0" * 64 + "\\r\\n\\r\\n").encode())
                s.settimeout(10)
                head = s.recv(4096).split(b"\\r\\n")[0].decode()
                print(head)
                """, port: port)
            #expect(printed.hasPrefix("HTTP/1.1 401"), "\(printed)")
        }
    }

    @Test("WebSocket upgrades are limited per client; an invented framework board is refused; snapshots are coalesced")
    func webSockets() async throws {
        var policies = AuthGateway.lenient
        policies.webSockets = RateLimitPolicy(name: "websocket", limit: 2, period: .seconds(3600))
        try await AuthGateway.with(.sqlite, policies: policies, live: true) { gateway in
            let dataset = try await RankingRoutesTests.dataset(gateway)
            let client = BenchmarkClient(gateway: gateway, device: try await gateway.activeDevice())
            _ = try await client.run(version: dataset.version, checksum: dataset.checksum, tps: 100, key: "k")

            // 1: a framework nobody has submitted for is no board to watch (and starts no upstream watch).
            let invented = try await gateway.client.ws("/api/v1/ws/leaderboard?framework=\(UUID().uuidString)") {
                inbound, _, _ in for try await _ in inbound.messages(maxSize: 1 << 16) {}
            }
            #expect(
                invented?.closeCode == .init(codeNumber: 4404) && invented?.reason == "unknown_board",
                "\(String(describing: invented))")

            // 2: a client asking for a snapshot twenty times at once gets one more, not twenty: after the second
            // snapshot it listens three more seconds (past the 2 s spacing) for any third.
            let snapshots = Mutex(0)
            _ = try await gateway.client.ws("/api/v1/ws/leaderboard") { inbound, outbound, _ in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for try await message in inbound.messages(maxSize: 1 << 20) {
                        guard case .text(let text) = message, text.contains("\"snapshot\"") else { continue }
                        let count = snapshots.withLock {
                            $0 += 1
                            return $0
                        }
                        if count == 1 {
                            for _ in 0..<20 { try await outbound.write(.text("snapshot please")) }
                        } else if count == 2 {
                            group.addTask {
                                try await Task.sleep(for: .seconds(3))
                                try await outbound.close(.normalClosure, reason: nil)
                            }
                        }
                    }
                    group.cancelAll()
                }
            }
            #expect(snapshots.withLock { $0 } == 2)

            // 3: the third upgrade from this address within the hour is refused before it happens.
            let upgraded = Mutex(false)
            do {
                _ = try await gateway.client.ws("/api/v1/ws/leaderboard") { _, _, _ in upgraded.withLock { $0 = true } }
            } catch {
                // Refused: the client reports the failed upgrade as an error.
            }
            #expect(!upgraded.withLock { $0 }, "a third WebSocket upgrade was allowed")
            // The refusal is the limit's own answer: 429 with Retry-After, as problem+json, and no 101.
            let limited = try await Self.python(
                """
                import socket, sys
                s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=60)
                s.sendall(b"GET /api/v1/ws/leaderboard HTTP/1.1\\r\\nHost: x\\r\\nUpgrade: websocket\\r\\n"
                          b"Connection: Upgrade\\r\\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\n"
                          b"Sec-WebSocket-Version: 13\\r\\n\\r\\n")
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
                print(data.decode())
                """, port: try #require(gateway.client.port))
            #expect(limited.hasPrefix("HTTP/1.1 429"), "\(limited)")
            #expect(limited.lowercased().contains("retry-after:"), "\(limited)")
            #expect(limited.contains("application/problem+json") && limited.contains("\"rate_limited\""), "\(limited)")
        }
    }
}
