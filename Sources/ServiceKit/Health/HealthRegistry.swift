public import ServiceLifecycle
import Synchronization

/// Serving status of one gRPC service, as grpc.health.v1 defines it.
public enum ServingStatus: Sendable, Hashable {
    case serving
    case notServing
}

/// The health of every service in this process, served by ``HealthRPCService`` and watched live.
///
/// The empty name is the whole process: SERVING only while every registered service is. On graceful shutdown every
/// status turns NOT_SERVING and watch streams end, so load balancers drain before the servers stop.
public final class HealthRegistry: Service, Sendable {
    private struct State {
        var statuses: [String: ServingStatus] = [:]
        var watchers: [Int: (name: String, continuation: AsyncStream<ServingStatus?>.Continuation)] = [:]
        var nextWatcher = 0
        var shutDown = false
    }

    private let state = Mutex(State())  // RPC handlers, monitors and shutdown touch it concurrently

    public init() {}

    public func set(_ target: Target, _ status: ServingStatus) {
        guard let name = target.grpcServiceName else { return }
        set(name, status)
    }

    public func set(_ service: String, _ status: ServingStatus) {
        let notifications = state.withLock { state -> [(AsyncStream<ServingStatus?>.Continuation, ServingStatus?)] in
            guard !state.shutDown else { return [] }
            let before = Self.snapshot(state.statuses)
            state.statuses[service] = status
            let after = Self.snapshot(state.statuses)
            return state.watchers.values.compactMap { watcher in
                let old = before[watcher.name]
                let new = after[watcher.name]
                return old == new ? nil : (watcher.continuation, new)
            }
        }
        for (continuation, status) in notifications { continuation.yield(status) }
    }

    /// The status of a service (empty name: the process); nil when unknown.
    public func status(of service: String) -> ServingStatus? {
        state.withLock { Self.snapshot($0.statuses)[service] }
    }

    /// Every known service with its status, including the process ("").
    public func all() -> [String: ServingStatus] {
        state.withLock { Self.snapshot($0.statuses) }
    }

    /// The current status, then every change; nil means the service is unknown. Ends at shutdown.
    public func watch(_ service: String) -> AsyncStream<ServingStatus?> {
        let (stream, continuation) = AsyncStream<ServingStatus?>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let id = state.withLock { state -> Int? in
            continuation.yield(Self.snapshot(state.statuses)[service])
            guard !state.shutDown else { return nil }
            let id = state.nextWatcher
            state.nextWatcher += 1
            state.watchers[id] = (service, continuation)
            return id
        }
        guard let id else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.watchers.removeValue(forKey: id) }
        }
        return stream
    }

    public func run() async throws {
        try? await gracefulShutdown()
        let watchers = state.withLock { state in
            for key in state.statuses.keys { state.statuses[key] = .notServing }
            state.shutDown = true
            defer { state.watchers = [:] }
            return state.watchers.values
        }
        for watcher in watchers {
            watcher.continuation.yield(.notServing)
            watcher.continuation.finish()
        }
    }

    private static func snapshot(_ statuses: [String: ServingStatus]) -> [String: ServingStatus] {
        var all = statuses
        all[""] = statuses.values.allSatisfy { $0 == .serving } ? .serving : .notServing
        return all
    }
}
