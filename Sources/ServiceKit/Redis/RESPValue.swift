import GRPCCore

/// A Redis reply.
public enum RESPValue: Sendable, Hashable {
    case simpleString(String)
    case error(String)
    case integer(Int64)
    case bulkString([UInt8])
    case null
    case array([RESPValue])

    /// The reply as text, for status, bulk and integer replies.
    public var string: String? {
        switch self {
        case .simpleString(let text): text
        case .bulkString(let bytes): String(decoding: bytes, as: UTF8.self)
        case .integer(let number): String(number)
        default: nil
        }
    }

    public var bytes: [UInt8]? {
        switch self {
        case .bulkString(let bytes): bytes
        case .simpleString(let text): Array(text.utf8)
        default: nil
        }
    }

    public var integer: Int64? {
        switch self {
        case .integer(let number): number
        case .bulkString, .simpleString: string.flatMap { Int64($0) }
        default: nil
        }
    }

    public var double: Double? { string.flatMap { Double($0) } }

    public var array: [RESPValue]? {
        if case .array(let values) = self { return values }
        return nil
    }

    public var isNull: Bool { self == .null }
}

/// Errors of the Redis client. `description` never includes passwords or payloads.
public struct RedisClientError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        case connectionFailed
        /// The connection closed with the command in flight: Redis may or may not have run it.
        case connectionClosed
        /// The connection was already closed when the command was written: Redis never saw it.
        case notSent
        case timeout
        case protocolError
        /// The server answered with an error reply.
        case server
        case unexpectedReply
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { "redis \(kind): \(message)" }
}

/// A Redis that cannot be reached fails the call as UNAVAILABLE (``DependencyError``); what Redis itself refused or
/// answered wrongly stays an internal error. The message never carries Redis's address or the command.
extension RedisClientError: DependencyError {
    public var isOutage: Bool {
        switch kind {
        case .connectionFailed, .connectionClosed, .notSent, .timeout: true
        case .protocolError, .server, .unexpectedReply: false
        }
    }

    public static let outageCode = "shared_state_unavailable"
    public static let outageDetail = "Shared state is unavailable; try again shortly."
}
