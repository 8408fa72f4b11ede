import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import PostgresNIO
import ServiceKit
import SwiftProtobuf
import TestSupport
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A `leaderboard` process started by a test: its announced addresses, its output, and a clean stop.
final class LeaderboardProcess: Sendable {
    private let child: ChildProcess

    var process: Process { child.process }

    /// The built executable next to the test bundle (`swift build --build-tests` builds both).
    static var executable: URL {
        let bundleDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [bundleDirectory, bundleDirectory.deletingLastPathComponent()] {
            let url = candidate.appendingPathComponent("leaderboard")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/debug/leaderboard")
    }

    init(_ arguments: [String], environment: [String: String] = [:]) throws {
        // Only what the test gives: no LEADERBOARD_* from the developer's shell.
        var base = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("LEADERBOARD_") }
        base.merge(environment) { _, new in new }
        child = try ChildProcess(Self.executable.path, arguments, environment: base)
    }

    /// Everything printed so far; all of it once ``exitStatus(within:)`` or ``stop(within:)`` has returned.
    var standardOutput: String { child.standardOutput }
    var standardError: String { child.standardError }

    /// Waits for a line `<prefix><value>` on standard output and returns the value.
    func announced(_ prefix: String, within limit: Duration = .seconds(60)) async throws -> String {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            for line in standardOutput.split(separator: "\n") where line.hasPrefix(prefix) {
                return String(line.dropFirst(prefix.count))
            }
            guard child.isRunning else { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ProcessFailure("no '\(prefix)' line; stderr:\n\(standardError.suffix(3000))")
    }

    func grpcPort() async throws -> Int {
        let address = try await announced("grpc listening on ")
        return try #require(Int(address.split(separator: ":").last ?? ""))
    }

    func httpBase(_ name: String = "gateway") async throws -> String {
        try await announced("\(name) listening on ")
    }

    /// SIGTERM, then waits for the exit status and the end of its output.
    func stop(within limit: Duration = .seconds(30)) async throws -> Int32 {
        try await child.stop(within: limit)
    }

    /// SIGKILL: no drain, no goodbye, as when the machine or the container dies.
    func kill() { child.kill() }

    /// The exit status, once the process has exited and all of its output has been read.
    func exitStatus(within limit: Duration = .seconds(30)) async throws -> Int32 {
        try await child.exitStatus(within: limit)
    }
}

struct ProcessFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

enum EndToEnd {
    static let environment = ProcessInfo.processInfo.environment
    static var postgresURL: String? { environment["TEST_POSTGRES_URL"] }
    static var redisURL: String? { environment["TEST_REDIS_URL"] }
    static var requireServers: Bool { environment["TEST_REQUIRE_SERVERS"] == "1" }

    static func temporaryDirectory() -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("lb-e2e-\(UUID().uuidString)")
        return url.path
    }

    /// GET, returning status and body.
    static func get(_ url: String) async throws -> (Int, [String: Any]) {
        let (data, response) = try await URLSession.shared.data(from: try #require(URL(string: url)))
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        let body = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        return (status, body)
    }

    /// Polls until the URL answers `status` (a freshly started process may need a moment).
    static func waitFor(_ url: String, status expected: Int, within limit: Duration = .seconds(30)) async throws
        -> [String: Any]
    {
        let deadline = ContinuousClock.now + limit
        var last: (Int, [String: Any]) = (0, [:])
        while ContinuousClock.now < deadline {
            if let result = try? await get(url) {
                last = result
                if result.0 == expected { return result.1 }
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ProcessFailure("\(url) answered \(last.0) \(last.1), expected \(expected)")
    }

    /// grpc.health.v1 Check over HTTP/2, as a load balancer or Kubernetes probe would call it.
    static func grpcHealth(port: Int, service: String) async throws -> Grpc_Health_V1_HealthCheckResponse.ServingStatus
    {
        try await withGRPCClient(
            transport: .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext)
        ) { client in
            try await Grpc_Health_V1_Health.Client(wrapping: client).check(.with { $0.service = service }).status
        }
    }

    /// A database of its own on the test Postgres, so parallel tests never share schemas.
    static func freshPostgresDatabase() async throws -> String? {
        guard let text = postgresURL else {
            if requireServers { Issue.record("TEST_POSTGRES_URL is not set (run scripts/test)") }
            return nil
        }
        let url = try PostgresURL.parse(text)
        let name = "e2e_" + UUID().uuidString.lowercased().filter(\.isLetter).prefix(16)
        let connection = try await PostgresConnection.connect(
            configuration: .init(
                host: url.host, port: url.port, username: url.username, password: url.password,
                database: url.database, tls: .disable),
            id: 1, logger: .init(label: "e2e"))
        try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: .init(label: "e2e"))
        try await connection.close()
        return "postgres://\(url.username)@\(url.host):\(url.port)/\(name)?sslmode=disable"
    }

    /// Production-style storage settings when the servers are available, else nothing (embedded). A database
    /// needs a configured master key; every process of one system gets the same one, and a Redis key prefix of its
    /// own, so systems running side by side on the test Redis share no keys (rate limits per address included) and no
    /// pub/sub channels.
    static func productionSettings() async throws -> [String] {
        guard let database = try await freshPostgresDatabase() else { return [] }
        let key = ["--master-key", Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()]
        guard let redis = redisURL else {
            if requireServers { Issue.record("TEST_REDIS_URL is not set (run scripts/test)") }
            return ["--database-url", database, "--single-replica", "true"] + key
        }
        let prefix = "e2e:\(UUID().uuidString.prefix(8).lowercased()):"
        return ["--database-url", database, "--redis-url", redis, "--redis-key-prefix", prefix] + key
    }

    /// One process per target, in dependency order, each with its own data directory under `directory`, told where
    /// the ones it calls listen; `settings` go to every process. Returns them in start order with their gRPC ports.
    static func startEachTarget(in directory: String, settings: [String]) async throws -> (
        processes: [(target: Target, process: LeaderboardProcess)], grpcPorts: [Target: Int]
    ) {
        var processes: [(target: Target, process: LeaderboardProcess)] = []
        var ports: [Target: Int] = [:]
        for target in Target.allCases {
            let remotes = target.dependencies.flatMap { ["--\($0.rawValue)-address", "127.0.0.1:\(ports[$0]!)"] }
            let process = try LeaderboardProcess(
                ["serve", "--target", target.rawValue, "--data-dir", "\(directory)/\(target.rawValue)"]
                    + ephemeral + remotes + settings)
            processes.append((target, process))
            if target != .gateway { ports[target] = try await process.grpcPort() }
        }
        return (processes, ports)
    }

    /// An admin operator API key, made the way an operator makes the first one: `leaderboard admin keys create` on the
    /// auth storage that `storage` names (a data directory, or a database URL and master key).
    static func operatorKey(_ storage: [String]) async throws -> String {
        let created = try LeaderboardProcess(
            ["admin", "keys", "create", "--name", "e2e-operator", "--permission", "admin", "--json"] + storage)
        try #require(try await created.exitStatus() == 0, "\(created.standardError.suffix(1000))")
        let object = try JSONSerialization.jsonObject(with: Data(created.standardOutput.utf8)) as? [String: Any]
        return try #require(object?["secret"] as? String)
    }

    /// Any HTTP request; returns status, headers and the JSON body (empty when not JSON).
    static func send(
        _ method: String, _ url: String, json: [String: Any]? = nil, body: Data? = nil, headers: [String: String] = [:]
    ) async throws -> (status: Int, headers: [String: String], json: [String: Any], text: String) {
        var request = URLRequest(url: try #require(URL(string: url)))
        request.httpMethod = method
        if let json {
            request.httpBody = try JSONSerialization.data(withJSONObject: json)
        } else {
            request.httpBody = body
        }
        if request.httpBody != nil { request.setValue("application/json", forHTTPHeaderField: "Content-Type") }
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = try #require(response as? HTTPURLResponse)
        var fields: [String: String] = [:]
        for case (let name as String, let value as String) in http.allHeaderFields { fields[name.lowercased()] = value }
        let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        return (http.statusCode, fields, object, String(decoding: data, as: UTF8.self))
    }
}
