import GRPCCore
import Tracing

/// How interceptors that watch calls (metrics, tracing) see a call end: `finish` is called when `next` throws, when
/// the call is rejected, or when its response stream ends or fails (it must tolerate a second call), and `scope`, a
/// trace's context, is current around the handler and the stream.
enum CallObservation {
    static func serve<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>,
        scope: ServiceContext? = nil,
        finish: @escaping @Sendable ((any Error)?) -> Void
    ) async throws -> StreamingServerResponse<Output> {
        var response = try await starting(scope, finish) { try await next(request, context) }
        switch response.accepted {
        case .failure(let error):
            finish(error)
        case .success(var contents):
            let producer = contents.producer
            contents.producer = { writer in
                do {
                    let trailers = try await within(scope) { try await producer(writer) }
                    finish(nil)
                    return trailers
                } catch {
                    finish(error)
                    throw error
                }
            }
            response.accepted = .success(contents)
        }
        return response
    }

    static func call<Input: Sendable, Output: Sendable>(
        request: StreamingClientRequest<Input>,
        context: ClientContext,
        next: (StreamingClientRequest<Input>, ClientContext) async throws -> StreamingClientResponse<Output>,
        scope: ServiceContext? = nil,
        finish: @escaping @Sendable ((any Error)?) -> Void
    ) async throws -> StreamingClientResponse<Output> {
        var response = try await starting(scope, finish) { try await next(request, context) }
        switch response.accepted {
        case .failure(let error):
            finish(error)
        case .success(var contents):
            contents.bodyParts = RPCAsyncSequence(wrapping: ObservedSequence(base: contents.bodyParts, finish: finish))
            response.accepted = .success(contents)
        }
        return response
    }

    /// The call's first step (`next`) inside `scope`; a throw finishes the call.
    static func starting<T>(
        _ scope: ServiceContext?, _ finish: @Sendable ((any Error)?) -> Void, _ body: () async throws -> T
    ) async throws -> T {
        do {
            return try await within(scope, body)
        } catch {
            finish(error)
            throw error
        }
    }

    static func within<T>(_ scope: ServiceContext?, _ body: () async throws -> T) async rethrows -> T {
        guard let scope else { return try await body() }
        return try await ServiceContext.$current.withValue(scope) { try await body() }
    }
}

/// A response stream that tells `finish` when it ends (nil) or fails (the error).
struct ObservedSequence<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element: Sendable {
    typealias Element = Base.Element
    let base: Base
    let finish: @Sendable ((any Error)?) -> Void

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        let finish: @Sendable ((any Error)?) -> Void

        mutating func next() async throws -> Element? {
            do {
                guard let element = try await base.next() else {
                    finish(nil)
                    return nil
                }
                return element
            } catch {
                finish(error)
                throw error
            }
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: base.makeAsyncIterator(), finish: finish) }
}
