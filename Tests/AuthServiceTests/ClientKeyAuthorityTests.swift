import Foundation
import ServiceKit
import TestSupport
import Testing

@testable import AuthService

@Suite("DeepStressModel client keys", .timeLimit(.minutes(2)))
struct ClientKeyAuthorityTests {
    @Test(
        "an active device makes keys that authenticate as it, stored hashed, limited, revocable",
        arguments: StorageBackend.available)
    func lifecycle(_ backend: StorageBackend) async throws {
        try await AuthorityHarness.with(backend) { harness in
            let keys = ClientKeyAuthority(
                database: harness.database, logger: TestEnvironment.logger, clock: harness.clock,
                random: SystemRandomSource())
            let device = try await harness.activeDevice()
            let created = try await keys.create(machineID: device.machineID, name: " my GUI ")
            #expect(created.apiKey.hasPrefix("dsm_") && created.apiKey.utf8.count == 47)
            #expect(created.key.name == "my GUI" && created.apiKey.hasPrefix(created.key.prefix))
            let found = try await keys.authenticate(apiKey: created.apiKey)
            #expect(found.machineID == device.machineID && found.keyID == created.key.keyID)

            // Stored as its SHA-256 only.
            let rows = try await harness.database.withExecutor(logger: TestEnvironment.logger) {
                try await $0.execute("SELECT key_hash FROM client_keys")
            }
            let stored = try rows.map { try $0.string("key_hash") }
            #expect(stored.count == 1 && stored[0] != created.apiKey && !stored[0].contains("dsm_"))

            // Wrong, malformed and other devices' keys.
            for wrong in ["dsm_" + String(repeating: "A", count: 43), "lbd_x", "", device.secret] {
                #expect(await serviceErrorCode { _ = try await keys.authenticate(apiKey: wrong) } == "invalid_api_key")
            }
            let other = try await harness.activeDevice("rig-2")
            #expect(
                await serviceErrorCode {
                    _ = try await keys.revoke(keyID: created.key.keyID, machineID: other.machineID)
                }
                    == "unknown_client_key")

            // At most five live keys.
            for _ in 0..<4 { _ = try await keys.create(machineID: device.machineID, name: "") }
            #expect(
                await serviceErrorCode { _ = try await keys.create(machineID: device.machineID, name: "") }
                    == "too_many_client_keys")

            // Revoked: no longer authenticates; listed only with include_revoked; revoking again changes nothing.
            let revoked = try await keys.revoke(keyID: created.key.keyID, machineID: device.machineID)
            #expect(revoked.revokedAt != nil)
            #expect(
                await serviceErrorCode { _ = try await keys.authenticate(apiKey: created.apiKey) } == "invalid_api_key")
            #expect(try await keys.list(machineID: device.machineID, includeRevoked: false).count == 4)
            #expect(try await keys.list(machineID: device.machineID, includeRevoked: true).count == 5)
            #expect(try await keys.revoke(keyID: created.key.keyID, machineID: device.machineID) == revoked)
            _ = try await keys.create(machineID: device.machineID, name: "")

            // An operator revokes any device's key, audited.
            let operated = try await keys.create(machineID: other.machineID, name: "")
            _ = try await keys.revoke(keyID: operated.key.keyID, machineID: nil)
            let log = try await AuditTrail.read(harness.database, logger: TestEnvironment.logger, after: 0, limit: 0)
            #expect(log.map(\.action) == ["clientkey.revoke"] && log[0].target == operated.key.keyID)

            // A device that is not active gets no key.
            let registered = try await harness.register("rig-3")
            #expect(
                await serviceErrorCode { _ = try await keys.create(machineID: registered.machineID, name: "") }
                    == "device_not_verified")
            #expect(
                await serviceErrorCode { _ = try await keys.create(machineID: "nope", name: "") } == "unknown_device")
        }
    }
}
