public import GRPCCore
import GRPCInProcessTransport
import GRPCNIOTransportHTTP2
public import Logging
public import ServiceLifecycle
import SwiftProtobuf

/// One line of a readiness report.
public struct ReadinessCheck: Sendable, Hashable {
    public let name: String
    public let ready: Bool
    /// Safe to show publicly: a status word, never an internal error text.
    public let detail: String
}

/// Answers "can this process do its work?": every service it serves or calls reports SERVING over
/// grpc.health.v1 (in-process or remote), and Redis answers PING when configured.
public struct ReadinessProbe: Sendable {
    public let targets: Set<Target>
    let channels: [Target: ServiceChannel]
    let redis: RedisClient?
    let logger: Logger
    /// How long one check may take before its service counts as unreachable.
    public let timeout: Duration

    public init(
        targets: Set<Target>,
        channels: [Target: ServiceChannel],
        redis: RedisClient?,
        logger: Logger = Logger(label: "readiness"),
        timeout: Duration = .seconds(2)
    ) {
        self.targets = targets
        self.channels = channels
        self.redis = redis
        self.logger = logger
        self.timeout = timeout
    }

    public func check() async -> [ReadinessCheck] {
        await withTaskGroup(of: ReadinessCheck.self) { group in
            for target in targets.sorted() {
                guard let name = target.grpcServiceName, let channel = channels[target] else { continue }
                group.addTask { [logger] in
                    await Self.checkService(target, name: name, channel: channel, timeout: timeout, logger: logger)
                }
            }
            if let redis {
                group.addTask {
                    do {
                        try await redis.ping()
                        return ReadinessCheck(name: "redis", ready: true, detail: "ok")
                    } catch {
                        logger.warning("readiness: redis unreachable", metadata: ["error": "\(error)"])
                        return ReadinessCheck(name: "redis", ready: false, detail: "unreachable")
                    }
                }
            }
            var checks: [ReadinessCheck] = []
            for await check in group { checks.append(check) }
            return checks.sorted { $0.name < $1.name }
        }
    }

    private static func checkService(
        _ target: Target, name: String, channel: ServiceChannel, timeout: Duration, logger: Logger
    ) async -> ReadinessCheck {
        var options = CallOptions.defaults
        options.timeout = timeout
        let request = Grpc_Health_V1_HealthCheckRequest.with { $0.service = name }
        do {
            let response: Grpc_Health_V1_HealthCheckResponse
            switch channel {
            case .inProcess(let client):
                response = try await Grpc_Health_V1_Health.Client(wrapping: client).check(request, options: options)
            case .http2(let client):
                response = try await Grpc_Health_V1_Health.Client(wrapping: client).check(request, options: options)
            }
            let serving = response.status == .serving
            return ReadinessCheck(name: target.rawValue, ready: serving, detail: serving ? "SERVING" : "NOT_SERVING")
        } catch {
            // The operator sees why; the HTTP response only says "unreachable".
            logger.warning("readiness: \(target) unreachable", metadata: ["error": "\(error)"])
            return ReadinessCheck(name: target.rawValue, ready: false, detail: "unreachable")
        }
    }
}

/// Keeps a service's health status in step with its storage: NOT_SERVING while its database (or Redis) fails.
struct ReadinessMonitor: Service {
    let target: Target
    let database: ServiceDatabase
    let redis: RedisClient?
    let health: HealthRegistry
    let logger: Logger
    var interval: Duration = .seconds(5)

    func run() async throws {
        let metrics = database.metrics
        let databaseUp = MetricFamilies.dependencyUp.gauge(metrics.service, metrics.dependency)
        let redisUp = redis.map { _ in MetricFamilies.dependencyUp.gauge(metrics.service, "redis") }
        var lastHealthy = true
        while !Task.isShuttingDownGracefully {
            var failure: (any Error)?
            do {
                try await database.ping()
                databaseUp.set(1)
            } catch {
                databaseUp.set(0)
                failure = error
            }
            if let redis {
                do {
                    try await redis.ping()
                    redisUp?.set(1)
                } catch {
                    redisUp?.set(0)
                    failure = failure ?? error
                }
            }
            let healthy = failure == nil
            if let failure, lastHealthy {
                logger.error("storage check failed", metadata: ["error": "\(failure)"])
            }
            if healthy != lastHealthy {
                health.set(target, healthy ? .serving : .notServing)
                if healthy { logger.notice("storage recovered") }
                lastHealthy = healthy
            }
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                return
            }
        }
    }
}
