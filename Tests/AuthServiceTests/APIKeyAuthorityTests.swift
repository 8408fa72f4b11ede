import Foundation
import ServiceKit
import TestSupport
import Testing

@testable import AuthService

@Suite("Operator API keys on both storage backends", .timeLimit(.minutes(2)))
struct APIKeyAuthorityTests {
    func withKeys(
        _ backend: StorageBackend, _ body: (APIKeyAuthority, ManualWallClock, ServiceDatabase) async throws -> Void
    ) async throws {
        try await withTestDatabase(backend) { database in
            _ = try await MigrationRunner.apply(AuthMigrations.all, to: database, logger: TestEnvironment.logger)
            let clock = ManualWallClock()
            try await body(
                APIKeyAuthority(
                    database: database, logger: TestEnvironment.logger, clock: clock, random: SystemRandomSource()),
                clock, database)
        }
    }

    @Test(
        "create → authenticate (with permission, last use) → revoke; the secret is kept only as its hash",
        arguments: StorageBackend.available)
    func lifeCycle(_ backend: StorageBackend) async throws {
        try await withKeys(backend) { keys, clock, database in
            let (key, secret) = try await keys.create(
                name: " deploy bot ", permissions: [.write], rateLimitPerMinute: 0, expiresAt: nil)
            #expect(secret.hasPrefix("lbk_") && secret.count > 40)
            #expect(key.name == "deploy bot")
            #expect(key.rateLimitPerMinute == 600)
            #expect(secret.hasPrefix(key.prefix))
            let rows = try await database.withExecutor(logger: TestEnvironment.logger) {
                try await $0.execute("SELECT * FROM api_keys", [])
            }
            #expect(!rows.flatMap { $0.columns.values.map { "\($0)" } }.joined().contains(secret))

            let used = try await keys.authenticate(secret: secret, needed: .read)
            #expect(used.id == key.id && used.lastUsedAt == clock.microsecondsSinceEpoch())
            #expect(
                await serviceErrorCode { _ = try await keys.authenticate(secret: secret, needed: .admin) }
                    == "insufficient_permission")
            #expect(
                await serviceErrorCode { _ = try await keys.authenticate(secret: "lbk_wrong", needed: .read) }
                    == "invalid_api_key")
            #expect(
                await serviceErrorCode { _ = try await keys.authenticate(secret: "Bearer x", needed: .read) }
                    == "invalid_api_key")

            let revoked = try await keys.revoke(id: key.id)
            #expect(revoked.revokedAt != nil)
            #expect(try await keys.revoke(id: key.id).revokedAt == revoked.revokedAt)  // again: no change
            #expect(
                await serviceErrorCode { _ = try await keys.authenticate(secret: secret, needed: .read) }
                    == "api_key_revoked")
            #expect(await serviceErrorCode { _ = try await keys.revoke(id: "key_missing") } == "unknown_api_key")
        }
    }

    @Test("expiry, validation and paging", arguments: StorageBackend.available)
    func rules(_ backend: StorageBackend) async throws {
        try await withKeys(backend) { keys, clock, _ in
            let now = clock.microsecondsSinceEpoch()
            let (_, secret) = try await keys.create(
                name: "short", permissions: [.read], rateLimitPerMinute: 10, expiresAt: now + 60_000_000)
            clock.advance(by: .seconds(61))
            #expect(
                await serviceErrorCode { _ = try await keys.authenticate(secret: secret, needed: .read) }
                    == "api_key_expired")
            #expect(
                await serviceErrorCode {
                    _ = try await keys.create(name: "", permissions: [.read], rateLimitPerMinute: 0, expiresAt: nil)
                } == "invalid_name")
            #expect(
                await serviceErrorCode {
                    _ = try await keys.create(
                        name: "a\u{0}b", permissions: [.read], rateLimitPerMinute: 0, expiresAt: nil)
                } == "invalid_name")
            #expect(
                await serviceErrorCode {
                    _ = try await keys.create(name: "x", permissions: [], rateLimitPerMinute: 0, expiresAt: nil)
                } == "invalid_permissions")
            #expect(
                await serviceErrorCode {
                    _ = try await keys.create(name: "x", permissions: [.read], rateLimitPerMinute: -1, expiresAt: nil)
                } == "invalid_rate_limit")
            #expect(
                await serviceErrorCode {
                    _ = try await keys.create(name: "x", permissions: [.read], rateLimitPerMinute: 0, expiresAt: 1)
                } == "invalid_expiry")

            var made: [String] = []
            for index in 0..<5 {
                made.append(
                    try await keys.create(
                        name: "k\(index)", permissions: [.read], rateLimitPerMinute: 0, expiresAt: nil
                    ).key.id)
            }
            _ = try await keys.revoke(id: made[0])
            var seen: [String] = []
            var cursor = ""
            repeat {
                let page = try await keys.list(cursor: cursor, limit: 2, includeRevoked: false)
                #expect(page.keys.count <= 2)
                seen += page.keys.map(\.id)
                cursor = page.nextCursor
            } while !cursor.isEmpty
            #expect(
                Set(seen)
                    == Set(made.dropFirst()).union(
                        try await keys.list(cursor: "", limit: 200, includeRevoked: true).keys.filter {
                            $0.name == "short"
                        }.map(\.id)))
            #expect(
                await serviceErrorCode {
                    _ = try await keys.list(cursor: "'; DROP TABLE api_keys; --", limit: 2, includeRevoked: false)
                } == "invalid_cursor")
            #expect(
                await serviceErrorCode { _ = try await keys.list(cursor: "", limit: 1000, includeRevoked: false) }
                    == "invalid_limit")
        }
    }
}

@Suite("SMTP delivery and module start", .timeLimit(.minutes(2)))
struct MailAndStartTests {
    @Test("the SMTP mailer delivers to a real SMTP server (aiosmtpd)", .enabled(if: ExternalTools.hasPythonPackages))
    func smtpDelivery() async throws {
        let sink = try SMTPSink()
        defer { sink.stop() }
        let mailer = SMTPMailer(
            url: try SMTPURL.parse("smtp://127.0.0.1:\(sink.port)?tls=none"), from: "leaderboard@example.org")
        let body = "Line one\n.leading dot stays\nhttps://example.org/verify/confirm?token=abc_-123"
        try await mailer.send(MailMessage(to: "owner@example.org", subject: "Verify your benchmark device", body: body))
        let message = try await sink.message(number: 1)
        #expect(message.contains("X-Envelope-To: owner@example.org"))
        #expect(message.contains("Subject: Verify your benchmark device"))
        #expect(message.contains("\n.leading dot stays"))
        #expect(message.contains("https://example.org/verify/confirm?token=abc_-123"))
    }

    @Test("an SMTP server that is not there is an error, not a hang")
    func smtpUnreachable() async throws {
        let mailer = SMTPMailer(
            url: try SMTPURL.parse("smtp://127.0.0.1:1?tls=none"), from: "a@example.org", timeout: .seconds(5))
        await #expect(throws: (any Error).self) {
            try await mailer.send(MailMessage(to: "b@example.org", subject: "s", body: "b"))
        }
    }

    @Test(
        "a master key other than the one that sealed the stored secrets stops the start",
        arguments: StorageBackend.available)
    func masterKeyMismatch(_ backend: StorageBackend) async throws {
        try await withTestDatabase(backend) { database in
            _ = try await MigrationRunner.apply(AuthMigrations.all, to: database, logger: TestEnvironment.logger)
            let first = MasterKey(bytes: Array(repeating: 1, count: 32))
            try await first.checkFingerprint(in: database, table: "auth_metadata", logger: TestEnvironment.logger)
            try await first.checkFingerprint(in: database, table: "auth_metadata", logger: TestEnvironment.logger)
            await #expect(throws: StartupError.self) {
                try await MasterKey(bytes: Array(repeating: 2, count: 32)).checkFingerprint(
                    in: database, table: "auth_metadata", logger: TestEnvironment.logger)
            }
        }
    }

    @Test("embedded start creates a private master key file once; a database URL requires a key")
    func masterKeySettings() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mk-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let core = try LeaderboardConfiguration(
            arguments: ["--data-dir", directory], environment: [:], modules: [AuthModule.definition])
        var reader = ConfigurationReader(raw: core.raw)
        let configuration = AuthConfiguration.read(&reader, core: core)
        try reader.check()
        let key = try configuration.masterKey.load(random: SystemRandomSource())
        let again = try configuration.masterKey.load(random: SystemRandomSource())
        #expect(key.fingerprint == again.fingerprint)
        let attributes = try FileManager.default.attributesOfItem(atPath: directory + "/master.key")
        #expect((attributes[.posixPermissions] as? Int) == 0o600)

        #expect(throws: ConfigurationError.self) {
            _ = try LeaderboardConfiguration(
                arguments: ["--database-url", "postgres://u@127.0.0.1/db"], environment: [:],
                modules: [AuthModule.definition])
        }
        #expect(throws: ConfigurationError.self) {
            _ = try LeaderboardConfiguration(
                arguments: ["--master-key", "short"], environment: [:], modules: [AuthModule.definition])
        }
        _ = try LeaderboardConfiguration(
            arguments: [
                "--database-url", "postgres://u@127.0.0.1/db", "--redis-url", "redis://127.0.0.1:6379", "--master-key",
                Data(repeating: 4, count: 32).base64EncodedString(),
            ],
            environment: [:], modules: [AuthModule.definition])
    }
}

@Suite("Auth documentation")
struct AuthDocumentationTests {
    @Test("the README lists every AuthService setting with its flag and default")
    func readmeListsAuthSettings() throws {
        try TestEnvironment.expectREADMEListsSettings(AuthSettings.all)
    }
}
