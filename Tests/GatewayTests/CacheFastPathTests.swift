import CompressNIO
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import ServiceKit
import TestSupport
import Testing

@testable import Gateway

/// Cache hits answered on the event loop, before the middleware chain (``CacheFastPath``): the same answers the chain
/// gives, on a live gateway over loopback.
@Suite("Gateway cache fast path", .timeLimit(.minutes(4)))
struct CacheFastPathTests {
    /// The headers of an answer that do not change from one request to the next.
    static func stable(_ headers: HTTPFields) -> [String: String] {
        var kept: [String: String] = [:]
        for field in headers where ![.requestID, .date, .xCache].contains(field.name) {
            kept[field.name.canonicalName, default: ""] += field.value
        }
        return kept
    }

    @Test(
        "a cache hit is answered before the middleware chain with the chain's headers, 304, gzip and request id, and a write is visible on the next read",
        arguments: StorageBackend.available)
    func earlyAnswers(_ backend: StorageBackend) async throws {
        try await AuthGateway.with(backend, live: true, configure: { $0.corsOrigins = ["https://board.example"] }) {
            gateway in
            let dataset = try await RankingRoutesTests.dataset(gateway)
            let first = BenchmarkClient(gateway: gateway, device: try await gateway.activeDevice())
            let submitted = try await first.run(
                version: dataset.version, checksum: dataset.checksum, tps: 100, key: UUID().uuidString)
            try #require(submitted.status == .created, "\(submitted.text)")
            // A board of two records: past the 1 KiB below which nothing is gzipped.
            let other = BenchmarkClient(gateway: gateway, device: try await gateway.activeDevice())
            let otherSubmitted = try await other.run(
                version: dataset.version, checksum: dataset.checksum, tps: 90, key: UUID().uuidString)
            try #require(otherSubmitted.status == .created, "\(otherSubmitted.text)")
            let board = "/api/v1/benchmarks?dataset_version=\(dataset.version)"

            let miss = try await gateway.request(.get, board, headers: [.requestID: "fill-1"])
            #expect(miss.status == .ok)
            #expect(miss.headers[.xCache] == "MISS")
            try #require(miss.text.utf8.count > CompressionMiddleware.smallest, "\(miss.text.utf8.count)")
            let early = try await gateway.request(.get, board, headers: [.requestID: "early-1"])
            #expect(gateway.earlyAnswers.requestIDs == ["early-1"])
            #expect(early.status == .ok)
            #expect(early.headers[.xCache] == "HIT")
            #expect(early.headers[.requestID] == "early-1")
            #expect(early.headers[.server] == "leaderboard")
            #expect(early.headers[.date]?.hasSuffix(" GMT") == true)
            #expect(Self.stable(early.headers) == Self.stable(miss.headers))
            #expect(early.text == miss.text)

            // A request from a page on another origin goes through the chain (CORS), from the same entry.
            let cors = try await gateway.request(
                .get, board, headers: [.requestID: "cors-1", .origin: "https://board.example"])
            #expect(cors.headers[.xCache] == "HIT")
            #expect(cors.headers[.accessControlAllowOrigin] == "https://board.example")
            #expect(cors.headers[.vary]?.contains("Accept-Encoding") == true, "\(cors.headers)")
            #expect(cors.text == miss.text)

            // Revalidation and gzip: the chain's answers, early.
            let etag = try #require(miss.headers[.eTag])
            let revalidated = try await gateway.request(
                .get, board, headers: [.requestID: "early-304", .ifNoneMatch: etag])
            #expect(revalidated.status == .notModified)
            #expect(revalidated.response.body.readableBytes == 0)
            #expect(revalidated.headers[.eTag] == etag)
            let zipped = try await gateway.request(
                .get, board, headers: [.requestID: "early-gzip", .acceptEncoding: "gzip"])
            #expect(zipped.headers[.contentEncoding] == "gzip")
            var compressed = zipped.response.body
            #expect(String(buffer: try compressed.decompress(with: .gzip())) == miss.text)
            let zippedByChain = try await gateway.request(
                .get, board, headers: [.origin: "https://board.example", .acceptEncoding: "gzip"])
            #expect(zippedByChain.headers[.contentEncoding] == "gzip")
            #expect(zippedByChain.response.body == zipped.response.body)
            #expect(gateway.earlyAnswers.requestIDs == ["early-1", "early-304", "early-gzip"])

            // Another spelling of the same query is answered by the chain once, then early.
            let spelled = board + "&utm_source=x"
            #expect(try await gateway.request(.get, spelled, headers: [.requestID: "spelled-1"]).text == miss.text)
            #expect(try await gateway.request(.get, spelled, headers: [.requestID: "spelled-2"]).text == miss.text)
            #expect(gateway.earlyAnswers.requestIDs.suffix(1) == ["spelled-2"])

            // A submit invalidates the entry: the very next read is the new board, from the chain.
            let second = BenchmarkClient(gateway: gateway, device: try await gateway.activeDevice())
            let better = try await second.run(
                version: dataset.version, checksum: dataset.checksum, tps: 200, key: UUID().uuidString)
            try #require(better.status == .created, "\(better.text)")
            let after = try await gateway.request(.get, board, headers: [.requestID: "after-1", .ifNoneMatch: etag])
            #expect(after.status == .ok)
            #expect(after.headers[.eTag] != etag)
            #expect((after.json["records"] as? [[String: Any]])?.count == 3)
            #expect(!gateway.earlyAnswers.requestIDs.contains("after-1"))

            // An invalid URL never reaches an entry.
            expectProblem(
                try await gateway.request(.get, board + "%00"), .badRequest, "invalid_character")
        }
    }

    @Test(
        "pipelined requests are answered in order, a closing request closes, and early answers keep a connection alive past the idle timeout"
    )
    func connections() async throws {
        try await AuthGateway.with(
            .sqlite, live: true, configure: { $0.idleTimeout = .seconds(2) },
            extend: { router in
                router.get("/test/slow") { _, _ in
                    try await Task.sleep(for: .milliseconds(300))
                    return "late"
                }
            }
        ) { gateway in
            let port = try #require(gateway.client.port)
            let board = "/api/v1/datasets?limit=5"
            #expect(try await gateway.request(.get, board).headers[.xCache] == "MISS")
            let printed = try await CostBoundsTests.python(
                """
                import socket, sys, time
                def read_response(s, buffered):
                    while b"\\r\\n\\r\\n" not in buffered:
                        chunk = s.recv(65536)
                        if not chunk:
                            return None, buffered
                        buffered += chunk
                    head, _, rest = buffered.partition(b"\\r\\n\\r\\n")
                    fields = dict(line.split(b": ", 1) for line in head.split(b"\\r\\n")[1:])
                    length = int(fields.get(b"Content-Length", b"0"))
                    while len(rest) < length:
                        rest += s.recv(65536)
                    return fields.get(b"X-Request-ID", b"").decode(), rest[length:]
                def request(path, rid, extra=""):
                    return ("GET " + path + " HTTP/1.1\\r\\nHost: x\\r\\nX-Request-ID: " + rid + "\\r\\n" + extra + "\\r\\n").encode()
                s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
                s.settimeout(10)
                board = "\(board)"
                s.sendall(request("/test/slow", "p-1") + request(board, "p-2") + request(board, "p-3"))
                order, buffered = [], b""
                for _ in range(3):
                    rid, buffered = read_response(s, buffered)
                    order.append(rid)
                print(" ".join(order))
                # One request every 0.25 s for 3 s, half as long again as the 2 s idle timeout, all answered early.
                # (The gaps leave 1.75 s to spare: a loaded machine that stalls this script longer would see the
                # idle close, and the printed longest gap says so.)
                kept, longest, answered = 0, 0.0, time.monotonic()
                for i in range(12):
                    time.sleep(0.25)
                    longest = max(longest, time.monotonic() - answered)
                    try:
                        s.sendall(request(board, "k-%d" % i))
                        rid, buffered = read_response(s, buffered)
                    except OSError:
                        break
                    if rid != "k-%d" % i:
                        break
                    kept, answered = kept + 1, time.monotonic()
                print("kept", kept)
                print("longest gap %.2f s" % longest)
                try:
                    s.sendall(request(board, "c-1", "Connection: close\\r\\n"))
                    rid, buffered = read_response(s, buffered)
                    print(rid, "closed" if s.recv(1) == b"" else "open")
                except OSError as error:
                    print("c-1 not answered:", error)
                """, port: port)
            let lines = printed.split(separator: "\n").map(String.init)
            #expect(
                lines.filter { !$0.hasPrefix("longest gap") } == ["p-1 p-2 p-3", "kept 12", "c-1 closed"], "\(printed)")
            let early = gateway.earlyAnswers.requestIDs
            // Behind a request still being answered, the hits waited their turn in the chain.
            #expect(!early.contains("p-2") && !early.contains("p-3"), "\(early)")
            #expect(early.filter { $0.hasPrefix("k-") }.count == 12, "\(early)")
            #expect(!early.contains("c-1"), "\(early)")
        }
    }

    @Test(
        "chunk downloads are answered on the event loop with the route's headers and bytes, charged to the budget; revalidations, unchecked files and an address over budget take the route; pipelined downloads keep their order",
        arguments: [false, true])
    func chunkDownloads(suspendingLimiter: Bool) async throws {
        var policies = AuthGateway.lenient
        // Each 64 KiB chunk of the test dataset is a little over 64 KiB sealed: two units of the budget.
        policies.download = RateLimitPolicy(name: "download", limit: 24, period: .seconds(3600))
        try await AuthGateway.with(
            .sqlite, policies: policies, live: true,
            rateLimiter: suspendingLimiter ? SuspendingRateLimiter() : nil
        ) { gateway in
            let port = try #require(gateway.client.port)
            let uploaded = try await gateway.upload(
                "version=early-1&chunk_size=65536", DatasetRoutesTests.data(200_000),
                headers: try await gateway.adminKey())
            try #require(uploaded.status == .created, "\(uploaded.text)")
            // A check within a second of a file's modification time settles nothing (the racy-clean rule).
            try await Task.sleep(for: .milliseconds(1100))
            let path = "/api/v1/datasets/early-1/chunks/1"
            let routed = try await gateway.request(.get, path, headers: [.requestID: "route-1"])
            #expect(routed.status == .ok)
            #expect(!gateway.earlyAnswers.requestIDs.contains("route-1"))
            let early = try await gateway.request(.get, path, headers: [.requestID: "early-1"])
            #expect(gateway.earlyAnswers.requestIDs.contains("early-1"))
            #expect(early.status == .ok)
            #expect(early.headers[.requestID] == "early-1")
            #expect(Self.stable(early.headers) == Self.stable(routed.headers))
            #expect(early.response.body == routed.response.body)
            #expect(early.headers[.contentLength] == "\(routed.response.body.readableBytes)")

            // A revalidation is answered by the route (no bytes, no charge).
            let etag = try #require(routed.headers[.eTag])
            let revalidated = try await gateway.request(
                .get, path, headers: [.requestID: "route-304", .ifNoneMatch: etag])
            #expect(revalidated.status == .notModified)
            #expect(!gateway.earlyAnswers.requestIDs.contains("route-304"))

            // Three downloads and a board read pipelined on one connection: answered in order, whole.
            let printed = try await CostBoundsTests.python(
                """
                import socket, sys
                def request(path, rid):
                    return ("GET " + path + " HTTP/1.1\\r\\nHost: x\\r\\nX-Request-ID: " + rid + "\\r\\n\\r\\n").encode()
                s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
                s.settimeout(10)
                chunk = "/api/v1/datasets/early-1/chunks/"
                s.sendall(request(chunk + "1", "pipe-1") + request(chunk + "1", "pipe-2")
                          + request("/api/v1/datasets", "pipe-3") + request(chunk + "1", "pipe-4"))
                buffered, seen = b"", []
                for _ in range(4):
                    while b"\\r\\n\\r\\n" not in buffered:
                        buffered += s.recv(65536)
                    head, _, rest = buffered.partition(b"\\r\\n\\r\\n")
                    fields = dict(line.split(b": ", 1) for line in head.split(b"\\r\\n")[1:])
                    length = int(fields.get(b"Content-Length", b"0"))
                    while len(rest) < length:
                        rest += s.recv(65536)
                    seen.append("%s:%d:%d" % (fields[b"X-Request-ID"].decode(), int(head.split(b" ")[1]), length))
                    buffered = rest[length:]
                print(" ".join(seen))
                """, port: port)
            let size = routed.response.body.readableBytes
            let board = try await gateway.request(.get, "/api/v1/datasets")
            #expect(
                printed.trimmingCharacters(in: .whitespacesAndNewlines)
                    == "pipe-1:200:\(size) pipe-2:200:\(size) pipe-3:200:\(board.response.body.readableBytes) "
                    + "pipe-4:200:\(size)", "\(printed)")
            #expect(gateway.earlyAnswers.requestIDs.contains("pipe-1"))

            // Spent so far: five downloads of two units. Seven more fit; the next is refused by the route's 429.
            for index in 0..<7 {
                #expect(try await gateway.request(.get, path, headers: [.requestID: "more-\(index)"]).status == .ok)
            }
            let limited = try await gateway.request(.get, path, headers: [.requestID: "over"])
            expectProblem(limited, .tooManyRequests, "rate_limited")
            #expect(limited.headers[.rateLimitPolicy] == "\"download\";q=24;w=3600")
            #expect(!gateway.earlyAnswers.requestIDs.contains("over"))
        }
    }
}

/// A process-local limiter that answers only after suspending, as a shared one does (Redis): chunk downloads then
/// wait for their budget on the event loop (``ChunkFastPath``).
final class SuspendingRateLimiter: RateLimiter {
    let base = InMemoryGCRARateLimiter()

    func acquire(key: String, policy: RateLimitPolicy, cost: Int, now: Int64) async throws -> RateLimitDecision {
        try await Task.sleep(for: .milliseconds(20))
        return try await base.acquire(key: key, policy: policy, cost: cost, now: now)
    }
}
