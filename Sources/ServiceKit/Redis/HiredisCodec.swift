import CHiredis
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// Parses Redis replies with hiredis's reader; runs inside the NIO pipeline, so parsing never blocks a loop.
final class HiredisReplyDecoder: ByteToMessageDecoder {
    typealias InboundOut = RESPValue

    private let reader: UnsafeMutablePointer<redisReader>

    init() {
        // redisReaderCreate only fails when malloc does; nothing sensible can continue then.
        reader = redisReaderCreate()!
    }

    deinit {
        redisReaderFree(reader)
    }

    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let fed = buffer.withUnsafeReadableBytes { bytes in
            redisReaderFeed(reader, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count)
        }
        buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
        guard fed == REDIS_OK else { throw RedisClientError(.protocolError, readerError()) }
        while true {
            var reply: UnsafeMutableRawPointer?
            guard redisReaderGetReply(reader, &reply) == REDIS_OK else {
                throw RedisClientError(.protocolError, readerError())
            }
            guard let reply else { return .needMoreData }
            let value = Self.convert(reply.assumingMemoryBound(to: redisReply.self))
            freeReplyObject(reply)
            context.fireChannelRead(wrapInboundOut(value))
        }
    }

    func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }

    private func readerError() -> String {
        withUnsafeBytes(of: reader.pointee.errstr) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }

    private static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> RESPValue {
        let node = reply.pointee
        switch node.type {
        case REDIS_REPLY_STRING:
            return .bulkString(bytes(node.str, node.len))
        case REDIS_REPLY_STATUS:
            return .simpleString(String(decoding: bytes(node.str, node.len), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            return .error(String(decoding: bytes(node.str, node.len), as: UTF8.self))
        case REDIS_REPLY_INTEGER:
            return .integer(Int64(node.integer))
        case REDIS_REPLY_ARRAY:
            var elements: [RESPValue] = []
            elements.reserveCapacity(Int(node.elements))
            for index in 0..<Int(node.elements) {
                if let element = node.element[index] { elements.append(convert(element)) }
            }
            return .array(elements)
        default:
            return .null
        }
    }

    private static func bytes(_ pointer: UnsafeMutablePointer<CChar>?, _ length: Int) -> [UInt8] {
        guard let pointer, length > 0 else { return [] }
        return pointer.withMemoryRebound(to: UInt8.self, capacity: length) {
            Array(UnsafeBufferPointer(start: $0, count: length))
        }
    }
}

/// Formats a command with hiredis's `redisFormatCommandArgv` (binary-safe arguments).
enum HiredisCommandFormatter {
    static func format(_ arguments: [RedisArgument], into buffer: inout ByteBuffer) {
        // One contiguous copy of every argument, then pointers into it.
        var storage: [UInt8] = []
        var lengths: [Int] = []
        storage.reserveCapacity(arguments.reduce(0) { $0 + $1.bytes.count })
        for argument in arguments {
            storage.append(contentsOf: argument.bytes)
            lengths.append(argument.bytes.count)
        }
        storage.withUnsafeBufferPointer { all in
            let base = all.baseAddress.map { UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self) }
            var offsets: [UnsafePointer<CChar>?] = []
            var offset = 0
            for length in lengths {
                offsets.append(base.map { $0 + offset })
                offset += length
            }
            var target: UnsafeMutablePointer<CChar>?
            let written = offsets.withUnsafeMutableBufferPointer { pointers in
                lengths.withUnsafeBufferPointer { sizes in
                    redisFormatCommandArgv(&target, Int32(arguments.count), pointers.baseAddress, sizes.baseAddress)
                }
            }
            if let target {
                if written > 0 {
                    target.withMemoryRebound(to: UInt8.self, capacity: Int(written)) {
                        buffer.writeBytes(UnsafeBufferPointer(start: $0, count: Int(written)))
                    }
                }
                free(target)
            }
        }
    }
}

/// One argument of a Redis command.
public struct RedisArgument: Sendable, Hashable, ExpressibleByStringLiteral {
    public let bytes: [UInt8]

    public init(_ string: String) { bytes = Array(string.utf8) }
    public init(bytes: [UInt8]) { self.bytes = bytes }
    public init(_ number: Int) { bytes = Array(String(number).utf8) }
    public init(_ number: Int64) { bytes = Array(String(number).utf8) }
    /// Full precision, in the textual form Redis parses (`inf` / `-inf` for infinities).
    public init(_ number: Double) {
        bytes = Array((number == .infinity ? "inf" : number == -.infinity ? "-inf" : "\(number)").utf8)
    }
    public init(stringLiteral value: String) { self.init(value) }
}
