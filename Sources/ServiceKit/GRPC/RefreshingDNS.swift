public import GRPCCore
public import GRPCNIOTransportHTTP2

/// A DNS target whose addresses are looked up again every few seconds, and pushed to the channel when they change.
///
/// grpc-swift's own DNS resolver looks a name up once, and again only after a GOAWAY or when an established
/// connection breaks. A service that restarts with a new address (a container restarted by podman or Docker, a pod
/// rescheduled behind a headless Service) sends GOAWAY while its old address still resolves; after that, connects to
/// the old address fail, which never asks for a new lookup, and the caller is cut off for good. scripts/deploy-check
/// found it when the gateway lost RankingService after a restart. Polling costs one lookup per interval per channel.
public struct RefreshingDNSTarget: ResolvableTarget, Sendable {
    public var host: String
    public var port: Int
    public var interval: Duration

    public init(host: String, port: Int, interval: Duration = .seconds(5)) {
        self.host = host
        self.port = port
        self.interval = interval
    }
}

/// Makes the push-mode resolver of a ``RefreshingDNSTarget``.
public struct RefreshingDNSResolverFactory: NameResolverFactory, Sendable {
    public typealias Target = RefreshingDNSTarget

    public init() {}

    public func resolver(for target: RefreshingDNSTarget) -> NameResolver {
        let dns = ResolvableTargets.DNS(host: target.host, port: target.port)
        let lookups = RefreshingResolution(interval: target.interval) {
            var iterator = NameResolvers.DNS().resolver(for: dns).names.makeAsyncIterator()
            guard let result = try await iterator.next() else { throw CancellationError() }
            return result
        }
        return NameResolver(
            names: RPCAsyncSequence(wrapping: lookups), updateMode: .push, authority: "\(target.host):\(target.port)")
    }
}

/// Lookups every `interval`, yielding a result only when its endpoints differ from the last one yielded. A lookup
/// that fails is tried again at the next interval (the channel keeps what it had); the sequence never ends by itself,
/// only when its task is cancelled (the channel closes).
struct RefreshingResolution: AsyncSequence, Sendable {
    typealias Element = NameResolutionResult

    let interval: Duration
    let lookup: @Sendable () async throws -> NameResolutionResult

    struct AsyncIterator: AsyncIteratorProtocol {
        let interval: Duration
        let lookup: @Sendable () async throws -> NameResolutionResult
        var last: Set<Endpoint>?

        mutating func next() async throws -> NameResolutionResult? {
            var first = last == nil
            while true {
                if !first { try await Task.sleep(for: interval) }
                first = false
                guard let result = try? await lookup() else {
                    try Task.checkCancellation()
                    continue
                }
                let endpoints = Set(result.endpoints)
                if endpoints != last {
                    last = endpoints
                    return result
                }
            }
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(interval: interval, lookup: lookup) }
}
