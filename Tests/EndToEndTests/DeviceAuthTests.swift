import Crypto
import Foundation
import ServiceKit
import TestSupport
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The real binary, everything in one process, embedded and on PostgreSQL/Redis: a device goes through its whole
/// life over HTTP with the link delivered by SMTP, and an operator key made by the CLI drives the admin routes.
@Suite(
    "Devices and operator keys through the real binary", .serialized, .timeLimit(.minutes(5)),
    .enabled(if: ExternalTools.hasPythonPackages))
struct DeviceAuthEndToEndTests {
    enum Storage: String, CaseIterable, CustomTestStringConvertible {
        case embedded
        case production
        var testDescription: String { rawValue }
    }

    static var storages: [Storage] { TestEnvironment.hasPostgres ? [.embedded, .production] : [.embedded] }

    func sign(
        _ secret: String, version: Int, machineID: String, method: String, path: String, time: String, nonce: String,
        body: String
    ) async throws -> String {
        try await ExternalTools.run(
            ExternalTools.python,
            [
                ExternalTools.pythonScripts.appendingPathComponent("sign.py").path, secret, "\(version)", machineID,
                method, path, "", time, nonce,
            ],
            input: Data(body.utf8))
    }

    @Test(
        "register → verify by emailed link → activate → signed status → replay refused → rotate; admin keys from the CLI",
        arguments: storages)
    func lifeCycle(_ storage: Storage) async throws {
        let directory = EndToEnd.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let sink = try SMTPSink()
        defer { sink.stop() }
        let settings =
            ["--data-dir", directory] + (storage == .production ? try await EndToEnd.productionSettings() : [])
        let server = try LeaderboardProcess(
            [
                "serve", "--smtp-url", "smtp://127.0.0.1:\(sink.port)?tls=none", "--pow-difficulty", "10",
                "--public-url", "http://public.example",
            ] + ephemeral + settings)
        let base = try await server.httpBase()
        _ = try await EndToEnd.waitFor(base + "/health/ready", status: 200)
        if storage == .embedded {
            let attributes = try FileManager.default.attributesOfItem(atPath: directory + "/master.key")
            #expect((attributes[.posixPermissions] as? Int) == 0o600)
        }

        // The link arrives by SMTP, pointing at the public URL; the helper follows its path on our address.
        let (machineID, secret) = try await EndToEnd.activeDevice(base: base) {
            let email = try await sink.message(number: 1)
            #expect(email.contains("X-Envelope-To: owner@example.org"))
            let line = try #require(
                email.split(whereSeparator: \.isNewline).first {
                    $0.hasPrefix("http://public.example/verify/confirm?token=")
                })
            return String(line.dropFirst("http://public.example".count))
        }
        #expect(!server.standardOutput.contains(secret) && !server.standardError.contains(secret))

        func signedStatus(_ key: String, nonce: String = UUID().uuidString) async throws -> Int {
            let time = "\(Int(Date().timeIntervalSince1970))"
            let signature = try await sign(
                key, version: 2, machineID: machineID, method: "GET", path: "/api/v1/devices/status", time: time,
                nonce: nonce, body: "")
            return try await EndToEnd.send(
                "GET", base + "/api/v1/devices/status",
                headers: [
                    "X-Device-ID": machineID, "X-Request-Time": time, "X-Nonce": nonce, "X-Signature": signature,
                    "X-Signature-Version": "2",
                ]
            ).status
        }
        #expect(try await signedStatus(secret, nonce: "e2e-nonce-1") == 200)
        #expect(try await signedStatus(secret, nonce: "e2e-nonce-1") == 409)

        // Changing the secret takes a version 2 signature, which covers the method and path: a v1 one is refused.
        func rotate(version: Int) async throws -> (status: Int, json: [String: Any]) {
            let time = "\(Int(Date().timeIntervalSince1970))"
            let nonce = UUID().uuidString
            let signature = try await sign(
                secret, version: version, machineID: machineID, method: "POST", path: "/api/v1/devices/rotate",
                time: time, nonce: nonce, body: "{}")
            let reply = try await EndToEnd.send(
                "POST", base + "/api/v1/devices/rotate", body: Data("{}".utf8),
                headers: [
                    "X-Device-ID": machineID, "X-Request-Time": time, "X-Nonce": nonce, "X-Signature": signature,
                    "X-Signature-Version": "\(version)",
                ])
            return (reply.status, reply.json)
        }
        let refused = try await rotate(version: 1)
        #expect(refused.status == 400 && refused.json["code"] as? String == "signature_version_required")
        let rotated = try await rotate(version: 2)
        let newSecret = try #require(rotated.json["secret"] as? String)
        #expect(try await signedStatus(newSecret) == 200)

        // An operator key made by the CLI on the same storage works against the running server.
        let created = try LeaderboardProcess(
            ["admin", "keys", "create", "--name", "e2e", "--permission", "admin", "--json"] + settings)
        #expect(try await created.exitStatus() == 0)
        let key = try #require(
            (try JSONSerialization.jsonObject(with: Data(created.standardOutput.utf8)) as? [String: Any])?["secret"]
                as? String)
        let listed = try await EndToEnd.send(
            "GET", base + "/api/v1/admin/keys", headers: ["Authorization": "Bearer \(key)"])
        #expect(listed.status == 200)
        #expect((listed.json["keys"] as? [[String: Any]])?.first?["name"] as? String == "e2e")
        #expect(try await server.stop() == 0)
    }
}
