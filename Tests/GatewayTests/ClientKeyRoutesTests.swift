import Foundation
import HTTPTypes
import ServiceKit
import TestSupport
import Testing

@Suite("DeepStressModel client keys over REST", .timeLimit(.minutes(2)), .enabled(if: ExternalTools.hasPythonPackages))
struct ClientKeyRoutesTests {
    @Test(
        "a signed device makes, lists and revokes its keys; others cannot; an operator can",
        arguments: StorageBackend.available)
    func keys(_ backend: StorageBackend) async throws {
        try await AuthGateway.with(backend) { gateway in
            let owner = BenchmarkClient(gateway: gateway, device: try await gateway.activeDevice())
            let other = BenchmarkClient(gateway: gateway, device: try await gateway.activeDevice())
            let created = try await owner.call(.post, "/api/v1/devices/client-keys", ["name": "lab GUI"])
            #expect(created.status == .created, "\(created.text)")
            let apiKey = try #require(created["api_key"])
            let keyID = try #require(created["key_id"])
            #expect(apiKey.hasPrefix("dsm_") && apiKey.utf8.count == 47 && created["name"] == "lab GUI")

            let listed = try await owner.call(.get, "/api/v1/devices/client-keys")
            let keys = try #require(listed.json["keys"] as? [[String: Any]])
            #expect(keys.map { $0["key_id"] as? String } == [keyID] && !listed.text.contains(apiKey))
            #expect((try await other.call(.get, "/api/v1/devices/client-keys").json["keys"] as? [Any])?.isEmpty == true)
            expectProblem(
                try await other.call(.delete, "/api/v1/devices/client-keys/\(keyID)"), .notFound, "unknown_client_key")
            expectProblem(
                try await gateway.request(.post, "/api/v1/devices/client-keys", json: [:]), .unauthorized,
                "missing_signature")

            let revoked = try await owner.call(.delete, "/api/v1/devices/client-keys/\(keyID)")
            #expect(revoked.status == .ok && revoked.json["revoked_at"] is String, "\(revoked.text)")
            #expect((try await owner.call(.get, "/api/v1/devices/client-keys").json["keys"] as? [Any])?.isEmpty == true)
            let all = try await owner.call(.get, "/api/v1/devices/client-keys?include_revoked=true")
            #expect((all.json["keys"] as? [Any])?.count == 1)

            let second = try #require(
                try await other.call(.post, "/api/v1/devices/client-keys", [:]).json["key_id"] as? String)
            let path = "/api/v1/admin/client-keys/\(second)"
            expectProblem(try await gateway.request(.delete, path), .unauthorized, "missing_api_key")
            let byOperator = try await gateway.request(.delete, path, headers: try await gateway.adminKey())
            #expect(byOperator.status == .ok && byOperator.json["revoked_at"] is String, "\(byOperator.text)")
            // The key a DeepStressModel user installs: public, stable, a PEM public key.
            let pem = try await gateway.request(.get, "/api/v1/keys/result-encryption.pem")
            #expect(pem.status == .ok && pem.text.hasPrefix("-----BEGIN PUBLIC KEY-----"), "\(pem.text)")
            #expect(pem.headers[.contentType] == "application/x-pem-file" && pem.headers[.eTag] != nil)
            #expect(try await gateway.request(.get, "/api/v1/keys/result-encryption.pem").text == pem.text)

            let log = try await gateway.request(
                .get, "/api/v1/admin/audit?service=auth", headers: try await gateway.adminKey())
            #expect(log.text.contains("clientkey.revoke") && log.text.contains(second))
        }
    }
}
