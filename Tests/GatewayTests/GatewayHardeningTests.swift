import CompressNIO
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import ServiceKit
import Synchronization
import TestSupport
import Testing
import UntrustedInput

@testable import Gateway

@Suite(
    "Gateway caching, limits and HTTP policies", .timeLimit(.minutes(4)), .enabled(if: ExternalTools.hasPythonPackages))
struct GatewayHardeningTests {
    @Test(
        "a cached board answers 304 to its ETag, and a submit or a like is visible on the very next read",
        arguments: StorageBackend.available)
    func boardCache(_ backend: StorageBackend) async throws {
        try await AuthGateway.with(backend) { gateway in
            let dataset = try await RankingRoutesTests.dataset(gateway)
            let first = BenchmarkClient(gateway: gateway, device: try await gateway.activeDevice())
            let second = BenchmarkClient(gateway: gateway, device: try await gateway.activeDevice())
            let submitted = try await first.run(
                version: dataset.version, checksum: dataset.checksum, tps: 100, key: UUID().uuidString)
            try #require(submitted.status == .created, "\(submitted.text)")
            let board = "/api/v1/benchmarks?dataset_version=\(dataset.version)"

            let miss = try await gateway.request(.get, board)
            #expect(miss.status == .ok)
            #expect(miss.headers[.xCache] == "MISS")
            #expect(miss.headers[.cacheControl] == "public, no-cache")
            let etag = try #require(miss.headers[.eTag])
            let hit = try await gateway.request(.get, board)
            #expect(hit.headers[.xCache] == "HIT")
            #expect(hit.headers[.eTag] == etag)
            #expect(hit.text == miss.text)
            let revalidated = try await gateway.request(.get, board, headers: [.ifNoneMatch: etag])
            #expect(revalidated.status == .notModified)
            #expect(revalidated.response.body.readableBytes == 0)

            // Another device's submit: the next read already shows it.
            let better = try await second.run(
                version: dataset.version, checksum: dataset.checksum, tps: 200, key: UUID().uuidString)
            try #require(better.status == .created, "\(better.text)")
            let after = try await gateway.request(.get, board, headers: [.ifNoneMatch: etag])
            #expect(after.status == .ok)
            #expect(after.headers[.eTag] != etag)
            let records = after.json["records"] as? [[String: Any]] ?? []
            #expect(records.count == 2)
            #expect(records.first?["tps"] as? Double == 200)

            // A like changes the counts a cached record carries.
            let recordID = try #require(records.last?["record_id"] as? String)
            let before = try await gateway.request(.get, "/api/v1/benchmarks/\(recordID)")
            #expect(before.json["likes_count"] as? Int == 0)
            #expect(try await gateway.request(.get, "/api/v1/benchmarks/\(recordID)").headers[.xCache] == "HIT")
            let liked = try await second.call(.post, "/api/v1/benchmarks/\(recordID)/like")
            #expect(liked.status == .ok, "\(liked.text)")
            let counted = try await gateway.request(.get, "/api/v1/benchmarks/\(recordID)")
            #expect(counted.json["likes_count"] as? Int == 1)
        }
    }

    @Test(
        "concurrent misses of one key make one upstream call; a fill begun before an invalidation is never served after it"
    )
    func singleFlight() async throws {
        let cache = ResponseCache(
            shared: nil, sharedTTL: .seconds(30), localTTL: .seconds(30), logger: TestEnvironment.logger)
        let calls = Counter()
        let answers = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<50 {
                group.addTask {
                    let (response, _) = try await cache.response(scope: .ranking, key: "/board") {
                        calls.increment()
                        try await Task.sleep(for: .milliseconds(100))
                        return Self.cached("one")
                    }
                    return String(decoding: response?.body ?? [], as: UTF8.self)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(calls.value == 1)
        #expect(Set(answers) == ["one"])

        // A slow fill started before the write must not be what readers see after it.
        let (started, startedSignal) = AsyncStream<Void>.makeStream()
        let (release, releaseSignal) = AsyncStream<Void>.makeStream()
        await cache.invalidate([.ranking])
        let stale = Task {
            try await cache.response(scope: .ranking, key: "/board") {
                startedSignal.yield()
                for await _ in release { break }
                return Self.cached("before the write")
            }
        }
        for await _ in started { break }
        await cache.invalidate([.ranking])
        let (fresh, freshHit) = try await cache.response(scope: .ranking, key: "/board") { Self.cached("after") }
        #expect(freshHit == false)
        #expect(fresh?.body == Array("after".utf8))
        releaseSignal.yield()
        _ = try await stale.value
        let (later, _) = try await cache.response(scope: .ranking, key: "/board") { Self.cached("unexpected call") }
        #expect(later?.body == Array("after".utf8))
        // Other scopes are untouched by a ranking invalidation.
        _ = try await cache.response(scope: .comments, key: "/c") { Self.cached("comments") }
        await cache.invalidate([.ranking])
        let (comments, commentsHit) = try await cache.response(scope: .comments, key: "/c") { Self.cached("again") }
        #expect(commentsHit && comments?.body == Array("comments".utf8))
    }

    @Test(
        "replicas share filled responses through Redis, and one replica's invalidation reaches the others at once",
        .enabled(if: TestEnvironment.hasRedis))
    func sharedLayer() async throws {
        let redis = try TestEnvironment.redisClient()
        let shared = RedisCache(client: redis, prefix: TestEnvironment.uniquePrefix("response-cache"))
        let first = ResponseCache(
            shared: shared, sharedTTL: .seconds(30), localTTL: .zero, logger: TestEnvironment.logger)
        let second = ResponseCache(
            shared: shared, sharedTTL: .seconds(30), localTTL: .zero, logger: TestEnvironment.logger)
        let (filled, filledHit) = try await first.response(scope: .ranking, key: "/b") { Self.cached("v1") }
        #expect(!filledHit && filled?.body == Array("v1".utf8))
        let (served, servedHit) = try await second.response(scope: .ranking, key: "/b") { Self.cached("unexpected") }
        #expect(servedHit && served?.body == Array("v1".utf8))
        #expect(served == filled)
        // Bodies are stored as they are, blank lines included.
        let multiline = Self.cached("{\n\n\"a\": 1\n}\n")
        #expect(CachedResponse(stored: multiline.stored) == multiline)
        #expect(CachedResponse(stored: Array("no header".utf8)) == nil)
        await first.invalidate([.ranking])
        let (refreshed, refreshedHit) = try await second.response(scope: .ranking, key: "/b") { Self.cached("v2") }
        #expect(!refreshedHit && refreshed?.body == Array("v2".utf8))
        await redis.close()
    }

    @Test("a NUL in the URL or in a JSON string is a 400, not a storage error", arguments: StorageBackend.available)
    func nulCharacters(_ backend: StorageBackend) async throws {
        try await AuthGateway.with(backend) { gateway in
            let admin = try await gateway.adminKey()
            for uri in [
                "/api/v1/admin/ranking/rebuild?dataset_version=%3A%00%1F", "/api/v1/stats?dataset_version=a%00",
                "/api/v1/benchmarks/rec%00ord",
            ] {
                let reply = try await gateway.request(uri.contains("rebuild") ? .post : .get, uri, headers: admin)
                #expect(reply.status == .badRequest && reply.code == "invalid_character", "\(uri): \(reply.text)")
            }
            let comment = try await gateway.request(
                .post, "/api/v1/benchmarks/anything/comments", raw: #"{"content": "a\u0000b"}"#)
            #expect(comment.status == .badRequest && comment.code == "invalid_field_type", "\(comment.text)")
        }
    }

    @Test("signed requests are limited per device, with Retry-After and RateLimit headers")
    func signedLimit() async throws {
        var policies = AuthGateway.lenient
        policies.signed = RateLimitPolicy(name: "signed", limit: 3, period: .seconds(60))
        try await AuthGateway.with(.sqlite, policies: policies) { gateway in
            let device = try await gateway.activeDevice()
            let other = try await gateway.activeDevice()
            func status(_ device: (machineID: String, secret: String)) async throws -> AuthGateway.Reply {
                try await gateway.signed(
                    .get, "/api/v1/devices/status", version: 2, machineID: device.machineID, secret: device.secret)
            }
            for _ in 0..<3 { #expect(try await status(device).status == .ok) }
            let limited = try await status(device)
            expectProblem(limited, .tooManyRequests, "rate_limited")
            #expect(Int(limited.headers[.retryAfter] ?? "") ?? 0 >= 1)
            #expect(limited.headers[.rateLimitPolicy] == "\"signed\";q=3;w=60")
            #expect(limited.headers[.rateLimit]?.hasPrefix("\"signed\";r=0;t=") == true)
            #expect(try await status(other).status == .ok)
        }
    }

    @Test("dataset downloads spend a byte budget per client address")
    func downloadBudget() async throws {
        var policies = AuthGateway.lenient
        // Four units of 64 KiB: two chunks of the 64 KiB-chunked test dataset (each a little over 64 KiB sealed).
        policies.download = RateLimitPolicy(name: "download", limit: 4, period: .seconds(3600))
        try await AuthGateway.with(.sqlite, policies: policies) { gateway in
            let version = "dl-\(UUID().uuidString.prefix(8).lowercased())"
            let data = (0..<(200 << 10)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            let uploaded = try await gateway.upload(
                "version=\(version)&activate=true", data, headers: try await gateway.adminKey())
            try #require(uploaded.status == .created, "\(uploaded.text)")
            #expect(try await gateway.request(.get, "/api/v1/datasets/\(version)/chunks/0").status == .ok)
            #expect(try await gateway.request(.get, "/api/v1/datasets/\(version)/chunks/1").status == .ok)
            let limited = try await gateway.request(.get, "/api/v1/datasets/\(version)/chunks/2")
            expectProblem(limited, .tooManyRequests, "rate_limited")
            #expect(limited.headers[.rateLimitPolicy] == "\"download\";q=4;w=3600")
            // Metadata is not downloaded bytes.
            #expect(try await gateway.request(.get, "/api/v1/datasets/\(version)").status == .ok)
        }
    }

    @Test(
        "client addresses: forwarding headers count only from trusted proxies; IPv6 clients are limited by their /64",
        arguments: [false, true])
    func clientAddresses(trusted: Bool) async throws {
        var policies = AuthGateway.lenient
        policies.challenge = RateLimitPolicy(name: "challenge", limit: 1, period: .seconds(3600))
        let proxies = trusted ? IPNetwork.parse("127.0.0.0/8").map { [$0] } ?? [] : []
        try await AuthGateway.with(
            .sqlite, policies: policies, live: true,
            configure: { $0.clientAddresses = ClientAddressResolver(trustedProxies: proxies) }
        ) { gateway in
            let name = HTTPField.Name("X-Forwarded-For")!
            var statuses: [HTTPResponse.Status] = []
            let sequence =
                trusted
                ? [
                    "203.0.113.1", "203.0.113.1", "203.0.113.2", "203.0.113.2, 203.0.113.3",
                    "198.51.100.9, 203.0.113.3",
                    "2001:db8:1:2::1", "2001:db8:1:2::ffff", "2001:db8:1:3::1",
                ] : ["203.0.113.1", "203.0.113.2", "2001:db8:1:3::1"]
            for forwardedFor in sequence {
                statuses.append(
                    try await gateway.request(.get, "/api/v1/devices/challenge", headers: [name: forwardedFor]).status)
            }
            // Behind a trusted proxy each client (an IPv6 one by its /64) has its own budget, and a client's own
            // entries left of the proxy's are not believed; from anyone else the header is the client's own word.
            let expected: [HTTPResponse.Status] =
                trusted
                ? [.ok, .tooManyRequests, .ok, .ok, .tooManyRequests, .ok, .tooManyRequests, .ok]
                : [.ok, .tooManyRequests, .tooManyRequests]
            #expect(statuses == expected)
        }
    }

    @Test("CORS for configured origins, gzip on request, 413 before reading, request id on all")
    func httpPolicies() async throws {
        let big = "{\"items\":[" + (0..<400).map { "\"item \($0)\"" }.joined(separator: ",") + "]}"
        try await AuthGateway.with(
            .sqlite,
            configure: { configuration in
                configuration.corsOrigins = ["https://board.example"]
            },
            extend: { router in
                router.get("/test/big") { _, _ in
                    Response(
                        status: .ok, headers: [.contentType: "application/json"],
                        body: ResponseBody(byteBuffer: ByteBuffer(string: big)))
                }
            }
        ) { gateway in
            let preflight = try await gateway.request(
                .options, "/api/v1/benchmarks/start",
                headers: [.origin: "https://board.example", .accessControlRequestMethod: "POST"])
            #expect(preflight.status == .noContent)
            #expect(preflight.headers[.accessControlAllowOrigin] == "https://board.example")
            #expect(preflight.headers[.accessControlAllowHeaders]?.contains("X-Signature") == true)
            let allowed = try await gateway.request(.get, "/api/v1/stats", headers: [.origin: "https://board.example"])
            #expect(allowed.headers[.accessControlAllowOrigin] == "https://board.example")
            #expect(allowed.headers[.accessControlExposeHeaders]?.contains("ETag") == true)
            let foreign = try await gateway.request(.get, "/health/live", headers: [.origin: "https://evil.example"])
            #expect(foreign.status == .ok)
            #expect(foreign.headers[.accessControlAllowOrigin] == nil)
            // An OPTIONS without Access-Control-Request-Method is no preflight: it is routed like any request.
            let notPreflight = try await gateway.request(
                .options, "/api/v1/stats", headers: [.origin: "https://board.example"])
            #expect(notPreflight.status != .noContent)
            // A compressed answer to an allowed origin varies on both, in one field.
            let zippedForPage = try await gateway.request(
                .get, "/test/big", headers: [.acceptEncoding: "gzip", .origin: "https://board.example"])
            #expect(zippedForPage.headers[.contentEncoding] == "gzip")
            #expect(zippedForPage.headers[values: .vary] == ["Accept-Encoding, Origin"])

            let zipped = try await gateway.request(.get, "/test/big", headers: [.acceptEncoding: "br, gzip;q=0.8"])
            #expect(zipped.headers[.contentEncoding] == "gzip")
            var body = zipped.response.body
            #expect(body.readableBytes < big.utf8.count)
            #expect(String(buffer: try body.decompress(with: .gzip())) == big)
            let plain = try await gateway.request(.get, "/test/big", headers: [.acceptEncoding: "gzip;q=0"])
            #expect(plain.headers[.contentEncoding] == nil)
            #expect(plain.text == big)

            let huge = String(repeating: "x", count: 200 << 10)
            let tooLarge = try await gateway.request(.post, "/api/v1/devices/register", raw: "{\"a\":\"\(huge)\"}")
            expectProblem(tooLarge, .contentTooLarge, "payload_too_large")
            #expect(tooLarge.headers[.requestID]?.isEmpty == false)
        }
    }

    /// The deadline has a gateway of its own: with a deadline short enough to test, any other request on a loaded
    /// machine could pass it too and turn into a 504 that has nothing to do with what is being checked.
    @Test("a request past the deadline gets 504 with its request id, and its handler is cancelled")
    func deadline() async throws {
        let cancelled = Counter()
        try await AuthGateway.with(
            .sqlite,
            configure: { configuration in configuration.requestTimeout = .milliseconds(300) },
            extend: { router in
                router.get("/test/slow") { _, _ in
                    do {
                        try await Task.sleep(for: .seconds(60))
                    } catch {
                        cancelled.increment()
                        throw error
                    }
                    return "late"
                }
            }
        ) { gateway in
            let start = ContinuousClock.now
            let slow = try await gateway.request(.get, "/test/slow", headers: [.requestID: "slow-request-1"])
            expectProblem(slow, .gatewayTimeout, "deadline_exceeded")
            #expect(slow.headers[.requestID] == "slow-request-1")
            #expect(ContinuousClock.now - start < .seconds(30))
            #expect(cancelled.value == 1)
        }
    }

    static func cached(_ text: String) -> CachedResponse {
        CachedResponse(
            contentType: "application/json", cacheControl: "public, no-cache",
            etag: CachedResponse.etag(of: Array(text.utf8)), body: Array(text.utf8))
    }
}

/// A count shared by concurrent tasks.
final class Counter: Sendable {
    private let count = Mutex(0)
    func increment() { count.withLock { $0 += 1 } }
    var value: Int { count.withLock { $0 } }
}
