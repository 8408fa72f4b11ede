import Foundation
public import Logging
import NIOCore
import NIOPosix
import OTel
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Process-wide logging setup: text for people, JSON lines for log shippers.
public enum LoggingSetup {
    /// Call once, before anything logs.
    public static func bootstrap(level: Logger.Level, format: LogFormat) {
        // Every line written for a request carries its request id, and inside a recorded trace its trace and span ids.
        let provider = Logger.MetadataProvider.multiplex([
            RequestID.metadataProvider, OTel.makeLoggingMetadataProvider(),
        ])
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler
            switch format {
            case .text:
                handler = StreamLogHandler.standardError(label: label, metadataProvider: provider)
            case .json:
                handler = JSONLogHandler(label: label, metadataProvider: provider)
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
        var fields: [(String, Logger.MetadataValue)] = [
            ("ts", .string(Self.timestamp())), ("level", .string(event.level.rawValue)), ("logger", .string(label)),
            ("msg", .string(event.message.description)),
        ]
        fields += Self.metadataFields(
            handler: metadata, provided: metadataProvider?.get() ?? [:], line: event.metadata ?? [:])
        LineBatch.emit(Self.line(fields))
    }

    /// The metadata a line carries: the handler's, then the provider's, then the line's own, a later one replacing
    /// an earlier one's key; never one of ``ownKeys``. Collected without building merged dictionaries (every request
    /// writes an access line).
    static func metadataFields(handler: Logger.Metadata, provided: Logger.Metadata, line: Logger.Metadata) -> [(
        String, Logger.MetadataValue
    )] {
        var fields: [(String, Logger.MetadataValue)] = []
        fields.reserveCapacity(handler.count + provided.count + line.count)
        for (key, value) in handler where provided[key] == nil && line[key] == nil && !ownKeys.contains(key) {
            fields.append((key, value))
        }
        for (key, value) in provided where line[key] == nil && !ownKeys.contains(key) { fields.append((key, value)) }
        for (key, value) in line where !ownKeys.contains(key) { fields.append((key, value)) }
        return fields
    }

    /// The fields every line has; metadata cannot replace them.
    private static let ownKeys: Set<String> = ["ts", "level", "logger", "msg"]

    /// One JSON object with the fields in key order, and a newline. Encoded by hand: JSONSerialization and
    /// ISO8601DateFormatter cost more than the rest of a small request (docs/PERFORMANCE.md), and every request
    /// writes an access line.
    static func line(_ fields: [(String, Logger.MetadataValue)]) -> [UInt8] {
        var line: [UInt8] = []
        line.reserveCapacity(256)
        line.append(UInt8(ascii: "{"))
        for (index, (key, value)) in fields.sorted(by: { $0.0 < $1.0 }).enumerated() {
            if index > 0 { line.append(UInt8(ascii: ",")) }
            appendString(key, to: &line)
            line.append(UInt8(ascii: ":"))
            appendValue(value, to: &line)
        }
        line.append(contentsOf: [UInt8(ascii: "}"), 0x0A])
        return line
    }

    private static func appendValue(_ value: Logger.MetadataValue, to line: inout [UInt8]) {
        switch value {
        case .string(let string): appendString(string, to: &line)
        case .stringConvertible(let convertible): appendString(convertible.description, to: &line)
        case .array(let array):
            line.append(UInt8(ascii: "["))
            for (index, element) in array.enumerated() {
                if index > 0 { line.append(UInt8(ascii: ",")) }
                appendValue(element, to: &line)
            }
            line.append(UInt8(ascii: "]"))
        case .dictionary(let dictionary):
            line.append(UInt8(ascii: "{"))
            for (index, key) in dictionary.keys.sorted().enumerated() {
                if index > 0 { line.append(UInt8(ascii: ",")) }
                appendString(key, to: &line)
                line.append(UInt8(ascii: ":"))
                appendValue(dictionary[key]!, to: &line)
            }
            line.append(UInt8(ascii: "}"))
        }
    }

    private static func appendString(_ string: String, to line: inout [UInt8]) {
        line.append(UInt8(ascii: "\""))
        // Most values need no escape: copied whole, not byte by byte (the access line's cost, PERFORMANCE-NOTES P1).
        if !string.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            line.append(contentsOf: string.utf8)
            line.append(UInt8(ascii: "\""))
            return
        }
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""): line.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): line.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x0A: line.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: line.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: line.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case ..<0x20:
                line.append(contentsOf: Array("\\u00".utf8))
                line.append(contentsOf: [hexDigit(byte >> 4), hexDigit(byte & 0x0F)])
            default: line.append(byte)
            }
        }
        line.append(UInt8(ascii: "\""))
    }

    private static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }

    /// Now, as `2026-01-31T12:34:56.789Z`.
    static func timestamp() -> String {
        let milliseconds = Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
        var seconds = time_t(milliseconds / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        // Written digit by digit into the string's own storage: no string per field.
        return String(unsafeUninitializedCapacity: 24) { buffer in
            var count = 0
            func put(_ value: Int, width: Int) {
                var divisor = 1
                for _ in 1..<width { divisor *= 10 }
                for _ in 0..<width {
                    buffer[count] = UInt8(ascii: "0") + UInt8((value / divisor) % 10)
                    count += 1
                    divisor /= 10
                }
            }
            func put(_ byte: Unicode.Scalar) {
                buffer[count] = UInt8(ascii: byte)
                count += 1
            }
            put(Int(parts.tm_year) + 1900, width: 4)
            put("-")
            put(Int(parts.tm_mon) + 1, width: 2)
            put("-")
            put(Int(parts.tm_mday), width: 2)
            put("T")
            put(Int(parts.tm_hour), width: 2)
            put(":")
            put(Int(parts.tm_min), width: 2)
            put(":")
            put(Int(parts.tm_sec), width: 2)
            put(".")
            put(Int(milliseconds % 1000), width: 3)
            put("Z")
            return count
        }
    }
}

/// How log lines reach standard error: whole lines, each in one `write(2)` with the lines before it, so lines from
/// concurrent threads never interleave.
///
/// A line written on an event-loop thread joins the lines that loop writes while it works through what is ready,
/// and they go out together when it is done (a task queued on the loop when the batch starts), or at once past
/// 32 KiB: a loop answering cache hits writes one access line per request, and a system call each was 5 % of an
/// answer's cost (docs/PERFORMANCE-NOTES.md "P1"). A line waits at most for the loop's current batch of work, never
/// for a timer; lines written anywhere else (tasks, other threads) are written at once.
final class LineBatch: @unchecked Sendable {
    // @unchecked: a batch belongs to one event-loop thread and is only touched there.
    private var bytes: [UInt8] = []
    private var scheduled = false

    private static let batches = ThreadSpecificVariable<LineBatch>()
    private static let limit = 32_768

    static func emit(_ line: [UInt8]) {
        guard let loop = MultiThreadedEventLoopGroup.currentEventLoop else { return writeAll(line) }
        let batch: LineBatch
        if let current = batches.currentValue {
            batch = current
        } else {
            batch = LineBatch()
            batches.currentValue = batch
        }
        batch.bytes += line
        if batch.bytes.count >= limit {
            batch.flush()
        } else if !batch.scheduled {
            batch.scheduled = true
            loop.execute { batch.flush() }
        }
    }

    private func flush() {
        scheduled = false
        guard !bytes.isEmpty else { return }
        Self.writeAll(bytes)
        bytes.removeAll(keepingCapacity: bytes.capacity <= 4 * Self.limit)
    }

    /// Writes all of `bytes` to standard error (retrying short writes and interruptions); gives up on an error.
    private static func writeAll(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { buffer in
            guard let base = buffer.baseAddress else { return }
            var offset = 0
            while offset < buffer.count {
                let written = write(2, base + offset, buffer.count - offset)
                if written > 0 {
                    offset += written
                } else if written < 0, errno == EINTR {
                    continue
                } else {
                    return
                }
            }
        }
    }
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
        let halves = pool.withLock { ($0.next(), $0.next()) }
        // Written into the string's own storage: every request without an id of its own makes one.
        return String(unsafeUninitializedCapacity: 32) { buffer in
            for index in 0..<16 {
                let shift = UInt64(60 - 4 * index)
                buffer[index] = hexDigit(UInt8((halves.0 >> shift) & 0xF))
                buffer[16 + index] = hexDigit(UInt8((halves.1 >> shift) & 0xF))
            }
            return 32
        }
    }

    private static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }

    private static let pool = Mutex(RandomPool())  // every request without an id of its own

    /// The random bytes of generated ids, read from the system 4 KiB at a time: every request without an id of its
    /// own makes one, and two `getrandom` calls per id showed in the cache-hit profile (docs/PERFORMANCE-NOTES.md
    /// "P1"). The bytes are the system's (`/dev/urandom`; its generator, 8 bytes a call, if that cannot be read).
    struct RandomPool {
        private var bytes = [UInt8](repeating: 0, count: 4096)
        private var used = 4096

        mutating func next() -> UInt64 {
            if used + 8 > bytes.count { refill() }
            var word: UInt64 = 0
            for index in used..<used + 8 { word = word << 8 | UInt64(bytes[index]) }
            used += 8
            return word
        }

        private mutating func refill() {
            used = 0
            if bytes.withUnsafeMutableBytes(Self.readSystemRandom) { return }
            bytes = SystemRandomSource().bytes(bytes.count)
        }

        private static let device = open("/dev/urandom", O_RDONLY | O_CLOEXEC)

        /// Fills `buffer` from `/dev/urandom`; false when it cannot.
        private static func readSystemRandom(_ buffer: UnsafeMutableRawBufferPointer) -> Bool {
            guard device >= 0, let base = buffer.baseAddress else { return false }
            var offset = 0
            while offset < buffer.count {
                let count = read(device, base + offset, buffer.count - offset)
                if count > 0 {
                    offset += count
                } else if count < 0, errno == EINTR {
                    continue
                } else {
                    return false
                }
            }
            return true
        }
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
