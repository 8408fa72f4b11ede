import Foundation
import NIOCore
import NIOPosix
import NIOSSL

/// Where and how to relay mail: `smtp://[user:pass@]host[:port][?tls=none]` (STARTTLS whenever the server offers it,
/// and required before sending credentials unless `tls=none`), or `smtps://…` (TLS from the first byte, port 465).
public struct SMTPURL: Sendable, Hashable, CustomStringConvertible {
    public enum Security: String, Sendable, Hashable {
        /// Plain connection, upgraded with STARTTLS when the server advertises it.
        case opportunistic
        /// Never TLS (a local relay or a test sink).
        case none
        /// TLS from connect (`smtps://`).
        case implicit
    }

    public var host: String
    public var port: Int
    public var username: String?
    public var password: String?
    public var security: Security

    public static func parse(_ text: String) throws(SettingParseError) -> SMTPURL {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
            scheme == "smtp" || scheme == "smtps", let host = components.host, !host.isEmpty
        else { throw SettingParseError("not an smtp:// or smtps:// URL") }
        var security: Security = scheme == "smtps" ? .implicit : .opportunistic
        for item in components.queryItems ?? [] {
            guard item.name == "tls", scheme == "smtp", let value = item.value, value == "none" else {
                throw SettingParseError("unknown option '\(item.name)' (smtp:// accepts tls=none)")
            }
            security = .none
        }
        let port = components.port ?? (scheme == "smtps" ? 465 : 25)
        guard (1...65535).contains(port) else { throw SettingParseError("port out of range") }
        if components.user != nil, security == .none, !HostPort(host: host, port: 0).isLoopback {
            throw SettingParseError("credentials would travel in plain text (tls=none to a non-loopback host)")
        }
        return SMTPURL(
            host: host, port: port, username: components.user?.removingPercentEncoding,
            password: components.password?.removingPercentEncoding, security: security)
    }

    /// Never shows the password.
    public var description: String {
        let user = username.map { "\($0):***@" } ?? ""
        return "\(security == .implicit ? "smtps" : "smtp")://\(user)\(host):\(port)"
    }
}

/// Why a message could not be relayed. `description` names the step and the server's reply, never credentials.
public struct SMTPError: Error, Sendable, CustomStringConvertible {
    public let description: String
}

/// Relays mail through an SMTP server (RFC 5321): EHLO, STARTTLS when offered, AUTH PLAIN, one message per
/// connection. Sending is rare (verification links), so there is no connection reuse.
public struct SMTPMailer: Mailer {
    public let url: SMTPURL
    public let from: String
    public let timeout: Duration

    public init(url: SMTPURL, from: String, timeout: Duration = .seconds(30)) {
        self.url = url
        self.from = from
        self.timeout = timeout
    }

    public func send(_ message: MailMessage) async throws {
        do {
            try await deliverWithin(message)
            MetricFamilies.mails.counter("sent").increment()
        } catch {
            MetricFamilies.mails.counter("failed").increment()
            throw error
        }
    }

    private func deliverWithin(_ message: MailMessage) async throws {
        for address in [from, message.to] where address.contains(where: { $0 == "\r" || $0 == "\n" || $0 == ">" }) {
            throw SMTPError(description: "invalid address")
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await deliver(message) }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw SMTPError(description: "no answer from \(url) within \(timeout)")
            }
            defer { group.cancelAll() }
            try await group.next()
        }
    }

    private func deliver(_ message: MailMessage) async throws {
        let url = url
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(10))
            .connect(host: url.host, port: url.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if url.security == .implicit {
                        try channel.pipeline.syncOperations.addHandler(try Self.tlsHandler(host: url.host))
                    }
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(SMTPReplyDecoder()))
                    return try NIOAsyncChannel<SMTPReply, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        try await channel.executeThenClose { inbound, outbound in
            var replies = inbound.makeAsyncIterator()
            func command(_ line: String?, expect codes: Set<Int>, step: String) async throws -> SMTPReply {
                if let line { try await outbound.write(ByteBuffer(string: line + "\r\n")) }
                guard let reply = try await replies.next() else {
                    throw SMTPError(description: "\(url) closed the connection at \(step)")
                }
                guard codes.contains(reply.code) else {
                    throw SMTPError(description: "\(url) refused \(step): \(reply.code) \(reply.lines.first ?? "")")
                }
                return reply
            }
            _ = try await command(nil, expect: [220], step: "greeting")
            var capabilities = try await command("EHLO leaderboard", expect: [250], step: "EHLO")
            if url.security == .opportunistic, capabilities.offers("STARTTLS") {
                _ = try await command("STARTTLS", expect: [220], step: "STARTTLS")
                // The handler is made on the channel's event loop: it is not Sendable.
                let host = url.host
                try await channel.channel.eventLoop.submit { [pipeline = channel.channel.pipeline] in
                    try pipeline.syncOperations.addHandler(try Self.tlsHandler(host: host), position: .first)
                }.get()
                capabilities = try await command("EHLO leaderboard", expect: [250], step: "EHLO after STARTTLS")
            } else if url.security == .opportunistic, url.username != nil {
                throw SMTPError(description: "\(url) does not offer STARTTLS; refusing to send credentials in clear")
            }
            if let username = url.username {
                let token = Data(("\0" + username + "\0" + (url.password ?? "")).utf8).base64EncodedString()
                _ = try await command("AUTH PLAIN \(token)", expect: [235], step: "AUTH")
            }
            _ = try await command("MAIL FROM:<\(from)>", expect: [250], step: "MAIL FROM")
            _ = try await command("RCPT TO:<\(message.to)>", expect: [250, 251], step: "RCPT TO")
            _ = try await command("DATA", expect: [354], step: "DATA")
            _ = try await command(
                Self.format(message, from: from, host: url.host) + "\r\n.", expect: [250], step: "message")
            _ = try? await command("QUIT", expect: [221], step: "QUIT")
        }
    }

    private static func tlsHandler(host: String) throws -> NIOSSLClientHandler {
        let context = try NIOSSLContext(configuration: .makeClientConfiguration())
        return try NIOSSLClientHandler(
            context: context, serverHostname: HostPort(host: host, port: 0).isIPLiteral ? nil : host)
    }

    /// Headers and body with CRLF line ends and dot-stuffing (RFC 5321 §4.5.2).
    static func format(_ message: MailMessage, from: String, host: String) -> String {
        let date = Date()
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        let subject = message.subject.filter { $0 != "\r" && $0 != "\n" }
        var lines = [
            "From: <\(from)>", "To: <\(message.to)>", "Subject: \(subject)", "Date: \(formatter.string(from: date))",
            "Message-ID: <\(UUID().uuidString.lowercased())@\(host)>", "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit", "",
        ]
        for line in message.body.replacing("\r\n", with: "\n").split(separator: "\n", omittingEmptySubsequences: false)
        {
            lines.append(line.hasPrefix(".") ? "." + line : String(line))
        }
        return lines.joined(separator: "\r\n")
    }
}

/// One SMTP reply: its code and the text of each line (multi-line replies use `250-…` until `250 …`).
struct SMTPReply: Sendable {
    let code: Int
    let lines: [String]

    func offers(_ extensionName: String) -> Bool {
        lines.dropFirst().contains { $0.uppercased().split(separator: " ").first == Substring(extensionName) }
    }
}

struct SMTPReplyDecoder: ByteToMessageDecoder {
    typealias InboundOut = SMTPReply
    private var lines: [String] = []

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
            if buffer.readableBytes > 4096 { throw SMTPError(description: "reply line too long") }
            return .needMoreData
        }
        let length = newline - buffer.readerIndex + 1
        guard var line = buffer.readString(length: length) else { return .needMoreData }
        line = line.trimmingCharacters(in: .newlines)
        guard line.count >= 3, let code = Int(line.prefix(3)) else {
            throw SMTPError(description: "malformed reply '\(line.prefix(40))'")
        }
        let separator = line.dropFirst(3).first
        lines.append(String(line.dropFirst(4)))
        if separator == "-" { return .continue }
        context.fireChannelRead(wrapInboundOut(SMTPReply(code: code, lines: lines)))
        lines = []
        return .continue
    }
}
