public import GRPCCore

/// Cleans the errors a served call ends with before they leave the process.
///
/// A handler often rethrows the `RPCError` of its own call to another process (RankingService passing on
/// DatasetService's NOT_FOUND, a service passing on AuthService's verdict on an operator key). That error's metadata
/// is the other call's response headers as the transport read them: `:status`, `content-type`, `grpc-status`,
/// `grpc-message`. Sent on as this call's trailers, a pseudo-header is an HTTP/2 protocol error, and the connection
/// is closed with every call on it ("Stream unexpectedly closed"). So only application metadata crosses: no
/// pseudo-headers, no `grpc-` keys, no HTTP connection headers; the code and the message are kept.
public struct ForwardedErrorServerInterceptor: ServerInterceptor {
    public init() {}

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        var response: StreamingServerResponse<Output>
        do {
            response = try await next(request, context)
        } catch let error as RPCError {
            throw error.forwardable
        }
        switch response.accepted {
        case .failure(let error):
            response.accepted = .failure(error.forwardable)
        case .success(var contents):
            let producer = contents.producer
            contents.producer = { writer in
                do {
                    return try await producer(writer)
                } catch let error as RPCError {
                    throw error.forwardable
                }
            }
            response.accepted = .success(contents)
        }
        return response
    }
}

extension RPCError {
    /// This error with only the metadata a response may carry as its own (see ``ForwardedErrorServerInterceptor``).
    public var forwardable: RPCError {
        guard metadata.contains(where: { Self.isTransportKey($0.key) }) else { return self }
        var kept = Metadata()
        for entry in metadata where !Self.isTransportKey(entry.key) {
            switch entry.value {
            case .string(let value): kept.addString(value, forKey: entry.key)
            case .binary(let value): kept.addBinary(value, forKey: entry.key)
            }
        }
        var error = self
        error.metadata = kept
        return error
    }

    /// Keys the transport owns: pseudo-headers, gRPC's own, and HTTP's connection and framing headers.
    static func isTransportKey(_ key: String) -> Bool {
        let key = key.lowercased()
        return key.hasPrefix(":") || key.hasPrefix("grpc-")
            || [
                "content-type", "content-length", "te", "trailer", "connection", "keep-alive", "transfer-encoding",
                "upgrade", "proxy-connection", "date", "server",
            ].contains(key)
    }
}
