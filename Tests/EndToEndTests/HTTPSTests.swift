import Foundation
import TestSupport
import Testing

/// The gateway's own HTTPS (docs/GATEWAY.md "HTTPS"), its certificate replaced without a restart, and the
/// `healthcheck` subcommand container images and probes use.
@Suite("Boot: HTTPS on the gateway", .serialized, .timeLimit(.minutes(3)))
struct HTTPSTests {
    /// A CA and two server certificates for 127.0.0.1 signed by it, with distinct subjects.
    static func makeCertificates(in directory: String) async throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let script = """
            set -e
            cd '\(directory)'
            openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1 -subj /CN=lb-test-ca 2>/dev/null
            printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth\\n' > ext.cnf
            for name in first second; do
                openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $name.key -out $name.csr \
                    -subj /CN=$name 2>/dev/null
                openssl x509 -req -in $name.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out $name.pem -days 1 \
                    -extfile ext.cnf 2>/dev/null
            done
            """
        try await ExternalTools.run("/bin/bash", ["-c", script])
    }

    /// GETs `url` over TLS verified against `ca`; returns the status and the common name of the certificate seen.
    static func fetch(_ url: String, ca: String) async throws -> (status: Int, subject: String) {
        let script = """
            import ssl, sys, urllib.request, urllib.error
            context = ssl.create_default_context(cafile=sys.argv[2])
            try:
                response = urllib.request.urlopen(sys.argv[1], context=context, timeout=10)
                status = response.status
                certificate = response.fp.raw._sock.getpeercert()
            except urllib.error.HTTPError as error:
                status = error.code
                certificate = error.fp.raw._sock.getpeercert() if error.fp else {}
            subject = dict(part[0] for part in certificate.get("subject", ()))
            print(status, subject.get("commonName", ""))
            """
        let output = try await ExternalTools.run(ExternalTools.python, ["-c", script, url, ca])
        let parts = output.split(separator: " ", maxSplits: 1).map(String.init)
        return (Int(parts.first ?? "") ?? 0, parts.count > 1 ? parts[1] : "")
    }

    /// The body of a GET over TLS checked against `ca`.
    static func body(_ url: String, ca: String) async throws -> String {
        let script = """
            import ssl, sys, urllib.request
            context = ssl.create_default_context(cafile=sys.argv[2])
            sys.stdout.write(urllib.request.urlopen(sys.argv[1], context=context, timeout=10).read().decode())
            """
        return try await ExternalTools.run(ExternalTools.python, ["-c", script, url, ca])
    }

    /// Polls until the certificate served is `subject` (a reload is asynchronous).
    static func waitForSubject(_ subject: String, at url: String, ca: String) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            if try await fetch(url, ca: ca).subject == subject { return true }
            try await Task.sleep(for: .milliseconds(200))
        }
        return false
    }

    @Test("the gateway serves HTTPS, replaces its certificate on SIGHUP and on a changed file, keeps it on a bad one")
    func httpsAndReload() async throws {
        let directory = EndToEnd.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let tls = directory + "/tls"
        try await Self.makeCertificates(in: tls)
        let files = FileManager.default
        try files.copyItem(atPath: "\(tls)/first.pem", toPath: "\(tls)/server.pem")
        try files.copyItem(atPath: "\(tls)/first.key", toPath: "\(tls)/server.key")
        let server = try LeaderboardProcess(
            ["serve", "--data-dir", directory + "/data"] + ephemeral,
            environment: [
                "LEADERBOARD_HTTP_TLS_CERT": "\(tls)/server.pem", "LEADERBOARD_HTTP_TLS_KEY": "\(tls)/server.key",
                // SIGHUP is tested first, so the file watch must not beat it.
                "LEADERBOARD_HTTP_TLS_RELOAD_SECONDS": "3600",
            ])
        let base = try await server.httpBase()
        #expect(base.hasPrefix("https://127.0.0.1:"))
        let ready = base + "/health/ready"
        let deadline = ContinuousClock.now + .seconds(30)
        while try await Self.fetch(ready, ca: "\(tls)/ca.pem").status != 200, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(try await Self.fetch(ready, ca: "\(tls)/ca.pem") == (200, "first"))
        // The certificate in service's expiry, for the alert (deploy/prometheus): the test certificates last a day.
        let expiry = PrometheusText(try await Self.body(base + "/metrics", ca: "\(tls)/ca.pem"))
            .value("leaderboard_tls_certificate_expiry_timestamp_seconds", ["listener": "https"])
        let now = Date().timeIntervalSince1970
        #expect(expiry > now + 3600 && expiry <= now + 86_400 + 60, "\(expiry)")

        // Plain HTTP to the HTTPS port gets no answer a browser could mistake for the site.
        let plain = base.replacingOccurrences(of: "https://", with: "http://") + "/health/ready"
        await #expect(throws: (any Error).self) { _ = try await EndToEnd.get(plain) }

        // The healthcheck subcommand finds the listener from the same settings and speaks TLS to it.
        let port = String(base.split(separator: ":").last ?? "")
        let healthcheck = try LeaderboardProcess(
            ["healthcheck", "--http-address", "0.0.0.0:\(port)"],
            environment: [
                "LEADERBOARD_HTTP_TLS_CERT": "\(tls)/server.pem", "LEADERBOARD_HTTP_TLS_KEY": "\(tls)/server.key",
            ])
        #expect(try await healthcheck.exitStatus() == 0)
        #expect(healthcheck.standardOutput.contains("healthy: https://127.0.0.1:\(port)/health/ready answered 200"))

        // SIGHUP after the files were replaced in place.
        try Self.replace(tls: tls, with: "second")
        kill(server.process.processIdentifier, SIGHUP)
        #expect(try await Self.waitForSubject("second", at: ready, ca: "\(tls)/ca.pem"))

        // A broken certificate file: logged, and the one in service stays.
        try Data("not a certificate\n".utf8).write(to: URL(fileURLWithPath: "\(tls)/server.pem"))
        kill(server.process.processIdentifier, SIGHUP)
        try await Task.sleep(for: .seconds(1))
        #expect(try await Self.fetch(ready, ca: "\(tls)/ca.pem") == (200, "second"))
        #expect(try await server.stop() == 0)
        #expect(server.standardError.contains("TLS certificate replaced"))
        #expect(server.standardError.contains("TLS certificate not replaced; the current one stays in service"))

        // A changed file is picked up without a signal.
        try Self.replace(tls: tls, with: "first")
        let watching = try LeaderboardProcess(
            ["serve", "--data-dir", directory + "/data"] + ephemeral,
            environment: [
                "LEADERBOARD_HTTP_TLS_CERT": "\(tls)/server.pem", "LEADERBOARD_HTTP_TLS_KEY": "\(tls)/server.key",
                "LEADERBOARD_HTTP_TLS_RELOAD_SECONDS": "1",
            ])
        let watched = try await watching.httpBase() + "/health/live"
        #expect(try await Self.waitForSubject("first", at: watched, ca: "\(tls)/ca.pem"))
        try Self.replace(tls: tls, with: "second")
        #expect(try await Self.waitForSubject("second", at: watched, ca: "\(tls)/ca.pem"))
        #expect(try await watching.stop() == 0)

        // Nothing listening: the healthcheck fails with one line, quickly.
        let down = try LeaderboardProcess(["healthcheck", "--http-address", "127.0.0.1:\(port)", "--timeout-ms", "500"])
        #expect(try await down.exitStatus() == 1)
        #expect(down.standardError.hasPrefix("unhealthy: http://127.0.0.1:\(port)/health/ready"))
    }

    /// Replaces the served pair the way a certificate manager does: new files renamed over the old ones.
    static func replace(tls: String, with name: String) throws {
        let files = FileManager.default
        for (source, target) in [("\(name).pem", "server.pem"), ("\(name).key", "server.key")] {
            try? files.removeItem(atPath: "\(tls)/\(target).new")
            try files.copyItem(atPath: "\(tls)/\(source)", toPath: "\(tls)/\(target).new")
            _ = rename("\(tls)/\(target).new", "\(tls)/\(target)")
        }
    }
}
