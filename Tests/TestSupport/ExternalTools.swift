public import Foundation
public import ServiceKit
import Synchronization
import Testing

/// Helper programs the tests run: Python (`TEST_PYTHON`, a venv `scripts/test` makes with aiosmtpd) and Node.
public enum ExternalTools {
    /// `Tests/python`, next to this file's directory.
    public static let pythonScripts = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("python")

    /// The Python with the test packages; plain `python3` (standard library only) outside scripts/test.
    public static var python: String { TestEnvironment.environment["TEST_PYTHON"] ?? "python3" }

    /// Whether the Python packages (aiosmtpd) are there: always under scripts/test, which then fails instead of
    /// skipping.
    public static var hasPythonPackages: Bool {
        TestEnvironment.environment["TEST_PYTHON"] != nil || TestEnvironment.requireServers
    }

    /// Node, when installed (scripts/test installs it) — for the verify page's script.
    public static var node: String? {
        ["/usr/bin/node", "/usr/local/bin/node", "/usr/bin/nodejs"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
    }

    /// Headless Chromium for the pages' browser tests: required under scripts/test (which installs Debian's
    /// `chromium`), so a missing browser fails the run there instead of skipping.
    public static var hasBrowser: Bool {
        TestEnvironment.requireServers
            || ["/usr/bin/chromium", "/usr/bin/chromium-browser"].contains {
                FileManager.default.isExecutableFile(atPath: $0)
            }
    }

    /// Runs a program to completion; throws with its stderr when it fails. Returns stdout, trimmed. Both outputs are
    /// read to their end on threads of their own (``ChildProcess``), so a chatty program never blocks on a full pipe.
    @discardableResult
    public static func run(
        _ executable: String, _ arguments: [String], input: Data = Data(), within limit: Duration = .seconds(300)
    ) async throws -> String {
        let child = try ChildProcess(executable, arguments, input: input)
        guard try await child.exitStatus(within: limit) == 0 else {
            throw ToolFailure(command: ([executable] + arguments).joined(separator: " "), output: child.standardError)
        }
        return child.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public struct ToolFailure: Error, CustomStringConvertible {
        public let command: String
        public let output: String
        public var description: String { "\(command) failed: \(output)" }
    }
}

/// A local SMTP server (Python aiosmtpd) that keeps every message it receives, for reading emailed links.
// Process and Pipe are not Sendable; they are only touched by init, stop and the file reads, never concurrently.
public final class SMTPSink: @unchecked Sendable {
    public let port: Int
    private let directory: URL
    private let process: Process
    private let stdin: Pipe

    /// Starts the sink; stop it with ``stop()``.
    public init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("smtp-\(UUID().uuidString)")
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            ExternalTools.python, ExternalTools.pythonScripts.appendingPathComponent("smtp_sink.py").path,
            directory.path,
        ]
        stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        try process.run()
        var line = Data()
        while let byte = try stdout.fileHandleForReading.read(upToCount: 1), let first = byte.first, first != 0x0a {
            line.append(first)
        }
        guard let port = Int(String(decoding: line, as: UTF8.self)) else {
            process.terminate()
            throw ExternalTools.ToolFailure(
                command: "smtp_sink.py", output: "did not report a port (is aiosmtpd installed?)")
        }
        self.port = port
    }

    /// Every message received so far, raw, oldest first.
    public func messages() throws -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return try names.filter { $0.hasSuffix(".eml") }.sorted().map { name in
            try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
        }
    }

    /// Waits for the `count`-th message (1-based) and returns it.
    public func message(number count: Int, within limit: Duration = .seconds(10)) async throws -> String {
        let found = try await eventually(within: limit) { try messages().count >= count }
        try #require(found, "the SMTP sink received no message \(count)")
        return try messages()[count - 1]
    }

    public func stop() {
        try? stdin.fileHandleForWriting.close()
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: directory)
    }
}

/// Keeps every message in memory: a fake behind our own `Mailer` protocol (the SMTP mailer is tested against a
/// real SMTP server).
public final class CapturingMailer: Mailer {
    private let sent = Mutex<[MailMessage]>([])
    private let failing = Mutex(false)

    public init() {}

    public var messages: [MailMessage] { sent.withLock { $0 } }

    /// Makes the next sends fail (a relay that is down).
    public func setFailing(_ value: Bool) { failing.withLock { $0 = value } }

    public func send(_ message: MailMessage) async throws {
        if failing.withLock({ $0 }) { throw ExternalTools.ToolFailure(command: "smtp", output: "relay down") }
        sent.withLock { $0.append(message) }
    }
}
