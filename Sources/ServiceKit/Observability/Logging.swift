import Foundation
public import Logging

/// Process-wide logging setup: text for people, JSON lines for log shippers.
public enum LoggingSetup {
    /// Call once, before anything logs.
    public static func bootstrap(level: Logger.Level, format: LogFormat) {
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler
            switch format {
            case .text:
                handler = StreamLogHandler.standardError(label: label, metadataProvider: RequestID.metadataProvider)
            case .json:
                handler = JSONLogHandler(label: label, metadataProvider: RequestID.metadataProvider)
            }
            handler.logLevel = level
            return handler
        }
    }
}

/// One JSON object per line on standard error.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    public var metadataProvider: Logger.MetadataProvider?
    public let label: String

    public init(label: String, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var object: [String: Any] = [
            "ts": ISO8601DateFormatter.logFormatter.string(from: Date()),
            "level": event.level.rawValue,
            "logger": label,
            "msg": event.message.description,
        ]
        let merged = metadata.merging(metadataProvider?.get() ?? [:]) { _, new in new }
            .merging(event.metadata ?? [:]) { _, new in new }
        for (key, value) in merged { object[key] = Self.jsonValue(value) }
        guard var data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        data.append(0x0A)
        FileHandle.standardError.write(data)
    }

    private static func jsonValue(_ value: Logger.MetadataValue) -> Any {
        switch value {
        case .string(let string): string
        case .stringConvertible(let convertible): convertible.description
        case .array(let array): array.map(jsonValue)
        case .dictionary(let dictionary): dictionary.mapValues(jsonValue)
        }
    }
}

extension ISO8601DateFormatter {
    // ISO8601DateFormatter is thread-safe for formatting once configured.
    nonisolated(unsafe) static let logFormatter: ISO8601DateFormatter = {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }()
}

/// Writes one line to standard output immediately (unbuffered): the "… listening on …" lines that operators,
/// scripts and tests read while the process runs.
public func announce(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// Request ids: taken from `X-Request-ID` when the client sends a sane one, otherwise generated.
///
/// The id of the request being worked on is a task-local: the gateway sets it per request, gRPC calls carry it as
/// `x-request-id` (``CallContextClientInterceptor`` / ``CallContextServerInterceptor``), and every log line written
/// meanwhile, in any process, gets `request_id` from ``metadataProvider``.
public enum RequestID {
    @TaskLocal public static var current: String?

    /// The gRPC metadata key carrying the id between processes.
    public static let metadataKey = "x-request-id"

    /// Adds `request_id` to log lines written while a request's work runs.
    public static let metadataProvider = Logger.MetadataProvider {
        current.map { ["request_id": .string($0)] } ?? [:]
    }

    /// 16 random bytes as 32 lowercase hex characters.
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<2).map { _ in
            let value = generator.next() as UInt64
            let hex = String(value, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
    }

    /// Accepts 1–128 characters of [A-Za-z0-9._-]; anything else is replaced by a fresh id.
    public static func accept(_ candidate: String?) -> String {
        guard let candidate, (1...128).contains(candidate.utf8.count),
            candidate.utf8.allSatisfy({ byte in
                (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
                    || byte == 0x2D || byte == 0x2E || byte == 0x5F
            })
        else { return generate() }
        return candidate
    }
}
