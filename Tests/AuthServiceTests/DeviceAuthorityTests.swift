import Crypto
import Foundation
import ServiceKit
import TestSupport
import Testing

@testable import AuthService

/// A DeviceAuthority over a fresh, migrated database with a manual clock and a capturing mailer.
struct AuthorityHarness {
    let authority: DeviceAuthority
    let database: ServiceDatabase
    let clock: ManualWallClock
    let mailer: CapturingMailer

    static let difficulty = 8

    static func with(
        _ backend: StorageBackend,
        overlap: Duration = .seconds(600),
        _ body: (AuthorityHarness) async throws -> Void
    ) async throws {
        try await withTestDatabase(backend) { database in
            _ = try await MigrationRunner.apply(AuthMigrations.all, to: database, logger: TestEnvironment.logger)
            let clock = ManualWallClock(microsecondsSinceEpoch: SystemWallClock().microsecondsSinceEpoch())
            let mailer = CapturingMailer()
            let authority = DeviceAuthority(
                database: database, logger: TestEnvironment.logger, clock: clock, random: SystemRandomSource(),
                nonces: InMemoryNonceStore(clock: clock), mailer: mailer,
                masterKey: MasterKey(bytes: Array(repeating: 3, count: 32)), powDifficulty: difficulty,
                secretOverlap: overlap, publicURL: "https://leaderboard.example")
            try await body(AuthorityHarness(authority: authority, database: database, clock: clock, mailer: mailer))
        }
    }

    static func hardwareHash(_ seed: String) -> String { Array(SHA256.hash(data: Array(seed.utf8))).hexEncoded }

    func register(_ seed: String = "rig-1", gpu: String = "gpu-1") async throws -> DeviceAuthority.Registration {
        let pow = solvedChallenge()
        return try await authority.register(
            hardwareHash: Self.hardwareHash(seed), gpuHash: Self.hardwareHash(gpu), hardwareInfo: #"{"cpu":"x"}"#,
            gpuInfo: "", challengeID: pow.id, solution: pow.solution)
    }

    func solvedChallenge() -> (id: String, solution: String) {
        let challenge = authority.challenge()
        return (challenge.id, ProofOfWork.solve(bytes: challenge.bytes, difficulty: challenge.difficulty))
    }

    /// Asks for the email and returns the token from the link in it.
    func requestLink(code: String, email: String = "owner@example.org") async throws -> String {
        let pow = solvedChallenge()
        _ = try await authority.requestVerification(
            code: code, email: email, challengeID: pow.id, solution: pow.solution)
        let body = try #require(mailer.messages.last?.body)
        let line = try #require(body.split(separator: "\n").first { $0.contains("/verify/confirm?token=") })
        #expect(line.hasPrefix("https://leaderboard.example/verify/confirm?token="))
        return String(line.split(separator: "=").last ?? "")
    }

    /// Register, verify, activate: an active device and its secret.
    func activeDevice(_ seed: String = "rig-1") async throws -> (machineID: String, secret: String, code: String) {
        let registration = try await register(seed)
        _ = try await authority.confirmEmail(token: try await requestLink(code: registration.code))
        let issued = try await authority.activate(machineID: registration.machineID, code: registration.code)
        return (registration.machineID, issued.secret, registration.code)
    }

    func signed(
        _ machineID: String, secret: String, nonce: String = UUID().uuidString, time: Int64? = nil,
        body: [UInt8] = Array("{}".utf8)
    ) -> SignedRequest {
        var request = SignedRequest(
            version: .v1, machineID: machineID, requestTime: "\((time ?? clock.microsecondsSinceEpoch()) / 1_000_000)",
            nonce: nonce, signature: "", method: "POST", path: "/api/v1/x", query: "", body: body, bodySHA256: [])
        request.signature = SignedRequest.sign(request.message, secret: secret)
        return request
    }
}

@Suite("DeviceAuthority on both storage backends", .timeLimit(.minutes(2)))
struct DeviceAuthorityTests {
    @Test(
        "register → verify by email → activate once → signed requests → rotation with overlap",
        arguments: StorageBackend.available)
    func lifeCycle(_ backend: StorageBackend) async throws {
        try await AuthorityHarness.with(backend, overlap: .seconds(600)) { h in
            let registration = try await h.register()
            #expect(try await h.authority.status(machineID: registration.machineID).state == .registered)
            let token = try await h.requestLink(code: registration.code)
            #expect(h.mailer.messages.count == 1)
            #expect(h.mailer.messages[0].to == "owner@example.org")
            #expect(try await h.authority.status(machineID: registration.machineID).state == .pendingEmail)
            #expect(
                await serviceErrorCode {
                    _ = try await h.authority.activate(machineID: registration.machineID, code: registration.code)
                } == "device_not_verified")

            let verified = try await h.authority.confirmEmail(token: token)
            #expect(verified.state == .verified)
            // Following the link twice is harmless.
            #expect(try await h.authority.confirmEmail(token: token).state == .verified)

            let issued = try await h.authority.activate(machineID: registration.machineID, code: registration.code)
            #expect(issued.secret.hasPrefix("lbd_"))
            #expect(
                await serviceErrorCode {
                    _ = try await h.authority.activate(machineID: registration.machineID, code: registration.code)
                } == "registration_code_used")

            // Signed requests: accepted once per nonce; a wrong secret or tampered body is a mismatch.
            let request = h.signed(
                registration.machineID, secret: issued.secret, nonce: "00000000000000000000000000000001")
            #expect(try await h.authority.verify(request).machineID == registration.machineID)
            #expect(await serviceErrorCode { _ = try await h.authority.verify(request) } == "nonce_reused")
            var tampered = h.signed(registration.machineID, secret: issued.secret)
            tampered.body = Array(#"{"tps":1e9}"#.utf8)
            #expect(await serviceErrorCode { _ = try await h.authority.verify(tampered) } == "signature_mismatch")
            #expect(
                await serviceErrorCode {
                    _ = try await h.authority.verify(h.signed(registration.machineID, secret: "lbd_guess"))
                } == "signature_mismatch")
            #expect(try await h.authority.authenticate(apiKey: issued.secret).machineID == registration.machineID)

            // Rotation: both secrets verify during the overlap, only the new one after it.
            let rotated = try await h.authority.rotate(machineID: registration.machineID)
            #expect(rotated.secret != issued.secret)
            #expect(rotated.previousValidUntil == h.clock.microsecondsSinceEpoch() + 600_000_000)
            _ = try await h.authority.verify(h.signed(registration.machineID, secret: issued.secret))
            _ = try await h.authority.verify(h.signed(registration.machineID, secret: rotated.secret))
            h.clock.advance(by: .seconds(601))
            #expect(
                await serviceErrorCode {
                    _ = try await h.authority.verify(h.signed(registration.machineID, secret: issued.secret))
                } == "signature_mismatch")
            _ = try await h.authority.verify(h.signed(registration.machineID, secret: rotated.secret))
            #expect(
                await serviceErrorCode { _ = try await h.authority.authenticate(apiKey: issued.secret) }
                    == "invalid_api_key")
            #expect(try await h.authority.authenticate(apiKey: rotated.secret).machineID == registration.machineID)
        }
    }

    @Test(
        "the secret is stored sealed, never in clear, and its key wrap opens only with it",
        arguments: StorageBackend.available)
    func secretsAtRest(_ backend: StorageBackend) async throws {
        try await AuthorityHarness.with(backend) { h in
            let device = try await h.activeDevice()
            let rows = try await h.database.withExecutor(logger: TestEnvironment.logger) { sql in
                try await sql.execute("SELECT * FROM devices", [])
            }
            let dump = rows.flatMap { $0.columns.values.map { "\($0)" } }.joined(separator: " ")
            #expect(!dump.contains(device.secret))
            #expect(!dump.contains(Array(device.secret.utf8).hexEncoded))
            let key = Array(repeating: UInt8(5), count: 32)
            let wrapped = try await h.authority.wrapKey(machineID: device.machineID, context: "dataset:v1", key: key)
            #expect(try wrapped.unwrap(secret: device.secret) == key)
        }
    }

    @Test(
        "registration: same hardware, same id and a fresh code; verified hardware cannot re-register",
        arguments: StorageBackend.available)
    func registration(_ backend: StorageBackend) async throws {
        try await AuthorityHarness.with(backend) { h in
            let first = try await h.register()
            let second = try await h.register()
            #expect(first.machineID == second.machineID)
            #expect(first.code != second.code)
            // The replaced code is gone.
            #expect(
                await serviceErrorCode { _ = try await h.requestLink(code: first.code) } == "invalid_registration_code")
            let otherGPU = try await h.register(gpu: "gpu-2")
            #expect(otherGPU.machineID != first.machineID)

            _ = try await h.authority.confirmEmail(token: try await h.requestLink(code: second.code))
            #expect(await serviceErrorCode { _ = try await h.register() } == "device_already_registered")
            #expect(
                await serviceErrorCode {
                    _ = try await h.authority.register(
                        hardwareHash: "nope", gpuHash: AuthorityHarness.hardwareHash("g"), hardwareInfo: "",
                        gpuInfo: "",
                        challengeID: "", solution: "")
                } == "invalid_hardware_hash")
            #expect(
                await serviceErrorCode {
                    _ = try await h.authority.register(
                        hardwareHash: AuthorityHarness.hardwareHash("h"), gpuHash: "", hardwareInfo: "", gpuInfo: "",
                        challengeID: "", solution: "")
                } == "invalid_gpu_hash")
            #expect(
                await serviceErrorCode {
                    _ = try await h.authority.register(
                        hardwareHash: AuthorityHarness.hardwareHash("h"), gpuHash: AuthorityHarness.hardwareHash("g"),
                        hardwareInfo: String(repeating: "x", count: 17_000), gpuInfo: "", challengeID: "", solution: "")
                } == "invalid_hardware_info")
        }
    }

    @Test(
        "codes expire after 24 h; wrong codes and codes of other devices are refused",
        arguments: StorageBackend.available)
    func codes(_ backend: StorageBackend) async throws {
        try await AuthorityHarness.with(backend) { h in
            let registration = try await h.register()
            #expect(
                await serviceErrorCode { _ = try await h.requestLink(code: "ABCD-EFGH-JKMN") }
                    == "invalid_registration_code")
            #expect(
                await serviceErrorCode { _ = try await h.requestLink(code: "not a code") }
                    == "invalid_registration_code")
            let other = try await h.register("rig-2")
            #expect(
                await serviceErrorCode {
                    _ = try await h.authority.activate(machineID: registration.machineID, code: other.code)
                } == "invalid_registration_code")
            h.clock.advance(by: .seconds(24 * 3600 + 1))
            #expect(
                await serviceErrorCode { _ = try await h.requestLink(code: registration.code) }
                    == "registration_code_expired")
            #expect(h.mailer.messages.isEmpty)
        }
    }

    @Test(
        "proof of work: a wrong or reused solution is refused; a typo elsewhere does not burn the challenge",
        arguments: StorageBackend.available)
    func proofOfWork(_ backend: StorageBackend) async throws {
        try await AuthorityHarness.with(backend) { h in
            let registration = try await h.register()
            let challenge = h.authority.challenge()
            let solution = ProofOfWork.solve(bytes: challenge.bytes, difficulty: challenge.difficulty)
            var wrong = 0
            while ProofOfWork.leadingZeroBits(SHA256.hash(data: challenge.bytes + Array("w\(wrong)".utf8)))
                >= challenge.difficulty
            { wrong += 1 }
            #expect(
                await serviceErrorCode {
                    _ = try await h.authority.requestVerification(
                        code: registration.code, email: "a@example.org", challengeID: challenge.id,
                        solution: "w\(wrong)")
                } == "invalid_pow_solution")
            #expect(
                await serviceErrorCode {
                    _ = try await h.authority.requestVerification(
                        code: registration.code, email: "a@example.org", challengeID: "forged", solution: solution)
                } == "invalid_challenge")
            #expect(
                await serviceErrorCode {
                    _ = try await h.authority.requestVerification(
                        code: registration.code, email: "not-an-email", challengeID: challenge.id, solution: solution)
                } == "invalid_email")
            _ = try await h.authority.requestVerification(
                code: registration.code, email: "a@example.org", challengeID: challenge.id, solution: solution)
            let again = try await h.register()
            #expect(
                await serviceErrorCode {
                    _ = try await h.authority.requestVerification(
                        code: again.code, email: "a@example.org", challengeID: challenge.id, solution: solution)
                } == "challenge_used")
            h.clock.advance(by: .seconds(601))
            let late = h.solvedChallenge()
            h.clock.advance(by: .seconds(601))
            #expect(
                await serviceErrorCode {
                    _ = try await h.authority.requestVerification(
                        code: again.code, email: "a@example.org", challengeID: late.id, solution: late.solution)
                } == "challenge_expired")
        }
    }

    @Test(
        "email: a failed send leaves nothing behind; five links a day per device, three per recipient",
        arguments: StorageBackend.available)
    func emails(_ backend: StorageBackend) async throws {
        try await AuthorityHarness.with(backend) { h in
            let registration = try await h.register()
            h.mailer.setFailing(true)
            #expect(
                await serviceErrorCode { _ = try await h.requestLink(code: registration.code) } == "email_unavailable")
            #expect(try await countRows("email_verifications", in: h.database) == 0)
            #expect(try await countRows("verification_mails", in: h.database) == 0)
            h.mailer.setFailing(false)
            for number in 0..<5 {
                _ = try await h.requestLink(code: registration.code, email: "o\(number)@example.org")
            }
            #expect(
                await serviceErrorCode { _ = try await h.requestLink(code: registration.code, email: "o9@example.org") }
                    == "too_many_verification_emails")
            #expect(h.mailer.messages.count == 5)

            // One inbox, however it is spelled and whichever devices ask: at most three mails a day.
            for (number, spelling) in ["victim@example.org", "Victim+1@EXAMPLE.org", "victim+x@example.org"]
                .enumerated()
            {
                let device = try await h.register("bomber-\(number)")
                _ = try await h.requestLink(code: device.code, email: spelling)
            }
            let fourth = try await h.register("bomber-4")
            #expect(
                await serviceErrorCode { _ = try await h.requestLink(code: fourth.code, email: "VICTIM+y@example.org") }
                    == "too_many_verification_emails")
            #expect(h.mailer.messages.count == 8)
            // A day later the inbox may get mail again.
            h.clock.advance(by: .seconds(86_401))
            let later = try await h.register("bomber-5")
            _ = try await h.requestLink(code: later.code, email: "victim@example.org")
        }
    }

    @Test(
        "links: expired, unknown and malformed links are refused; only the followed link's device verifies",
        arguments: StorageBackend.available)
    func links(_ backend: StorageBackend) async throws {
        try await AuthorityHarness.with(backend) { h in
            let registration = try await h.register()
            let token = try await h.requestLink(code: registration.code)
            #expect(
                await serviceErrorCode { _ = try await h.authority.confirmEmail(token: "short") }
                    == "invalid_verification_link")
            #expect(
                await serviceErrorCode {
                    _ = try await h.authority.confirmEmail(token: String(repeating: "A", count: 43))
                }
                    == "invalid_verification_link")
            h.clock.advance(by: .seconds(24 * 3600 + 1))
            #expect(
                await serviceErrorCode { _ = try await h.authority.confirmEmail(token: token) }
                    == "verification_link_expired")
            #expect(try await h.authority.status(machineID: registration.machineID).state == .pendingEmail)
        }
    }

    @Test(
        "signed requests from unknown, unverified or not yet activated devices are refused",
        arguments: StorageBackend.available)
    func deviceStates(_ backend: StorageBackend) async throws {
        try await AuthorityHarness.with(backend) { h in
            let registration = try await h.register()
            #expect(
                await serviceErrorCode {
                    _ = try await h.authority.verify(h.signed(registration.machineID, secret: "lbd_x"))
                } == "device_not_verified")
            _ = try await h.authority.confirmEmail(token: try await h.requestLink(code: registration.code))
            #expect(
                await serviceErrorCode {
                    _ = try await h.authority.verify(h.signed(registration.machineID, secret: "lbd_x"))
                } == "device_not_active")
            #expect(
                await serviceErrorCode {
                    _ = try await h.authority.verify(h.signed(String(repeating: "0", count: 32), secret: "lbd_x"))
                } == "unknown_device")
            #expect(
                await serviceErrorCode { _ = try await h.authority.verify(h.signed("../../etc", secret: "lbd_x")) }
                    == "unknown_device")
            #expect(
                await serviceErrorCode { _ = try await h.authority.rotate(machineID: registration.machineID) }
                    == "device_not_active")
            #expect(
                await serviceErrorCode { _ = try await h.authority.status(machineID: "zz") } == "invalid_machine_id")
            let device = try await h.activeDevice("rig-9")
            let stale = h.signed(
                device.machineID, secret: device.secret, time: h.clock.microsecondsSinceEpoch() - 301_000_000)
            #expect(await serviceErrorCode { _ = try await h.authority.verify(stale) } == "request_time_stale")
            let future = h.signed(
                device.machineID, secret: device.secret, time: h.clock.microsecondsSinceEpoch() + 301_000_000)
            #expect(await serviceErrorCode { _ = try await h.authority.verify(future) } == "request_time_future")
            #expect(
                await serviceErrorCode { _ = try await h.authority.authenticate(apiKey: "lbd_unknown") }
                    == "invalid_api_key")
            #expect(
                await serviceErrorCode { _ = try await h.authority.authenticate(apiKey: "lbk_operator") }
                    == "invalid_api_key")
        }
    }

    @Test(
        "housekeeping purges expired codes and links, ended overlaps and abandoned devices",
        arguments: StorageBackend.available)
    func purge(_ backend: StorageBackend) async throws {
        try await AuthorityHarness.with(backend, overlap: .seconds(60)) { h in
            let abandoned = try await h.register("abandoned")
            _ = try await h.requestLink(code: abandoned.code)
            let active = try await h.activeDevice("kept")
            _ = try await h.authority.rotate(machineID: active.machineID)
            #expect(try await h.authority.purge() == .init())
            h.clock.advance(by: .seconds(2 * 24 * 3600 + 1))  // a day past the 24 h expiry
            let counts = try await h.authority.purge()
            // Both devices' codes and links, and the ended overlap.
            #expect(counts == .init(codes: 2, verifications: 2, mails: 2, previousSecrets: 1, abandonedDevices: 0))
            h.clock.advance(by: .seconds(30 * 24 * 3600))
            #expect(try await h.authority.purge().abandonedDevices == 1)
            #expect(
                await serviceErrorCode { _ = try await h.authority.status(machineID: abandoned.machineID) }
                    == "unknown_device")
            #expect(try await h.authority.status(machineID: active.machineID).state == .active)
        }
    }
}
