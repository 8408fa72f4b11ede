import Foundation
import HTTPTypes
import ServiceKit
import TestSupport
import Testing

@Suite("DeepStressModel client keys over REST", .timeLimit(.minutes(4)), .enabled(if: ExternalTools.hasPythonPackages))
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
            // An offline package for a live key, as the client asks for it (id 1: the latest active version).
            let prompts = (1...3).map { #"{"prompt": "问题 \#($0)", "label": 2}"# }.joined(separator: "\n")
            let version = "dsm-\(UUID().uuidString.prefix(8).lowercased())"
            let uploaded = try await gateway.upload(
                "version=\(version)&activate=true", Array(prompts.utf8), headers: try await gateway.adminKey())
            try #require(uploaded.status == .created, "\(uploaded.text)")
            let live = try #require(
                try await owner.call(.post, "/api/v1/devices/client-keys", [:]).json["api_key"] as? String)
            var headers: HTTPFields = [:]
            headers[HTTPField.Name("X-API-Key")!] = live
            let package = try await gateway.request(
                .post, "/api/v1/datasets/offline-package/1", raw: "{}", headers: headers)
            #expect(package.status == .ok, "\(package.text)")
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("pkg-\(UUID().uuidString).json")
            try Data(package.text.utf8).write(to: file)
            defer { try? FileManager.default.removeItem(at: file) }
            let opened = try await ExternalTools.run(
                ExternalTools.python,
                [ExternalTools.pythonScripts.appendingPathComponent("dsm_package.py").path, "open", file.path, live])
            let dataset = try #require(try JSONSerialization.jsonObject(with: Data(opened.utf8)) as? [String: Any])
            let items = try #require(dataset["data"] as? [[String: Any]])
            #expect(dataset["version"] as? String == version && items.count == 3)
            #expect(items.first?["text"] as? String == "问题 1" && items.first?["label"] as? Int == 2)
            headers[HTTPField.Name("X-API-Key")!] = apiKey  // revoked above
            expectProblem(
                try await gateway.request(.post, "/api/v1/datasets/offline-package/1", raw: "{}", headers: headers),
                .unauthorized, "invalid_api_key")
            expectProblem(
                try await gateway.request(.post, "/api/v1/datasets/offline-package/1", raw: "{}"), .unauthorized,
                "missing_api_key")

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
