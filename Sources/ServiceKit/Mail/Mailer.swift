public import Logging

/// One plain-text email.
public struct MailMessage: Sendable, Equatable {
    public let to: String
    public let subject: String
    public let body: String

    public init(to: String, subject: String, body: String) {
        self.to = to
        self.subject = subject
        self.body = body
    }
}

/// Sends email. ``SMTPMailer`` relays through a configured server; ``LogMailer`` is the embedded default.
public protocol Mailer: Sendable {
    func send(_ message: MailMessage) async throws
}

/// Writes each message to the log instead of sending it: the embedded default, so a newcomer can follow a
/// verification link without a mail server.
public struct LogMailer: Mailer {
    let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    public func send(_ message: MailMessage) async throws {
        MetricFamilies.mails.counter("logged").increment()
        logger.notice(
            "email not sent (no SMTP relay configured)",
            metadata: ["to": "\(message.to)", "subject": "\(message.subject)", "body": "\(message.body)"])
    }
}
