import Synchronization

/// Reads that callers asking for the same key at about the same time share: a herd of watchers joining one board
/// (thousands reconnecting after a gateway restart) costs the services behind a handful of reads, not one each.
///
/// Shared, yet exact: a caller only shares a read that *starts after it asked*. While a read of a key runs, callers
/// asking for that key wait for the next one, which starts as the running one ends and answers all of them. So each
/// answer shows the state at a moment after its caller asked, as a read of its own would — which is what a watcher
/// that joined its board's fan-out before asking for the board's snapshot relies on to miss no diff. A failed read
/// fails the callers it was for; the next callers get a read of their own.
///
/// Reads run in a task of their own, without the first caller's task-locals (its request id, its deadline): `read`
/// sets what it needs. A caller cancelled while waiting still waits for its read's answer; `read` should bound its
/// own time.
final class SharedReads<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private typealias Waiter = CheckedContinuation<Value, any Error>

    /// A key is present while a read of it runs; its value, the callers waiting for the read after that one.
    private let next = Mutex<[Key: [Waiter]]>([:])  // every caller and every read's task
    private let read: @Sendable (Key) async throws -> Value

    init(read: @escaping @Sendable (Key) async throws -> Value) { self.read = read }

    /// The value of `key`, read after this call began (shared with the other callers of that read).
    func value(of key: Key) async throws -> Value {
        try await withCheckedThrowingContinuation { (waiter: Waiter) in
            let starts = next.withLock { next in
                guard next[key] == nil else {
                    next[key]?.append(waiter)
                    return false
                }
                next[key] = []
                return true
            }
            if starts { start(key, for: [waiter]) }
        }
    }

    /// How many callers wait for the read after the running one of `key` (nil: none runs).
    func waiting(for key: Key) -> Int? { next.withLock { $0[key]?.count } }

    /// Reads `key` for `waiters`, then for the callers who asked meanwhile, if any.
    private func start(_ key: Key, for waiters: [Waiter]) {
        Task.detached {
            let result: Result<Value, any Error>
            do {
                result = .success(try await self.read(key))
            } catch {
                result = .failure(error)
            }
            for waiter in waiters { waiter.resume(with: result) }
            let following = self.next.withLock { next -> [Waiter] in
                let following = next[key] ?? []
                next[key] = following.isEmpty ? nil : []
                return following
            }
            if !following.isEmpty { self.start(key, for: following) }
        }
    }
}
