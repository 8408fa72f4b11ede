import HTTPTypes
import Hummingbird
import ServiceKit

extension HTTPField.Name {
    static let rateLimitPolicy = Self("RateLimit-Policy")!
    static let rateLimit = Self("RateLimit")!
}

extension Problem {
    /// A 429 for `policy`, with `Retry-After` and the `RateLimit-Policy` / `RateLimit` headers
    /// (draft-ietf-httpapi-ratelimit-headers) describing the quota and when it refills.
    static func rateLimited(policy: RateLimitPolicy, decision: RateLimitDecision, detail: String) -> Problem {
        MetricFamilies.rateLimited.counter(policy.name).increment()
        var problem = Problem(.tooManyRequests, code: "rate_limited", detail: detail)
        problem.headers[.retryAfter] = "\(wholeSeconds(decision.retryAfter))"
        problem.headers[.rateLimitPolicy] = policy.headerValue
        problem.headers[.rateLimit] =
            "\"\(policy.name)\";r=\(decision.remaining);t=\(wholeSeconds(decision.resetAfter))"
        return problem
    }

    /// Microseconds rounded up to whole seconds, at least 1.
    private static func wholeSeconds(_ microseconds: Int64) -> Int64 { max(1, (microseconds + 999_999) / 1_000_000) }
}

extension RateLimiter {
    /// Spends `cost` units of `key`'s budget under `policy`, or throws the 429 problem saying `detail`.
    func enforce(
        _ policy: RateLimitPolicy, key: String, cost: Int = 1, clock: any WallClock, detail: String
    ) async throws {
        let decision = try await acquire(key: key, policy: policy, cost: cost, now: clock.microsecondsSinceEpoch())
        guard decision.allowed else { throw Problem.rateLimited(policy: policy, decision: decision, detail: detail) }
    }
}

/// Limits a route class per client IP (GCRA through the shared limiter): 429 past the limit.
struct ClientRateLimitMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    let policy: RateLimitPolicy
    let rateLimiter: any RateLimiter
    let clock: any WallClock

    func handle(
        _ request: Request,
        context: GatewayRequestContext,
        next: (Request, GatewayRequestContext) async throws -> Response
    ) async throws -> Response {
        try await rateLimiter.enforce(
            policy, key: context.clientKey, clock: clock,
            detail: "Too many requests of this kind from your address; try again later.")
        return try await next(request, context)
    }
}

extension RateLimitPolicy {
    /// The `RateLimit-Policy` item: name, quota and window in seconds.
    var headerValue: String { "\"\(name)\";q=\(limit);w=\(period.components.seconds)" }

    /// The period in words for problem details: `min`, `h`, or seconds.
    var periodText: String {
        switch period.components.seconds {
        case 60: "minute"
        case 3600: "hour"
        case 86_400: "day"
        case let seconds: "\(seconds) s"
        }
    }
}
