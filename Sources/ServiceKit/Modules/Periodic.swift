public import Logging
public import ServiceLifecycle

/// Runs `work` now and then every `interval` until the task is cancelled or the process shuts down gracefully
/// (the wait ends early then). A failed round is logged as a warning and the next one runs on schedule.
public func repeatUntilShutdown(
    every interval: Duration, logger: Logger, failure: Logger.Message, _ work: () async throws -> Void
) async {
    while !Task.isCancelled, !Task.isShuttingDownGracefully {
        do {
            try await work()
        } catch {
            logger.warning(failure, metadata: ["error": "\(error)"])
        }
        try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
    }
}
