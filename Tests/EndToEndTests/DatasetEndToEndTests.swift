import Crypto
import Foundation
import LeaderboardClient
import ServiceKit
import TestSupport
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The real binary with a real dataset: uploaded by the CLI over gRPC, downloaded, checked and decrypted by the CLI
/// (resuming after being killed) and by an independent Python client, with the server's memory watched.
@Suite(
    "Datasets through the real binary", .serialized, .timeLimit(.minutes(10)),
    .enabled(if: ExternalTools.hasPythonPackages))
struct DatasetEndToEndTests {
    enum Storage: String, CustomTestStringConvertible {
        case embedded
        case production
        var testDescription: String { rawValue }
    }

    /// 1 GiB embedded (the size the issue asks for); 64 MiB on PostgreSQL/Redis, where only metadata differs.
    static var cases: [(Storage, Int)] {
        [(.embedded, 1 << 30)] + (TestEnvironment.hasPostgres ? [(.production, 64 << 20)] : [])
    }

    @Test(
        "upload → download → decrypt gives the same SHA-256; resume after a kill; Python decrypts it; memory stays flat",
        arguments: cases)
    func roundTrip(_ storage: Storage, size: Int) async throws {
        let directory = EndToEnd.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let input = directory + "/input.bin"
        try await ExternalTools.run("/bin/sh", ["-c", "head -c \(size) /dev/urandom > '\(input)'"])
        let expected = String(try await ExternalTools.run("/usr/bin/env", ["sha256sum", input]).prefix(64))

        let settings =
            ["--data-dir", directory + "/data"]
            + (storage == .production ? try await EndToEnd.productionSettings() : [])
        let server = try LeaderboardProcess(["serve", "--pow-difficulty", "8"] + ephemeral + settings)
        let base = try await server.httpBase()
        let grpc = try await server.grpcPort()
        _ = try await EndToEnd.waitFor(base + "/health/ready", status: 200)
        let baseline = try Self.peakMemory(server.process.processIdentifier)

        let device = try await EndToEnd.activeDevice(base: base) {
            // Embedded mail goes to the log: the link is in the server's output.
            try Self.lastLink(in: server.standardError + server.standardOutput)
        }
        let secretFile = directory + "/secret"
        try device.secret.write(toFile: secretFile, atomically: true, encoding: .utf8)

        let upload = try LeaderboardProcess(
            [
                "admin", "datasets", "upload", input, "--version", "e2e-1", "--activate", "--grpc-address",
                "127.0.0.1:\(grpc)", "--operator-key", try await EndToEnd.operatorKey(settings),
            ])
        #expect(try await upload.exitStatus(within: .seconds(400)) == 0, "\(upload.standardError.suffix(500))")
        #expect(upload.standardOutput.contains("sha256 \(expected)"))

        let output = directory + "/output.bin"
        let download = [
            "client", "datasets", "download", "--server", base, "--machine-id", device.machineID, "--secret-file",
            secretFile, "--out", output,
        ]
        if storage == .embedded {
            // Kill the first download once some chunks are in, then resume.
            let first = try LeaderboardProcess(download + ["--parallel", "2"])
            let started = try await eventually(within: .seconds(120)) {
                let state = FileManager.default.contents(atPath: output + ".part.json")
                let done =
                    state.flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }?["done"] as? [Any]
                return (done?.count ?? 0) >= 8 || !first.process.isRunning
            }
            #expect(started)
            kill(first.process.processIdentifier, SIGKILL)
            _ = try await first.exitStatus()
            #expect(
                !FileManager.default.fileExists(atPath: output),
                "the first download finished before it could be interrupted")
        }
        let second = try LeaderboardProcess(download)
        #expect(try await second.exitStatus(within: .seconds(400)) == 0, "\(second.standardError.suffix(500))")
        #expect(second.standardOutput.contains("sha256 \(expected) verified"))
        if storage == .embedded { #expect(second.standardOutput.contains("resumed")) }
        #expect(String(try await ExternalTools.run("/usr/bin/env", ["sha256sum", output]).prefix(64)) == expected)
        try FileManager.default.removeItem(atPath: output)

        let python = try await ExternalTools.run(
            ExternalTools.python,
            [
                ExternalTools.pythonScripts.appendingPathComponent("decrypt_dataset.py").path, base, device.machineID,
                secretFile, output,
            ])
        #expect(python == expected)
        #expect(String(try await ExternalTools.run("/usr/bin/env", ["sha256sum", output]).prefix(64)) == expected)

        // The server streamed a whole dataset in and out twice; its peak memory grew by far less than the data.
        let peak = try Self.peakMemory(server.process.processIdentifier)
        #expect(
            peak - baseline < 256 << 20,
            "peak RSS grew by \((peak - baseline) >> 20) MiB for a \(size >> 20) MiB dataset")
        #expect(try await server.stop() == 0)
    }

    /// VmHWM (peak resident set) of a process, in bytes.
    static func peakMemory(_ pid: Int32) throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") })
        return try #require(Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])) * 1024
    }

    static func lastLink(in log: String) throws -> String {
        let range = try #require(log.range(of: "/verify/confirm?token=", options: .backwards))
        let token = log[range.upperBound...].prefix { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }
        return "/verify/confirm?token=" + token
    }
}

extension EndToEnd {
    /// Registers, verifies (the SDK solves the proof of work; `link` finds the emailed link's path) and activates a
    /// device against a running gateway.
    static func activeDevice(base: String, link: () async throws -> String) async throws -> (
        machineID: String, secret: String
    ) {
        let client = LeaderboardClient(baseURL: try #require(URL(string: base)))
        let hardware = Array(SHA256.hash(data: Array(UUID().uuidString.utf8))).hexEncoded
        let registration = try await client.register(hardwareHash: hardware, gpuHash: hardware)
        _ = try await client.requestVerification(
            registrationCode: registration.registrationCode, email: "owner@example.org")
        // Up to 20 s: the mail goes to the server's log, which a loaded machine writes late.
        let confirmed = try await eventually(within: .seconds(20)) {
            guard let path = try? await link() else { return false }
            return try await send("GET", base + path).status == 200
        }
        try #require(confirmed, "the verification link never arrived")
        let credentials = try await client.activate(
            machineID: registration.machineID, registrationCode: registration.registrationCode)
        return (credentials.machineID, credentials.secret)
    }
}
