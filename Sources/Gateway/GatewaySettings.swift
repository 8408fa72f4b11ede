import Foundation
public import ServiceKit
public import UntrustedInput

/// The gateway target's settings (README "Configuration"; decisions in docs/GATEWAY.md).
public enum GatewaySettings {
    public static let registerLimit = Setting(
        "rate-limit-register", default: "5/min",
        help: "Device registrations and activations per client address, as N/s, N/min, N/h or N/day.")
    public static let verifyLimit = Setting(
        "rate-limit-verify", default: "5/min", help: "Verification requests and email confirmations per client address."
    )
    public static let verifyDailyLimit = Setting(
        "rate-limit-verify-daily", default: "20/day",
        help: "Verification requests (each sends a mail) per client address and day, on top of rate-limit-verify.")
    public static let challengeLimit = Setting(
        "rate-limit-challenge", default: "30/min", help: "Proof-of-work challenges per client address.")
    public static let commentsLimit = Setting(
        "rate-limit-comments", default: "10/min", help: "Comments and flags per client address.")
    public static let signedLimit = Setting(
        "rate-limit-signed", default: "60/min", help: "Signed API requests per device.")
    public static let downloadLimit = Setting(
        "rate-limit-download", default: "16GiB/h",
        help: "Dataset ciphertext bytes per client address, as <size>[KiB|MiB|GiB]/<period>.")
    public static let publicReadsLimit = Setting(
        "rate-limit-public-reads", default: "300/min",
        help: "Public reads that miss the response cache (and so reach the services) per client address; hits are free."
    )
    public static let exportLimit = Setting(
        "rate-limit-export", default: "10/h",
        help: "Whole-board exports (/api/v1/benchmarks/export) per client address.")
    public static let webSocketLimit = Setting(
        "rate-limit-websocket", default: "30/min", help: "WebSocket connections opened per client address.")
    public static let idleTimeout = Setting(
        "http-idle-timeout-seconds", default: "30",
        help: "Seconds a connection may stay silent (no complete request head or body part) before it is closed.")
    public static let corsOrigins = Setting(
        "cors-origins",
        help: "Browser origins allowed to call the API (comma-separated, or * for any). Empty: no CORS headers.")
    public static let requestTimeout = Setting(
        "request-timeout-ms", default: "15000",
        help: "Deadline of one REST request, passed on to the services' gRPC calls (504 when it passes).")
    public static let cacheSeconds = Setting(
        "cache-seconds", default: "30", help: "How long public GET responses stay in the shared cache (0 disables).")
    public static let localCacheMilliseconds = Setting(
        "cache-local-ms", default: "1000",
        help: "How long a gateway keeps a public GET response in its own memory before asking the shared cache.")

    public static let trustedProxies = Setting(
        "trusted-proxies",
        help: "Proxies (CIDRs, comma-separated, e.g. 10.0.0.0/8) whose client-address header is believed. Empty: none; "
            + "the peer address is the client.")
    public static let clientAddressHeader = Setting(
        "client-address-header", default: "x-forwarded-for",
        help: "The header trusted proxies name the client in: x-forwarded-for or forwarded (RFC 7239).")

    public static let tlsCertificate = Setting(
        "http-tls-cert",
        help: "PEM certificate chain: the gateway serves HTTPS (TLS 1.2+) on http-address instead of plain HTTP. "
            + "Replaced without a restart on SIGHUP or when the file changes.")
    public static let tlsKey = Setting("http-tls-key", help: "PEM private key for http-tls-cert.")
    public static let tlsReloadSeconds = Setting(
        "http-tls-reload-seconds", default: "10",
        help: "How often the gateway checks whether http-tls-cert or http-tls-key changed on disk (1 to 3600).")

    public static let metricsOnHTTP = Setting(
        "metrics-on-http", default: "auto",
        help: "Whether the gateway serves /metrics on http-address: true, false (then on ops-address, like a process "
            + "without the gateway), or auto: only when http-address is a loopback address.")

    public static let all: [Setting] = [
        metricsOnHTTP, registerLimit, verifyLimit, verifyDailyLimit, challengeLimit, commentsLimit, signedLimit,
        downloadLimit,
        publicReadsLimit,
        exportLimit, webSocketLimit, corsOrigins, requestTimeout, idleTimeout, cacheSeconds, localCacheMilliseconds,
        trustedProxies, clientAddressHeader, tlsCertificate, tlsKey, tlsReloadSeconds,
    ]
}

/// Validated gateway settings.
public struct GatewayConfiguration: Sendable {
    public var policies = GatewayPolicies()
    /// Allowed browser origins; `["*"]` allows any, empty sends no CORS headers.
    public var corsOrigins: [String] = []
    public var requestTimeout: Duration = .seconds(15)
    /// Silence after which a connection is closed (slow or stalled clients hold nothing for long).
    public var idleTimeout: Duration = .seconds(30)
    public var sharedCacheTTL: Duration = .seconds(30)
    public var localCacheTTL: Duration = .seconds(1)
    /// Who the client is behind trusted proxies; rate limits count IPv6 clients by /64.
    public var clientAddresses = ClientAddressResolver(trustedProxies: [])
    /// HTTPS on the public listener, when a certificate and key are given.
    public var tls: (certificatePath: String, keyPath: String)?
    public var tlsReloadInterval: Duration = .seconds(10)
    /// `/metrics` on the public listener (``GatewaySettings/metricsOnHTTP``); otherwise on the ops address.
    public var metricsOnHTTP: MetricsPlacement = .auto

    public enum MetricsPlacement: String, Sendable, CaseIterable {
        case auto, `true`, `false`

        /// Resolved against the public listener's address.
        public func onPublicListener(_ address: HostPort) -> Bool {
            switch self {
            case .auto: address.isLoopback
            case .true: true
            case .false: false
            }
        }
    }

    public init() {}

    public static func read(_ reader: inout ConfigurationReader) -> GatewayConfiguration {
        var configuration = GatewayConfiguration()
        func policy(_ setting: Setting, name: String, unit: Int64 = 1) -> RateLimitPolicy? {
            reader.parse(setting) { text throws(SettingParseError) in
                try RateLimitPolicy.parse(text, name: name, unit: unit)
            }
        }
        var policies = GatewayPolicies()
        if let value = policy(GatewaySettings.registerLimit, name: "register") { policies.registration = value }
        if let value = policy(GatewaySettings.verifyLimit, name: "verify") { policies.verification = value }
        if let value = policy(GatewaySettings.verifyDailyLimit, name: "verify-daily") {
            policies.verificationMails = value
        }
        if let value = policy(GatewaySettings.challengeLimit, name: "challenge") { policies.challenge = value }
        if let value = policy(GatewaySettings.commentsLimit, name: "comments") { policies.comments = value }
        if let value = policy(GatewaySettings.signedLimit, name: "signed") { policies.signed = value }
        if let value = policy(GatewaySettings.downloadLimit, name: "download", unit: GatewayPolicies.downloadUnit) {
            policies.download = value
        }
        if let value = policy(GatewaySettings.publicReadsLimit, name: "public-read") { policies.publicReads = value }
        if let value = policy(GatewaySettings.exportLimit, name: "export") { policies.exports = value }
        if let value = policy(GatewaySettings.webSocketLimit, name: "websocket") { policies.webSockets = value }
        configuration.policies = policies
        configuration.corsOrigins =
            reader.parse(GatewaySettings.corsOrigins) { text throws(SettingParseError) in
                let origins = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                    .filter { !$0.isEmpty }
                for origin in origins where origin != "*" {
                    guard origin.hasPrefix("http://") || origin.hasPrefix("https://"), !origin.hasSuffix("/") else {
                        throw SettingParseError(
                            "\(origin) is not an origin (scheme://host[:port], no path), nor *")
                    }
                }
                return origins
            } ?? []
        configuration.requestTimeout = .milliseconds(reader.integer(GatewaySettings.requestTimeout, in: 10...600_000))
        configuration.idleTimeout = .seconds(reader.integer(GatewaySettings.idleTimeout, in: 1...3600))
        configuration.sharedCacheTTL = .seconds(reader.integer(GatewaySettings.cacheSeconds, in: 0...86_400))
        configuration.localCacheTTL = .milliseconds(
            reader.integer(GatewaySettings.localCacheMilliseconds, in: 0...60_000))
        let proxies =
            reader.parse(GatewaySettings.trustedProxies) { text throws(SettingParseError) -> [IPNetwork] in
                var networks: [IPNetwork] = []
                for entry in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) })
                where !entry.isEmpty {
                    guard let network = IPNetwork.parse(entry) else {
                        throw SettingParseError("\(entry) is not an IP address or CIDR network")
                    }
                    networks.append(network)
                }
                return networks
            } ?? []
        let header =
            reader.parse(GatewaySettings.clientAddressHeader) { text throws(SettingParseError) in
                guard let header = ClientAddressResolver.Header(rawValue: text.lowercased()) else {
                    throw SettingParseError("must be x-forwarded-for or forwarded")
                }
                return header
            } ?? .xForwardedFor
        configuration.clientAddresses = ClientAddressResolver(trustedProxies: proxies, header: header)
        configuration.tls = reader.filePair(GatewaySettings.tlsCertificate, GatewaySettings.tlsKey).map {
            (certificatePath: $0.0, keyPath: $0.1)
        }
        configuration.tlsReloadInterval = .seconds(reader.integer(GatewaySettings.tlsReloadSeconds, in: 1...3600))
        configuration.metricsOnHTTP = reader.choice(GatewaySettings.metricsOnHTTP, as: MetricsPlacement.self) ?? .auto
        return configuration
    }
}

extension RateLimitPolicy {
    /// Parses `N/period` (`5/min`, `100/h`) or, with a `unit` above 1 (bytes per unit), `<size>/period` where size
    /// may end in KiB, MiB or GiB; the limit is then counted in units.
    static func parse(_ text: String, name: String, unit: Int64 = 1) throws(SettingParseError) -> RateLimitPolicy {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw SettingParseError("expected <amount>/<s|min|h|day>, e.g. 5/min") }
        let periods: [Substring: Int64] = ["s": 1, "min": 60, "h": 3600, "day": 86_400]
        guard let seconds = periods[parts[1]] else { throw SettingParseError("the period must be s, min, h or day") }
        var amount = parts[0]
        var multiplier: Int64 = 1
        if unit > 1 {
            for (suffix, bytes) in [("KiB", Int64(1) << 10), ("MiB", 1 << 20), ("GiB", 1 << 30)]
            where amount.hasSuffix(suffix) {
                amount = amount.dropLast(suffix.count)
                multiplier = bytes
            }
        }
        guard let number = Int64(amount), number > 0, number <= Int64(Int32.max) else {
            throw SettingParseError("the amount must be a positive whole number")
        }
        let units = (number * multiplier + unit - 1) / unit
        guard units <= Int64(Int32.max) else { throw SettingParseError("the amount is too large") }
        return RateLimitPolicy(name: name, limit: Int(units), period: .seconds(seconds))
    }
}
