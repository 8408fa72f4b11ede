import Hummingbird
import NIOCore
import NIOHTTP1
import NIOHTTPTypesHTTP1
import ServiceKit
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A dataset chunk sent straight from its file with `sendfile(2)`, when DatasetService runs in the gateway's process
/// (docs/DATASET-FORMAT.md "Serving chunks"): no read into memory, no hash, no copy through a gRPC stream.
///
/// Only a file DatasetService has checked against the manifest in its current state (``LocalChunkSource``) is sent,
/// and only if the file the gateway opens is that very file in that state (its identity read from the open
/// descriptor). Everything else — services in other processes, HTTPS (TLS encrypts in user space), a file that
/// changed, any error — takes the streaming path, which reads and checks the chunk and answers its errors.
enum ChunkFileBody {
    /// The response body for chunk `index` of `version` sent from its file, or nil to stream it instead.
    static func make(
        version: String, index: Int, size: Int64, context: GatewayRequestContext, dependencies: GatewayDependencies
    ) async -> ResponseBody? {
        guard dependencies.sendsFiles, let channel = context.channel, let source = dependencies.localChunks?.current,
            let file = try? await source.verifiedChunkFile(version: version, index: index), file.identity.size == size,
            // An HTTP/1 connection with the codec the file goes out below (not an in-process test channel).
            (try? await channel.pipeline.containsHandler(type: HTTP1ToHTTPServerCodec.self).get()) != nil
        else { return nil }
        guard let opened = OpenFile(file) else { return nil }
        return ResponseBody(contentLength: Int(size)) { writer in
            defer { opened.close() }
            // The head went out through Hummingbird's writer, scheduled on the channel's event loop before this;
            // the file follows it below the HTTP/1 codec (whose typed parts carry only buffers), then the end goes
            // through the writer again, so the connection's state handler sees the response finish.
            try await channel.eventLoop.flatSubmit { () -> EventLoopFuture<Void> in
                let promise = channel.eventLoop.makePromise(of: Void.self)
                do {
                    try write(opened, size: size, below: channel.pipeline, flush: true, promise: promise)
                } catch {
                    promise.fail(error)
                }
                return promise.futureResult
            }.get()
            bytesServed.increment(by: size)
            chunksSent.increment()
            try await writer.finish(nil)
        }
    }

    static let bytesServed = MetricFamilies.datasetBytesServed.counter()
    static let chunksSent = MetricFamilies.datasetChunkFiles.counter()

    /// Writes `file`'s first `size` bytes as a `FileRegion` below the channel's HTTP/1 codec (whose typed parts carry
    /// only buffers), between a response head and end written above it; on the channel's event loop. Throws when the
    /// codec is gone (the connection is closing).
    static func write(
        _ file: OpenFile, size: Int64, below pipeline: ChannelPipeline, flush: Bool, promise: EventLoopPromise<Void>
    ) throws {
        let codec = try pipeline.syncOperations.context(handlerType: HTTP1ToHTTPServerCodec.self)
        let part = NIOAny(
            HTTPServerResponsePart.body(
                .fileRegion(FileRegion(fileHandle: file.handle, readerIndex: 0, endIndex: Int(size)))))
        if flush {
            codec.writeAndFlush(part, promise: promise)
        } else {
            codec.write(part, promise: promise)
        }
    }

    /// An open chunk file, closed once sent, or when a response that never started is dropped.
    final class OpenFile: @unchecked Sendable {
        // Closed once: by `close()` after the send, or by deinit; NIOFileHandle's close is not repeated.
        let handle: NIOFileHandle
        private let closed = Atomic<Bool>(false)

        /// `file` opened, if the file at its path is still the one with its identity (read from the descriptor).
        init?(_ file: ChunkFile) {
            let descriptor = open(file.path, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { return nil }
            guard FileIdentity.of(descriptor: descriptor) == file.identity else {
                closeDescriptor(descriptor)
                return nil
            }
            handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: descriptor)
        }

        func close() {
            guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
            try? handle.close()
        }

        deinit { close() }
    }
}

/// `close(2)`, by a name the file types' own `close()` does not hide.
private func closeDescriptor(_ descriptor: CInt) {
    _ = close(descriptor)
}
