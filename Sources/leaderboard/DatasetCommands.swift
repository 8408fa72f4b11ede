import ArgumentParser
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Gateway
import LeaderboardAPI
import LeaderboardClient
import Logging
import ServiceKit
import SwiftProtobuf
import Synchronization

/// `leaderboard admin datasets …`: talks to DatasetService over gRPC (`--dataset-address`, or this machine's
/// `--grpc-address` for an all-in-one server), with the same TLS settings as `serve`.
struct DatasetsAdminCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "datasets",
        abstract: "Upload, list, activate and deactivate dataset versions.",
        subcommands: [Upload.self, List.self, Activate.self, Deactivate.self]
    )

    struct Upload: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stream a file to DatasetService, which encrypts and stores it as a new version.",
            discussion: settingsHelp)

        @Argument(help: "The dataset file.")
        var file: String

        @Option(help: "The new version's name (letters, digits, '.', '_', '-').")
        var version: String

        @Flag(help: "Make it active (the one clients download by default) once stored.")
        var activate = false

        @Option(help: "A display name (default: the version).")
        var name: String = ""

        @Option(help: "A description.")
        var description: String = ""

        @Option(name: .customLong("chunk-size"), help: "Plaintext bytes per chunk (default: the server's).")
        var chunkSize: Int = 0

        @Option(name: .customLong("min-duration-seconds"), help: "Shortest valid benchmark run on this dataset.")
        var minDurationSeconds: Int = 0

        @Argument(parsing: .allUnrecognized, help: "Settings as --name value (same as serve).")
        var settings: [String] = []

        func run() async throws {
            guard let handle = FileHandle(forReadingAtPath: file) else { throw ValidationError("cannot read \(file)") }
            defer { try? handle.close() }
            let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int64) ?? 0
            let header = Leaderboard_Dataset_V1_UploadHeader.with {
                $0.version = version
                $0.name = name
                $0.description_p = description
                $0.chunkSize = Int64(chunkSize)
                $0.activate = activate
                $0.minDurationSeconds = Int32(clamping: minDurationSeconds)
            }
            let started = ContinuousClock.now
            let bar = ProgressBar(total: size, label: "upload")
            let uploaded = try await withDatasetService(settings) { datasets in
                try await DatasetUploader.upload(to: datasets, header: header, pieces: FilePieces(handle: handle)) {
                    bar.update($0)
                }
            }
            bar.finish()
            let seconds = Double((ContinuousClock.now - started).components.seconds) + 0.001
            print(
                "uploaded \(uploaded.version): \(uploaded.manifest.plaintextSize) bytes in \(uploaded.manifest.chunks.count) chunks, "
                    + "sha256 \(uploaded.manifest.plaintextSha256), \(uploaded.active ? "active" : "inactive") "
                    + "(\(String(format: "%.1f", Double(uploaded.manifest.plaintextSize) / 1_048_576 / seconds)) MiB/s)"
            )
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List versions, newest first.")

        @Argument(parsing: .allUnrecognized, help: "Settings as --name value (same as serve).")
        var settings: [String] = []

        func run() async throws {
            let versions = try await withDatasetService(settings) { datasets in
                var all: [Leaderboard_Dataset_V1_DatasetVersion] = []
                var cursor = ""
                repeat {
                    let page = try await datasets.listDatasets(
                        .with {
                            $0.includeInactive = true
                            $0.page.limit = 200
                            $0.page.cursor = cursor
                        })
                    all += page.versions
                    cursor = page.page.nextCursor
                } while !cursor.isEmpty
                return all
            }
            for version in versions {
                print("\(version.version)\t\(version.active ? "active" : "inactive")\t\(version.name)")
            }
        }
    }

    struct Activate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make a version active.")
        @Argument var version: String
        @Argument(parsing: .allUnrecognized) var settings: [String] = []

        func run() async throws {
            let version = version
            let result = try await withDatasetService(settings) {
                try await $0.activateDataset(.with { $0.version = version })
            }
            print("\(result.version) is active")
        }
    }

    struct Deactivate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop offering a version (its chunks stay readable).")
        @Argument var version: String
        @Argument(parsing: .allUnrecognized) var settings: [String] = []

        func run() async throws {
            let version = version
            let result = try await withDatasetService(settings) {
                try await $0.deactivateDataset(.with { $0.version = version })
            }
            print("\(result.version) is inactive")
        }
    }
}

/// Connects to DatasetService and runs `body`; an RPC error is printed as `code: detail` with exit status 1.
func withDatasetService<Result: Sendable>(
    _ settings: [String],
    _ body: @Sendable (Leaderboard_Dataset_V1_DatasetService.Client<HTTP2ClientTransport.Posix>) async throws -> Result
) async throws -> Result {
    try await withService(.dataset, settings) {
        try await body(Leaderboard_Dataset_V1_DatasetService.Client(wrapping: $0))
    }
}

/// Connects to a target's service (`--<target>-address`, else this machine's `--grpc-address`) with the deployment's
/// service token and the operator key, and runs `body`; an RPC error is printed as `code: detail` with exit status 1.
func withService<Result: Sendable>(
    _ target: Target, _ settings: [String],
    _ body: @Sendable (GRPCClient<HTTP2ClientTransport.Posix>) async throws -> Result
) async throws -> Result {
    let configuration = try loadConfiguration(settings, checkModules: false)
    let address = configuration.remoteAddresses[target] ?? configuration.grpcAddress
    do {
        let client = try GRPCTransports.makeHTTP2Client(
            address: address, tls: configuration.grpcTLS, serviceToken: configuration.serviceToken)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await client.runConnections() }
            defer { client.beginGracefulShutdown() }
            // Operator calls carry the operator key (--operator-key), like an admin request through the gateway.
            return try await OperatorContext.$forwardedKey.withValue(configuration.operatorKey) {
                try await body(client)
            }
        }
    } catch let error as RPCError {
        printError("\(error.serviceErrorCode ?? "\(error.code)"): \(error.message) (\(target) service at \(address))")
        throw ExitCode.failure
    }
}

struct ClientDatasetsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "datasets", abstract: "Datasets.", subcommands: [Download.self])

    struct Download: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Download, verify and decrypt a dataset version; an interrupted download resumes.")

        @OptionGroup var device: DeviceOptions

        @Option(name: .customLong("machine-id"), help: "This device's machine id (instead of the credentials file).")
        var machineID: String?

        @Option(name: .customLong("secret-file"), help: "File holding this device's secret (lbd_…), with --machine-id.")
        var secretFile: String?

        @Option(help: "The version (default: the latest active one).")
        var version: String?

        @Option(name: .customLong("out"), help: "Where to write the decrypted dataset.")
        var output: String

        @Option(help: "Chunks downloaded at once.")
        var parallel: Int = 4

        func run() async throws {
            var client = try device.client(requireSecret: machineID == nil)
            if let machineID {
                guard let secretFile, let text = try? String(contentsOfFile: secretFile, encoding: .utf8) else {
                    throw ValidationError("--machine-id needs a readable --secret-file")
                }
                client.credentials = DeviceCredentials(
                    machineID: machineID, secret: text.trimmingCharacters(in: .whitespacesAndNewlines))
            }
            guard let credentials = client.credentials else { throw ValidationError("no device credentials") }
            var downloader = DatasetDownloader(http: client.http, credentials: credentials)
            downloader.parallelism = max(1, min(parallel, 32))
            let bar = ProgressBar(total: 0, label: "download")
            do {
                let result = try await downloader.download(version: version, to: output) { progress in
                    bar.update(progress.bytesDone, total: progress.bytesTotal)
                }
                bar.finish()
                print(
                    "\(result.version): \(result.bytes) bytes, sha256 \(result.plaintextSHA256) verified"
                        + (result.resumedChunks > 0
                            ? " (resumed; \(result.resumedChunks) chunks were already here)" : ""))
            } catch let error as LeaderboardClientError {
                bar.finish()
                printError(error.description)
                throw ExitCode.failure
            }
        }
    }
}

/// A one-line progress bar on standard error, updated from any task, redrawn at most five times a second.
final class ProgressBar: Sendable {
    private struct State {
        var total: Int64
        var lastDrawn: ContinuousClock.Instant
    }

    private let state: Mutex<State>
    private let started = ContinuousClock.now
    private let label: String

    init(total: Int64, label: String) {
        state = Mutex(State(total: total, lastDrawn: .now - .seconds(1)))
        self.label = label
    }

    func update(_ done: Int64, total: Int64? = nil) {
        let now = ContinuousClock.now
        let current: Int64? = state.withLock { state in
            if let total { state.total = total }
            guard now - state.lastDrawn >= .milliseconds(200) || done == state.total else { return nil }
            state.lastDrawn = now
            return state.total
        }
        guard let total = current else { return }
        let fraction = total > 0 ? Double(done) / Double(total) : 0
        let filled = Int(fraction * 30)
        let elapsed = now - started
        let seconds = max(0.001, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        let line = String(
            format: "\r%@ [%@%@] %3.0f%% %.1f/%.1f MiB %.1f MiB/s", label, String(repeating: "#", count: filled),
            String(repeating: " ", count: 30 - filled), fraction * 100, Double(done) / 1_048_576,
            Double(total) / 1_048_576, Double(done) / 1_048_576 / seconds)
        FileHandle.standardError.write(Data(line.utf8))
    }

    func finish() { FileHandle.standardError.write(Data("\n".utf8)) }
}

/// A file read in 1 MiB pieces.
struct FilePieces: AsyncSequence, @unchecked Sendable {
    // Read by the one upload that iterates it.
    let handle: FileHandle

    struct AsyncIterator: AsyncIteratorProtocol {
        let handle: FileHandle
        mutating func next() async throws -> [UInt8]? {
            guard let data = try handle.read(upToCount: 1 << 20), !data.isEmpty else { return nil }
            return Array(data)
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(handle: handle) }
}
