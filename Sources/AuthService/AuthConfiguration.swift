import Foundation
public import ServiceKit

/// The Auth target's settings (flags and `LEADERBOARD_*` variables like every other setting).
public enum AuthSettings {
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

    /// The master key settings are shared with the dataset module (``MasterKeySettings``).
    public static let all: [Setting] =
        MasterKeySettings.all + [smtpURL, mailFrom, powDifficulty, secretOverlapSeconds]
}

/// Validated Auth settings.
public struct AuthConfiguration: Sendable {
    public var masterKey: MasterKeySource
    public var smtp: SMTPURL?
    public var mailFrom: String
    public var powDifficulty: Int
    public var secretOverlap: Duration
    public var publicURL: String

    /// Reads the settings, adding every problem to `reader`.
    public static func read(_ reader: inout ConfigurationReader, core: LeaderboardConfiguration) -> AuthConfiguration {
        let masterKey = MasterKeySource.read(&reader, core: core)
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
}
