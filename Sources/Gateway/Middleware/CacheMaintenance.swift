import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceKit
import ServiceLifecycle

/// Empties response-cache scopes when the services announce changes on the event bus: writes made through another
/// gateway replica, the admin CLI, or the services' own upkeep. (Writes through this gateway invalidate before they
/// answer; see ``CacheInvalidationMiddleware``.)
struct CacheInvalidationListener: Service {
    let cache: ResponseCache
    let events: any EventBus
    let logger: Logger

    static let scopes: [String: Set<CacheScope>] = [
        EventChannels.ranking: [.ranking],
        EventChannels.rankIndexRebuilt: [.ranking],
        EventChannels.interactionCounts: [.ranking, .comments],
        EventChannels.datasets: [.datasets, .ranking],
    ]

    func run() async throws {
        // A service that returns early stops the process: with nothing to follow, wait for shutdown instead.
        guard cache.isEnabled else { return try await gracefulShutdown() }
        await withDiscardingTaskGroup { group in
            for (channel, scopes) in Self.scopes {
                group.addTask {
                    await follow(channel, scopes: scopes)
                }
            }
        }
    }

    private func follow(_ channel: String, scopes: Set<CacheScope>) async {
        await cancelWhenGracefulShutdown {
            var delay = Duration.milliseconds(100)
            while !Task.isCancelled {
                do {
                    let subscription = try await events.subscribe(to: channel)
                    // Whatever happened while unsubscribed is unknown: start from nothing.
                    await cache.invalidate(scopes)
                    delay = .milliseconds(100)
                    for await _ in subscription { await cache.invalidate(scopes) }
                } catch {
                    logger.warning(
                        "cache invalidation cannot follow events; retrying",
                        metadata: ["channel": "\(channel)", "error": "\(error)"])
                }
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
    }
}

/// The pages ``CacheWarmUp`` fetches.
let warmedPaths = ["/api/v1/benchmarks", "/api/v1/benchmarks?limit=100", "/api/v1/stats", "/api/v1/datasets/latest"]

/// Fills the cache with the pages most clients ask for first (the default board, its top 100, stats, the latest
/// dataset) once the services answer, so the first visitors after a start or deploy do not all wait on the database.
struct CacheWarmUp<Responder: HTTPResponder>: Service where Responder.Context == GatewayRequestContext {
    let responder: Responder
    let logger: Logger

    private struct Source: RequestContextSource {
        let logger: Logger
    }

    private struct DiscardingBodyWriter: ResponseBodyWriter {
        mutating func write(_ buffer: ByteBuffer) async throws {}
        consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
    }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var pending = warmedPaths
            var delay = Duration.milliseconds(200)
            // Services in other processes may start later; keep trying for about a minute, then leave it to traffic.
            for _ in 0..<12 where !pending.isEmpty && !Task.isCancelled {
                var failed: [String] = []
                for path in pending {
                    let request = Request(
                        head: HTTPRequest(method: .get, scheme: "http", authority: "warm-up", path: path),
                        body: RequestBody(buffer: ByteBuffer()))
                    let response = try? await responder.respond(
                        to: request, context: GatewayRequestContext(source: Source(logger: logger)))
                    // Written out like any response, so what runs after the body (the request metrics) runs here too.
                    try? await response?.body.write(DiscardingBodyWriter())
                    let status = response?.status
                    // 404: nothing to show yet (no active dataset); not worth retrying.
                    if let status, status == .ok || status == .notFound { continue }
                    failed.append(path)
                }
                pending = failed
                if pending.isEmpty { break }
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(10))
            }
            if pending.isEmpty {
                logger.debug("response cache warmed", metadata: ["paths": "\(warmedPaths.count)"])
            } else {
                logger.notice(
                    "response cache warm-up gave up; pages fill on first request", metadata: ["paths": "\(pending)"])
            }
        }
        // Done; a service must not return before shutdown (it would stop the process).
        try? await gracefulShutdown()
    }
}
