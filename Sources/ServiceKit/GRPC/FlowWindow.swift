import Synchronization

/// Application-level flow control for a streamed upload: the sender may have at most `limit` bytes sent but not yet
/// acknowledged by the receiver. In-process gRPC streams buffer without bound, so a sender that waits here keeps
/// memory bounded whichever transport carries the call.
public final class FlowWindow: Sendable {
    private struct State {
        var limit: Int64?
        var sent: Int64 = 0
        var acknowledged: Int64 = 0
        var failure: (any Error)?
        var waiters: [CheckedContinuation<Void, any Error>] = []

        var open: Bool {
            guard let limit else { return false }
            return sent - acknowledged <= limit
        }
    }

    private let state = Mutex(State())

    public init() {}

    /// The window the receiver announced; sending waits until it is known.
    public func setLimit(_ limit: Int64) { update { $0.limit = max(1, limit) } }

    /// Records `bytes` as sent, first waiting while the window is full (or not yet announced).
    public func send(_ bytes: Int64) async throws {
        while true {
            let counted: Bool = try state.withLock { state in
                if let failure = state.failure { throw failure }
                guard state.open else { return false }
                state.sent += bytes
                return true
            }
            if counted { return }
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let ready: Result<Void, any Error>? = state.withLock { state in
                    if let failure = state.failure { return .failure(failure) }
                    if state.open { return .success(()) }
                    state.waiters.append(continuation)
                    return nil
                }
                if let ready { continuation.resume(with: ready) }
            }
        }
    }

    /// The receiver reports `total` bytes done.
    public func acknowledge(upTo total: Int64) { update { $0.acknowledged = max($0.acknowledged, total) } }

    /// Ends the exchange: every waiting and later `send` throws `error`.
    public func fail(_ error: any Error) { update { $0.failure = error } }

    private func update(_ change: (inout State) -> Void) {
        let (woken, failure) = state.withLock { state in
            change(&state)
            guard state.failure != nil || state.open else {
                return ([CheckedContinuation<Void, any Error>](), state.failure)
            }
            defer { state.waiters = [] }
            return (state.waiters, state.failure)
        }
        for continuation in woken {
            if let failure { continuation.resume(throwing: failure) } else { continuation.resume() }
        }
    }
}
