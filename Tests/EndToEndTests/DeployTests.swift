import Foundation
import TestSupport
import Testing

/// What deploy/ ships, checked here on every run: the compose files and Kubernetes manifests against their rules and
/// the Kubernetes schemas (offline), and deploy/nginx in front of a real gateway. scripts/deploy-check runs the
/// compose files themselves with podman (deploy/README.md).
@Suite("Deploy: manifests and the reverse proxy", .serialized, .timeLimit(.minutes(3)))
struct DeployTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test("compose files and Kubernetes overlays pass the schemas (strict) and the deployment rules")
    func manifests() async throws {
        let directory = EndToEnd.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // The call graph the network policies must match, as the binary states it.
        let targets = try LeaderboardProcess(["serve", "--list-targets"])
        #expect(try await targets.exitStatus() == 0)
        try Data(targets.standardOutput.utf8).write(to: URL(fileURLWithPath: directory + "/targets.txt"))
        let check = try ChildProcess(
            ExternalTools.python,
            [
                Self.repository.path + "/Tests/python/manifests_check.py", Self.repository.path + "/deploy",
                directory + "/targets.txt", "1.32",
            ])
        let status = try await check.exitStatus(within: .seconds(120))
        #expect(status == 0, "\(check.standardOutput)\(check.standardError.suffix(2000))")
        #expect(check.standardOutput.contains("microservices: 28 objects"), "\(check.standardOutput)")
        #expect(check.standardOutput.contains("compose.microservices: 7 services"), "\(check.standardOutput)")
    }

    /// A free loopback port (closed again: nginx binds it a moment later).
    static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// deploy/nginx/leaderboard.conf with the listeners, upstream and certificate a test can use; each replaced text
    /// must be there, so the file and this test cannot drift apart unnoticed.
    static func nginxSite(gateway: Int, https: Int, http: Int, certificate: String, key: String) throws -> String {
        var text = try String(
            contentsOf: repository.appendingPathComponent("deploy/nginx/leaderboard.conf"), encoding: .utf8)
        for (original, replacement) in [
            (
                "server 127.0.0.1:8080 max_fails=3 fail_timeout=10s;\n    keepalive",
                "server 127.0.0.1:\(gateway) max_fails=3 fail_timeout=10s;\n    keepalive"
            ),
            (
                "server 127.0.0.1:8080 max_fails=3 fail_timeout=10s;\n}",
                "server 127.0.0.1:\(gateway) max_fails=3 fail_timeout=10s;\n}"
            ),
            ("listen 80;", "listen 127.0.0.1:\(http);"),
            ("listen 443 ssl http2;", "listen 127.0.0.1:\(https) ssl http2;"),
            ("/etc/ssl/leaderboard/fullchain.pem", certificate),
            ("/etc/ssl/leaderboard/privkey.pem", key),
        ] {
            #expect(text.contains(original), "deploy/nginx/leaderboard.conf no longer has '\(original)'")
            text = text.replacingOccurrences(of: original, with: replacement)
        }
        return text
    }

    @Test("nginx from deploy/nginx terminates TLS with HTTP/2, upgrades WebSockets and passes the client's address")
    func nginxInFront() async throws {
        let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let nginx else {
            if TestEnvironment.requireServers { Issue.record("nginx is not installed (scripts/test installs it)") }
            return
        }
        let directory = EndToEnd.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await HTTPSTests.makeCertificates(in: directory + "/tls")
        // nginx connects from 127.0.0.1, the only proxy the gateway believes; the client comes from 127.0.0.2.
        let gateway = try LeaderboardProcess(
            ["serve", "--data-dir", directory + "/data", "--trusted-proxies", "127.0.0.1/32"] + ephemeral)
        let gatewayPort = try #require(Int(try await gateway.httpBase().split(separator: ":").last ?? ""))
        _ = try await EndToEnd.waitFor("http://127.0.0.1:\(gatewayPort)/health/ready", status: 200)

        let (https, http) = (try Self.freePort(), try Self.freePort())
        let site = try Self.nginxSite(
            gateway: gatewayPort, https: https, http: http, certificate: directory + "/tls/first.pem",
            key: directory + "/tls/first.key")
        try Data(site.utf8).write(to: URL(fileURLWithPath: directory + "/leaderboard.conf"))
        let main = """
            daemon off;
            worker_processes 1;
            pid \(directory)/nginx.pid;
            error_log \(directory)/error.log;
            events { worker_connections 256; }
            http {
                access_log \(directory)/access.log;
                client_body_temp_path \(directory)/body;
                proxy_temp_path \(directory)/proxy;
                fastcgi_temp_path \(directory)/fastcgi;
                uwsgi_temp_path \(directory)/uwsgi;
                scgi_temp_path \(directory)/scgi;
                include \(directory)/leaderboard.conf;
            }
            """
        try Data(main.utf8).write(to: URL(fileURLWithPath: directory + "/nginx.conf"))
        try await ExternalTools.run(nginx, ["-t", "-p", directory, "-c", directory + "/nginx.conf"])
        let proxy = try ChildProcess(nginx, ["-p", directory, "-c", directory + "/nginx.conf"])
        defer { proxy.kill() }
        let deadline = ContinuousClock.now + .seconds(10)
        while !FileManager.default.fileExists(atPath: directory + "/nginx.pid"), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
        }

        let output = try await ExternalTools.run(
            ExternalTools.python,
            [Self.repository.path + "/Tests/python/proxy_client.py", "\(https)", "\(http)", directory + "/tls/ca.pem"])
        // Stopped with SIGTERM, so nginx's master stops its worker too (the SIGKILL of `kill()` orphaned it).
        _ = try? await proxy.stop(within: .seconds(10))
        let result = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
        #expect(result["alpn"] as? String == "h2", "\(result)")
        #expect(result["ready"] as? Int == 200, "\(result)")
        #expect(result["hsts"] as? String == "max-age=31536000", "\(result)")
        let redirect = result["redirect"] as? [Any]
        #expect(redirect?.first as? Int == 308, "\(result)")
        #expect(
            redirect?.last as? String == "https://leaderboard.example.org/api/v1/benchmarks?limit=1", "\(result)")
        #expect((result["websocket"] as? String)?.hasPrefix("HTTP/1.1 101") == true, "\(result)")
        // A fresh system has no active dataset: the gateway says so in a close frame, which made it through nginx.
        #expect(result["first_frame"] as? String == "close 4400 no_active_dataset", "\(result)")

        #expect(try await gateway.stop() == 0)
        // The gateway saw the client nginx saw, not the address the client claimed nor nginx's own.
        let readyLines = gateway.standardError.split(separator: "\n").filter {
            $0.contains("path=/health/ready") && $0.contains("access")
        }
        #expect(readyLines.contains { $0.contains("client=127.0.0.2") }, "\(readyLines)")
        #expect(!gateway.standardError.contains("203.0.113.9"))
    }
}
