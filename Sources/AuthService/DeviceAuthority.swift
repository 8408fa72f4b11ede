import Logging
import ServiceKit
import UntrustedInput

/// Device registration, verification, secrets and signed-request checks: the domain rules applied to storage, one
/// transaction per operation. Both the RPC service and the CLI use it.
struct DeviceAuthority: Sendable {
    let database: ServiceDatabase
    let logger: Logger
    let clock: any WallClock
    let random: any RandomSource
    let nonces: any NonceStore
    let mailer: any Mailer
    let masterKey: MasterKey
    let proofOfWork: ProofOfWork
    let policy: SignaturePolicy
    let secretOverlap: Duration
    let publicURL: String

    static let codeLifetime: Duration = .seconds(24 * 3600)
    static let linkLifetime: Duration = .seconds(24 * 3600)
    static let emailsPerDay = 5
    /// Verification mails one recipient mailbox may get in 24 hours, whatever devices ask for them.
    static let mailsPerRecipientPerDay = 3

    init(
        database: ServiceDatabase, logger: Logger, clock: any WallClock, random: any RandomSource,
        nonces: any NonceStore, mailer: any Mailer, masterKey: MasterKey, powDifficulty: Int,
        secretOverlap: Duration, publicURL: String
    ) {
        self.database = database
        self.logger = logger
        self.clock = clock
        self.random = random
        self.nonces = nonces
        self.mailer = mailer
        self.masterKey = masterKey
        self.proofOfWork = ProofOfWork(
            keyBytes: masterKey.derive("pow"), difficulty: powDifficulty, lifetime: .seconds(600))
        self.policy = SignaturePolicy()
        self.secretOverlap = secretOverlap
        self.publicURL = publicURL
    }

    struct Registration: Sendable, Equatable {
        var machineID: String
        var code: String
        var expiresAt: Int64
    }

    /// Registers hardware, or issues a fresh code to hardware that has not verified yet.
    /// Registers hardware (or registers it again, with a fresh code). Costs a solved proof-of-work challenge, like
    /// verification: registrations are not free to mass-produce.
    func register(
        hardwareHash: String, gpuHash: String, hardwareInfo: String, gpuInfo: String, challengeID: String,
        solution: String
    ) async throws -> Registration {
        let hardware = try DeviceIdentity.hardwareHash(hardwareHash, field: "hardware_hash")
        let gpu = try DeviceIdentity.hardwareHash(gpuHash, field: "gpu_hash")
        let hardwareInfo = try DeviceIdentity.info(hardwareInfo, field: "hardware_info")
        let gpuInfo = try DeviceIdentity.info(gpuInfo, field: "gpu_info")
        let machineID = DeviceIdentity.machineID(hardwareHash: hardware, gpuHash: gpu)
        let now = clock.microsecondsSinceEpoch()
        try await spend(try proofOfWork.check(id: challengeID, solution: solution, now: now), now: now)
        let code = RegistrationCode.generate(using: random)
        let expiresAt = now + Self.codeLifetime.microseconds
        try await database.transaction(logger: logger) { sql in
            let repository = AuthRepository(sql)
            var device =
                try await repository.device(machineID, lock: true)
                ?? DeviceRecord(
                    machineID: machineID, hardwareHash: hardware, gpuHash: gpu, hardwareInfo: hardwareInfo,
                    gpuInfo: gpuInfo, state: .registered, registeredAt: now)
            device.state = try device.state.registeringAgain()
            device.hardwareInfo = hardwareInfo
            device.gpuInfo = gpuInfo
            try await repository.save(device)
            try await repository.deleteUnusedCodes(machineID: machineID)
            try await repository.deleteUnconfirmedVerifications(machineID: machineID)
            try await repository.insert(
                RegistrationCodeRecord(code: code, machineID: machineID, createdAt: now, expiresAt: expiresAt))
        }
        logger.info("device registered", metadata: ["machine_id": "\(machineID)"])
        return Registration(machineID: machineID, code: code, expiresAt: expiresAt)
    }

    func challenge() -> ProofOfWork.Challenge {
        proofOfWork.issue(now: clock.microsecondsSinceEpoch(), random: random)
    }

    /// Uses a checked challenge up. Keyed by its random bytes, not by the id as sent: one challenge, one use,
    /// however it is spelled.
    private func spend(_ challenge: ProofOfWork.Challenge, now: Int64) async throws {
        let remaining = Duration.microseconds(max(1, challenge.expiresAt - now))
        guard try await nonces.claim(Array(challenge.bytes.prefix(16)).hexEncoded, scope: "pow", ttl: remaining) else {
            throw AuthError.conflict("challenge_used", "This challenge has already been used; fetch a new one.")
        }
    }

    struct VerificationStarted: Sendable, Equatable {
        var machineID: String
        var state: DeviceState
        var linkExpiresAt: Int64
    }

    /// Checks the code and the proof of work, then emails a verification link.
    func requestVerification(code: String, email: String, challengeID: String, solution: String) async throws
        -> VerificationStarted
    {
        let code = try RegistrationCode.normalize(code)
        let email = try EmailAddress.normalize(email)
        let now = clock.microsecondsSinceEpoch()
        let challenge = try proofOfWork.check(id: challengeID, solution: solution, now: now)
        let token = random.bytes(32).base64URLEncoded
        let tokenHash = SecretToken.lookupHash(token)
        let expiresAt = now + Self.linkLifetime.microseconds
        let nonces = nonces
        let machineID = try await database.transaction(logger: logger) { sql in
            let repository = AuthRepository(sql)
            guard let record = try await repository.code(code) else { throw AuthError.invalidRegistrationCode }
            try record.check(machineID: nil, now: now)
            guard var device = try await repository.device(record.machineID, lock: true) else {
                throw AuthError.invalidRegistrationCode
            }
            device.state = try device.state.requestingEmail()
            let sent = try await repository.verificationCount(
                machineID: device.machineID, since: now - Self.linkLifetime.microseconds)
            guard sent < Self.emailsPerDay else { throw AuthError.tooManyVerificationEmails }
            // Per recipient too: registrations are cheap to repeat, a victim's inbox is not.
            let recipient = EmailAddress.mailboxKey(email)
            guard
                try await repository.mailCount(recipient: recipient, since: now - 86_400_000_000)
                    < Self.mailsPerRecipientPerDay
            else { throw AuthError.tooManyMailsToRecipient }
            // Claimed last, so a mistake in the code or email does not cost the person their solved challenge.
            try await spend(challenge, now: now)
            try await repository.recordMail(recipient: recipient, machineID: device.machineID, at: now)
            try await repository.save(device)
            try await repository.insert(
                EmailVerificationRecord(
                    tokenHash: tokenHash, machineID: device.machineID, email: email, createdAt: now,
                    expiresAt: expiresAt))
            return device.machineID
        }
        do {
            try await mailer.send(verificationEmail(to: email, machineID: machineID, code: code, token: token))
        } catch {
            logger.error(
                "verification email failed", metadata: ["machine_id": "\(machineID)", "error": "\(error)"])
            _ = try? await database.withExecutor(logger: logger) { sql in
                try await AuthRepository(sql).deleteVerification(tokenHash: tokenHash)
                try await AuthRepository(sql).deleteMail(machineID: machineID, at: now)
            }
            throw AuthError.emailUnavailable
        }
        return VerificationStarted(machineID: machineID, state: .pendingEmail, linkExpiresAt: expiresAt)
    }

    func verificationLink(token: String) -> String {
        "\(publicURL)/verify/confirm?token=\(token)"
    }

    func verificationEmail(to email: String, machineID: String, code: String, token: String) -> MailMessage {
        MailMessage(
            to: email, subject: "Verify your benchmark device",
            body: """
                Someone, hopefully you, asked to verify a benchmark device with this address.

                Device: \(machineID)
                Registration code: \(RegistrationCode.display(code))

                To verify it, open this link within 24 hours:
                \(verificationLink(token: token))

                If you did not ask for this, ignore this email; nothing happens without the link.
                """)
    }

    /// Follows the emailed link: the device becomes verified. Following a link twice is harmless.
    func confirmEmail(token: String) async throws -> DeviceRecord {
        guard (16...128).contains(token.utf8.count), Base64URL.decodeCanonical(token) != nil else {
            throw AuthError.invalidVerificationLink
        }
        let tokenHash = SecretToken.lookupHash(token)
        let now = clock.microsecondsSinceEpoch()
        let device = try await database.transaction(logger: logger) { sql in
            let repository = AuthRepository(sql)
            guard let record = try await repository.verification(tokenHash: tokenHash),
                var device = try await repository.device(record.machineID, lock: true)
            else { throw AuthError.invalidVerificationLink }
            if record.confirmedAt != nil { return device }
            guard now < record.expiresAt else { throw AuthError.verificationLinkExpired }
            device.state = try device.state.confirmingEmail()
            device.email = record.email
            device.verifiedAt = now
            try await repository.save(device)
            try await repository.confirm(tokenHash: tokenHash, at: now)
            try await repository.deleteUnconfirmedVerifications(machineID: device.machineID)
            return device
        }
        logger.info("device verified", metadata: ["machine_id": "\(device.machineID)"])
        return device
    }

    struct IssuedSecret: Sendable, Equatable {
        var machineID: String
        var secret: String
        var previousValidUntil: Int64?
    }

    /// Hands out the device secret, exactly once, to the holder of the registration code of a verified device.
    func activate(machineID: String, code: String) async throws -> IssuedSecret {
        let machineID = try DeviceIdentity.machineID(machineID)
        let code = try RegistrationCode.normalize(code)
        let now = clock.microsecondsSinceEpoch()
        let secret = SecretToken.generate(prefix: SecretToken.devicePrefix, using: random)
        let stored = try storedSecret(secret, machineID: machineID)
        try await database.transaction(logger: logger) { sql in
            let repository = AuthRepository(sql)
            guard let record = try await repository.code(code) else { throw AuthError.invalidRegistrationCode }
            try record.check(machineID: machineID, now: now)
            guard var device = try await repository.device(machineID, lock: true) else {
                throw AuthError.unknownDevice
            }
            device.state = try device.state.activating()
            device.secret = stored
            device.activatedAt = now
            try await repository.save(device)
            try await repository.markUsed(code: code, at: now)
        }
        logger.info("device activated", metadata: ["machine_id": "\(machineID)"])
        return IssuedSecret(machineID: machineID, secret: secret, previousValidUntil: nil)
    }

    func status(machineID: String) async throws -> DeviceRecord {
        let machineID = try DeviceIdentity.machineID(machineID)
        guard
            let device = try await database.withExecutor(
                logger: logger, { try await AuthRepository($0).device(machineID) })
        else { throw AuthError.unknownDevice }
        return device
    }

    /// Issues a new secret; the previous one keeps verifying for the overlap.
    func rotate(machineID: String) async throws -> IssuedSecret {
        let machineID = try DeviceIdentity.machineID(machineID)
        let now = clock.microsecondsSinceEpoch()
        let secret = SecretToken.generate(prefix: SecretToken.devicePrefix, using: random)
        let stored = try storedSecret(secret, machineID: machineID)
        let until = secretOverlap > .zero ? now + secretOverlap.microseconds : nil
        try await database.transaction(logger: logger) { sql in
            let repository = AuthRepository(sql)
            guard var device = try await repository.device(machineID, lock: true) else { throw AuthError.unknownDevice }
            try device.state.requireActive()
            device.previousSecret = until == nil ? nil : device.secret
            device.previousValidUntil = until
            device.secret = stored
            device.secretRotatedAt = now
            try await repository.save(device)
        }
        logger.info("device secret rotated", metadata: ["machine_id": "\(machineID)"])
        return IssuedSecret(machineID: machineID, secret: secret, previousValidUntil: until)
    }

    /// Checks a signed request: formats and clock window, the device, the HMAC (current secret, or the previous one
    /// during a rotation overlap), then consumes the nonce. The order is part of docs/SIGNING.md.
    func verify(_ request: SignedRequest) async throws -> DeviceRecord {
        let now = clock.microsecondsSinceEpoch()
        let signature = try policy.checkFormat(request, now: now)
        guard let machineID = try? DeviceIdentity.machineID(request.machineID) else { throw AuthError.unknownDevice }
        guard
            let device = try await database.withExecutor(
                logger: logger, { try await AuthRepository($0).device(machineID) })
        else { throw AuthError.unknownDevice }
        try device.state.requireActive()
        let secrets = try device.validSecrets(at: now).map { try openSecret($0, machineID: machineID) }
        guard policy.matches(request, signature: signature, secrets: secrets) else {
            throw AuthError.unauthenticated("signature_mismatch", "The signature does not match the request.")
        }
        guard try await nonces.claim(request.nonce, scope: machineID, ttl: policy.nonceLifetime) else {
            throw AuthError.conflict("nonce_reused", "This nonce was already used; every request needs a new one.")
        }
        return device
    }

    /// The device whose secret is this API key (`X-API-Key` clients).
    func authenticate(apiKey: String) async throws -> DeviceRecord {
        guard apiKey.hasPrefix(SecretToken.devicePrefix), apiKey.utf8.count < 128 else { throw AuthError.invalidAPIKey }
        let now = clock.microsecondsSinceEpoch()
        let hash = SecretToken.lookupHash(apiKey)
        guard
            let device = try await database.withExecutor(
                logger: logger, { try await AuthRepository($0).device(secretHash: hash, now: now) })
        else { throw AuthError.invalidAPIKey }
        try device.state.requireActive()
        return device
    }

    /// Wraps key material for one active device under a key derived from its current secret.
    func wrapKey(machineID: String, context: String, key: [UInt8]) async throws -> KeyWrap {
        guard (1...200).contains(context.utf8.count) else {
            throw AuthError.invalid("invalid_context", "context must be 1 to 200 bytes.")
        }
        guard (16...64).contains(key.count) else {
            throw AuthError.invalid("invalid_key", "key must be 16 to 64 bytes.")
        }
        let device = try await status(machineID: machineID)
        try device.state.requireActive()
        guard let stored = device.secret else { throw AuthError.deviceNotActive }
        return try KeyWrap.wrap(
            key, secret: try openSecret(stored, machineID: device.machineID), context: context, random: random)
    }

    /// One housekeeping pass: expired codes and links (a day past expiry), ended rotation overlaps, and devices
    /// that never verified within 30 days.
    func purge() async throws -> AuthRepository.PurgeCounts {
        let now = clock.microsecondsSinceEpoch()
        let day: Int64 = 24 * 3600 * 1_000_000
        return try await database.transaction(logger: logger) { sql in
            try await AuthRepository(sql).purge(now: now, expiredBefore: now - day, abandonedBefore: now - 30 * day)
        }
    }

    private func storedSecret(_ secret: String, machineID: String) throws -> StoredSecret {
        StoredSecret(
            sealed: try masterKey.seal(Array(secret.utf8), purpose: "device-secret:\(machineID)"),
            hash: SecretToken.lookupHash(secret))
    }

    private func openSecret(_ stored: StoredSecret, machineID: String) throws -> String {
        String(decoding: try masterKey.open(stored.sealed, purpose: "device-secret:\(machineID)"), as: UTF8.self)
    }
}
