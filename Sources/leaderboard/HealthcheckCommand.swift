import ArgumentParser
import Gateway
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import ServiceKit

/// `leaderboard healthcheck`: asks the process configured by the same settings (flags or `LEADERBOARD_*`) whether it
/// is ready, over loopback, and exits 0 or 1 — for a container's HEALTHCHECK and exec probes, where no curl is
/// installed. It asks the gateway's listener when the process runs the gateway (over HTTPS when it serves HTTPS,
/// without checking the certificate: this is the process asking itself), else the operations listener.
struct HealthcheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "healthcheck",
        abstract: "Exit 0 when the local process is ready (or, with --live, alive); 1 otherwise.",
        discussion: "Reads the same settings as serve, to find the listener to ask.\n\n" + settingsHelp
    )

    @Flag(name: .customLong("live"), help: "Check liveness (/health/live) instead of readiness (/health/ready).")
    var live = false

    @Option(name: .customLong("timeout-ms"), help: "Give up after this many milliseconds.")
    var timeoutMilliseconds = 3000

    @Argument(parsing: .allUnrecognized, help: "Settings as --name value (same as serve).")
    var settings: [String] = []

    func run() async throws {
        let configuration = try loadConfiguration(settings, checkModules: false)
        let runsGateway = configuration.targets.contains(.gateway)
        let listener = runsGateway ? configuration.httpAddress : configuration.operationsAddress
        let tls = runsGateway && !configuration.raw[GatewaySettings.tlsCertificate].value.isEmpty
        let path = live ? "/health/live" : "/health/ready"
        let host = Self.loopback(for: listener.host)
        let target = "\(tls ? "https" : "http")://\(host):\(listener.port)\(path)"
        do {
            let status = try await Self.get(
                host: host, port: listener.port, path: path, tls: tls,
                timeout: .milliseconds(Int64(max(100, timeoutMilliseconds))))
            guard (200..<300).contains(status) else {
                printError("unhealthy: \(target) answered \(status)")
                throw ExitCode.failure
            }
            print("healthy: \(target) answered \(status)")
        } catch let exit as ExitCode {
            throw exit
        } catch {
            printError("unhealthy: \(target): \(error)")
            throw ExitCode.failure
        }
    }

    /// Where to reach a listener bound to `host` from the same machine.
    static func loopback(for host: String) -> String {
        switch host {
        case "0.0.0.0", "": "127.0.0.1"
        case "::", "[::]": "::1"
        default: host
        }
    }

    /// One GET; returns the status code.
    static func get(host: String, port: Int, path: String, tls: Bool, timeout: TimeAmount) async throws -> Int {
        let group = MultiThreadedEventLoopGroup.singleton
        let context = try tls ? Self.insecureClientContext() : nil
        let channel = try await ClientBootstrap(group: group)
            .connectTimeout(timeout)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let context {
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: context, serverHostname: nil))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(
                        wrappingChannelSynchronously: channel)
                }
            }
        let deadline = group.any().scheduleTask(in: timeout) { channel.channel.close(promise: nil) }
        defer { deadline.cancel() }
        return try await channel.executeThenClose { inbound, outbound in
            var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path)
            head.headers.add(name: "Host", value: host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)")
            head.headers.add(name: "User-Agent", value: "leaderboard-healthcheck")
            head.headers.add(name: "Connection", value: "close")
            try await outbound.write(.head(head))
            try await outbound.write(.end(nil))
            for try await part in inbound {
                if case .head(let response) = part { return Int(response.status.code) }
            }
            throw HealthcheckError.noResponse
        }
    }

    static func insecureClientContext() throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .none
        return try NIOSSLContext(configuration: configuration)
    }
}

enum HealthcheckError: Error, CustomStringConvertible {
    case noResponse
    var description: String { "the connection closed without an answer" }
}
