import Foundation
public import ServiceKit

/// The Auth target's settings (flags and `LEADERBOARD_*` variables like every other setting).
public enum AuthSettings {
    public static let masterKey = Setting(
        "auth-master-key", secret: true,
        help: "Base64 of 32 random bytes sealing device secrets at rest. Takes precedence over auth-master-key-file.")
    public static let masterKeyFile = Setting(
        "auth-master-key-file",
        help: "File holding the master key (base64). Empty: <data-dir>/auth-master.key, created on first start "
            + "when storage is embedded; required (or auth-master-key) with a database URL.")
    public static let smtpURL = Setting(
        "smtp-url", secret: true,
        help: "SMTP relay for verification emails (smtp://user:pass@host:587, smtps://…:465, smtp://host:25?tls=none). "
            + "Empty: the link is written to the log.")
    public static let mailFrom = Setting(
        "mail-from", default: "leaderboard@localhost", help: "Sender address of verification emails.")
    public static let powDifficulty = Setting(
        "pow-difficulty", default: "18",
        help:
            "Leading zero bits the verification proof of work needs (each bit doubles the work; 18 ≈ 1–3 s in a browser)."
    )
    public static let secretOverlapSeconds = Setting(
        "secret-overlap-seconds", default: "600",
        help: "After a device secret is rotated, how long the previous one keeps verifying.")

    public static let all: [Setting] = [
        masterKey, masterKeyFile, smtpURL, mailFrom, powDifficulty, secretOverlapSeconds,
    ]
}

/// Validated Auth settings.
public struct AuthConfiguration: Sendable {
    /// Where the master key comes from.
    public enum MasterKeySource: Sendable, Equatable {
        case value([UInt8])
        /// A file; created with a fresh key when `create` and missing.
        case file(path: String, create: Bool)
    }

    public var masterKey: MasterKeySource
    public var smtp: SMTPURL?
    public var mailFrom: String
    public var powDifficulty: Int
    public var secretOverlap: Duration
    public var publicURL: String

    /// Reads the settings, adding every problem to `reader`.
    public static func read(_ reader: inout ConfigurationReader, core: LeaderboardConfiguration) -> AuthConfiguration {
        var masterKey = MasterKeySource.file(path: "\(core.dataDirectory)/auth-master.key", create: true)
        let keyText = reader.string(AuthSettings.masterKey)
        let keyFile = reader.string(AuthSettings.masterKeyFile)
        if !keyText.isEmpty {
            if let bytes = [UInt8](base64URLEncoded: keyText), bytes.count == 32 {
                masterKey = .value(bytes)
            } else {
                reader.fail(AuthSettings.masterKey, "must be base64 of exactly 32 bytes (e.g. openssl rand -base64 32)")
            }
        } else if !keyFile.isEmpty {
            if !FileSystem.isReadableFile(keyFile) {
                reader.fail(AuthSettings.masterKeyFile, "cannot read file '\(keyFile)'")
            }
            masterKey = .file(path: keyFile, create: false)
        } else if !core.isEmbeddedStorage {
            // Replicas sharing a database must share the key; a key generated per machine would lock them out.
            reader.fail(
                AuthSettings.masterKey, "required with a database URL (set auth-master-key or auth-master-key-file)")
        }
        let smtpText = reader.string(AuthSettings.smtpURL)
        let smtp = smtpText.isEmpty ? nil : reader.parse(AuthSettings.smtpURL, SMTPURL.parse)
        let mailFrom = reader.string(AuthSettings.mailFrom)
        if (try? EmailAddress.normalize(mailFrom)) == nil, !mailFrom.hasSuffix("@localhost") {
            reader.fail(AuthSettings.mailFrom, "not an email address")
        }
        return AuthConfiguration(
            masterKey: masterKey, smtp: smtp, mailFrom: mailFrom,
            powDifficulty: reader.integer(AuthSettings.powDifficulty, in: 1...32),
            secretOverlap: .seconds(reader.integer(AuthSettings.secretOverlapSeconds, in: 0...86_400)),
            publicURL: core.publicURL)
    }

    /// Loads (or, for an embedded start, creates) the master key.
    func loadMasterKey(random: any RandomSource) throws -> MasterKey {
        switch masterKey {
        case .value(let bytes):
            return MasterKey(bytes: bytes)
        case .file(let path, let create):
            if !FileManager.default.fileExists(atPath: path), create {
                try FileSystem.createDirectory((path as NSString).deletingLastPathComponent)
                let text = Data(random.bytes(32)).base64EncodedString() + "\n"
                guard
                    FileManager.default.createFile(
                        atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600])
                else {
                    throw StartupError(
                        origin: AuthSettings.masterKeyFile.environmentVariable, message: "cannot create '\(path)'")
                }
            }
            guard let text = try? String(contentsOfFile: path, encoding: .utf8),
                let bytes = [UInt8](base64URLEncoded: text.trimmingCharacters(in: .whitespacesAndNewlines)),
                bytes.count == 32
            else {
                throw StartupError(
                    origin: AuthSettings.masterKeyFile.environmentVariable,
                    message: "'\(path)' does not hold base64 of 32 bytes")
            }
            return MasterKey(bytes: bytes)
        }
    }
}
