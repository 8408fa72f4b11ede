import Foundation
import ServiceKit
import TestSupport
import Testing

@testable import RankingService

@Suite("The result encryption key", .timeLimit(.minutes(2)))
struct ResultKeyStoreTests {
    @Test(
        "made once, sealed under the master key: every later start reads the same key; another master key cannot",
        arguments: StorageBackend.available)
    func store(_ backend: StorageBackend) async throws {
        try await withTestDatabase(backend) { database in
            _ = try await MigrationRunner.apply(RankingMigrations.all, to: database, logger: TestEnvironment.logger)
            let master = MasterKey(bytes: Array(repeating: 5, count: 32))
            let first = try await ResultKeyStore(database: database, masterKey: master, logger: TestEnvironment.logger)
                .load()
            let again = try await ResultKeyStore(database: database, masterKey: master, logger: TestEnvironment.logger)
                .load()
            #expect(first.publicKeyPEM == again.publicKeyPEM && first.fingerprint == again.fingerprint)
            #expect(first.publicKeyPEM.hasPrefix("-----BEGIN PUBLIC KEY-----"))
            let stored = try await database.withExecutor(logger: TestEnvironment.logger) {
                try await $0.first("SELECT value FROM ranking_metadata WHERE name = 'result_encryption_key'")?
                    .string("value")
            }
            #expect(stored?.contains("PRIVATE KEY") == false)
            await #expect(throws: StartupError.self) {
                _ = try await ResultKeyStore(
                    database: database, masterKey: MasterKey(bytes: Array(repeating: 6, count: 32)),
                    logger: TestEnvironment.logger
                ).load()
            }
        }
    }
}
