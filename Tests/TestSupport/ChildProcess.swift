public import Foundation
import Synchronization

/// A program a test starts, with its standard output and error read to end of file on threads of their own.
///
/// Two things this guarantees that reading pipes by hand did not: the output a test reads after ``exitStatus(within:)``
/// is all of it (a process can exit before its pipes' last bytes are read; waiting only for the exit once lost the
/// error line a test was checking), and a child that writes a lot to one stream never blocks on a full pipe while
/// the other is being read. Nothing here blocks a thread of the concurrency pool.
public final class ChildProcess: Sendable {
    /// What the reader threads collect. A box of its own, so the threads never keep the `ChildProcess` (whose
    /// deinit kills a forgotten child) alive.
    private final class Output: Sendable {
        struct Streams {
            var stdout = Data()
            var stderr = Data()
            var open = 2
        }
        let streams = Mutex(Streams())  // appended by the two reader threads, read by the test
    }

    public let process: Process
    private let output = Output()

    /// Starts `executable` (an absolute path, or a name looked up on PATH) with `arguments`. `environment` replaces
    /// the inherited one when given; `input` is written to standard input, which is then closed (none: /dev/null).
    public init(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil,
        currentDirectory: URL? = nil, input: Data? = nil
    ) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : "/usr/bin/env")
        process.arguments = executable.hasPrefix("/") ? arguments : [executable] + arguments
        if let environment { process.environment = environment }
        if let currentDirectory { process.currentDirectoryURL = currentDirectory }
        let stdout = Pipe()
        let stderr = Pipe()
        let stdin = input.map { _ in Pipe() }
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = stdin ?? FileHandle.nullDevice
        try process.run()  // closes the parent's write ends of the output pipes, so end of file comes at exit
        Self.drain(stdout.fileHandleForReading, into: output, isError: false)
        Self.drain(stderr.fileHandleForReading, into: output, isError: true)
        if let stdin, let input {
            // On a thread of its own: a child that answers before reading all its input must not deadlock us.
            Thread {
                try? stdin.fileHandleForWriting.write(contentsOf: input)
                try? stdin.fileHandleForWriting.close()
            }.start()
        }
    }

    private static func drain(_ handle: FileHandle, into output: Output, isError: Bool) {
        Thread {
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                output.streams.withLock { isError ? $0.stderr.append(chunk) : $0.stdout.append(chunk) }
            }
            try? handle.close()
            output.streams.withLock { $0.open -= 1 }
        }.start()
    }

    /// Everything written to standard output so far (all of it once ``exitStatus(within:)`` has returned).
    public var standardOutput: String { output.streams.withLock { String(decoding: $0.stdout, as: UTF8.self) } }
    /// Everything written to standard error so far (all of it once ``exitStatus(within:)`` has returned).
    public var standardError: String { output.streams.withLock { String(decoding: $0.stderr, as: UTF8.self) } }

    public var isRunning: Bool { process.isRunning }

    /// Waits until the process has exited and both of its output streams have reached end of file, then returns
    /// its exit status. Past `limit` the process is killed and this throws.
    public func exitStatus(within limit: Duration = .seconds(30)) async throws -> Int32 {
        let deadline = ContinuousClock.now + limit
        while process.isRunning || output.streams.withLock({ $0.open > 0 }) {
            guard ContinuousClock.now < deadline else {
                kill()
                throw Failure("\(process.executableURL?.lastPathComponent ?? "process") did not finish within \(limit)")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        return process.terminationStatus
    }

    /// SIGTERM, then the exit status as ``exitStatus(within:)`` waits for it.
    public func stop(within limit: Duration = .seconds(30)) async throws -> Int32 {
        if process.isRunning { process.terminate() }
        return try await exitStatus(within: limit)
    }

    /// SIGKILL, if it is still running.
    public func kill() {
        if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
    }

    deinit { kill() }

    /// A child that did not finish in time, or failed.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(_ description: String) { self.description = description }
    }
}
