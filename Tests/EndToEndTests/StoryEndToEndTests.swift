import Crypto
import Foundation
import LeaderboardClient
import ServiceKit
import Synchronization
import TestSupport
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The whole product, as its users meet it, against the real binary in both topologies: an operator uploads a
/// dataset; a benchmark client registers, verifies by the emailed link and activates with `leaderboard client`,
/// downloads and decrypts the dataset, runs a session and submits; the record appears on the board and on a live
/// WebSocket; another device likes and comments through the SDK, and the owner is notified.
@Suite(
    "The whole story through the CLI and the SDK", .serialized, .timeLimit(.minutes(6)),
    .enabled(if: ExternalTools.hasPythonPackages))
struct StoryEndToEndTests {
    enum Topology: String, CustomTestStringConvertible {
        /// `serve --target all` with no configuration: SQLite and in-process state.
        case embedded
        /// Five processes, one per target, over HTTP/2, with PostgreSQL and Redis.
        case microservices
        var testDescription: String { rawValue }
    }

    static var topologies: [Topology] { TestEnvironment.hasPostgres ? [.embedded, .microservices] : [.embedded] }

    /// The running system: the gateway's base URL, the dataset service's gRPC address, and where mail is logged.
    struct System {
        let processes: [LeaderboardProcess]
        let base: String
        let datasetAddress: String
        let mailer: LeaderboardProcess
        /// An admin key made on the auth storage, for `leaderboard admin` commands.
        let operatorKey: String

        static func start(_ topology: Topology, directory: String) async throws -> System {
            // A report every 2 s: run-synthetic reports in real time, and the anti-cheat allows gaps of three
            // intervals, which a loaded machine must never reach by itself.
            let common = ["--pow-difficulty", "8", "--ranking-metrics-interval", "2"]
            switch topology {
            case .embedded:
                let server = try LeaderboardProcess(["serve", "--data-dir", directory + "/data"] + ephemeral + common)
                let base = try await server.httpBase()
                let grpc = try await server.grpcPort()
                return System(
                    processes: [server], base: base, datasetAddress: "127.0.0.1:\(grpc)", mailer: server,
                    operatorKey: try await EndToEnd.operatorKey(["--data-dir", directory + "/data"]))
            case .microservices:
                let storage = try await EndToEnd.productionSettings()
                let (started, ports) = try await EndToEnd.startEachTarget(in: directory, settings: storage + common)
                let processes = started.map(\.process)
                let base = try await processes.last!.httpBase()
                return System(
                    processes: processes, base: base, datasetAddress: "127.0.0.1:\(ports[.dataset]!)",
                    mailer: processes[Target.allCases.firstIndex(of: .auth)!],
                    operatorKey: try await EndToEnd.operatorKey(["--data-dir", "\(directory)/auth"] + storage))
            }
        }

        /// The verification link the auth process last "sent" (embedded mail is logged).
        func lastLink() throws -> String {
            try DatasetEndToEndTests.lastLink(in: mailer.standardError + mailer.standardOutput)
        }

        func stop() async throws {
            for process in processes.reversed() { #expect(try await process.stop() == 0) }
        }

        /// A fresh temporary directory (the caller removes it) and the system started in it, ready.
        static func ready(_ topology: Topology) async throws -> (system: System, directory: String) {
            let directory = EndToEnd.temporaryDirectory()
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let system = try await start(topology, directory: directory)
            _ = try await EndToEnd.waitFor(system.base + "/health/ready", status: 200)
            return (system, directory)
        }

        /// `leaderboard admin datasets upload` of `input` as an active `version`.
        func upload(_ input: String, version: String, extra: [String] = []) async throws {
            _ = try await StoryEndToEndTests.cli(
                ["admin", "datasets", "upload", input, "--version", version, "--activate"] + extra + [
                    "--dataset-address", datasetAddress, "--operator-key", operatorKey,
                ])
        }
    }

    /// Runs `leaderboard <arguments>` to completion; its standard output, or a failed expectation.
    static func cli(_ arguments: [String], within limit: Duration = .seconds(120)) async throws -> String {
        let process = try LeaderboardProcess(arguments)
        let status = try await process.exitStatus(within: limit)
        #expect(status == 0, "leaderboard \(arguments.joined(separator: " ")):\n\(process.standardError.suffix(2000))")
        return process.standardOutput
    }

    @Test(
        "register → verify → activate → download → session → submit → board + WebSocket → like + comment → notified",
        arguments: topologies)
    func story(_ topology: Topology) async throws {
        let (system, directory) = try await System.ready(topology)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let base = system.base

        // The operator publishes a dataset (several chunks, so the download is a real chunked one).
        let input = directory + "/prompts.jsonl"
        let lines = (0..<3000).map { "{\"prompt\": \"question \($0) \(UUID().uuidString)\"}" }
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: input))
        let checksum = Array(SHA256.hash(data: try Data(contentsOf: URL(fileURLWithPath: input)))).hexEncoded
        let version = "story-\(UUID().uuidString.prefix(8).lowercased())"
        try await system.upload(input, version: version, extra: ["--chunk-size", "65536"])

        // The owner's device, entirely through `leaderboard client`.
        let owner = directory + "/owner.json"
        let registered = try await Self.cli([
            "client", "register", "--server", base, "--credentials", owner, "--email", "owner@example.org",
            "--hardware-hash", Array(SHA256.hash(data: Data(UUID().uuidString.utf8))).hexEncoded,
        ])
        #expect(registered.contains("a verification link was sent to owner@example.org"))
        let confirmed = try await EndToEnd.send("GET", base + (try system.lastLink()))  // the owner opens the link
        #expect(confirmed.status == 200 && confirmed.text.contains("is verified"), "\(confirmed.text)")
        #expect(try await Self.cli(["client", "activate", "--credentials", owner]).contains("activated"))
        let stored = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: owner))) as? [String: String])
        let ownerDevice = DeviceCredentials(
            machineID: try #require(stored["machine_id"]), secret: try #require(stored["secret"]))
        let attributes = try FileManager.default.attributesOfItem(atPath: owner)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)

        let downloaded = try await Self.cli([
            "client", "datasets", "download", "--credentials", owner, "--out", directory + "/dataset.jsonl",
        ])
        #expect(downloaded.contains("\(version): ") && downloaded.contains("sha256 \(checksum) verified"))
        #expect(
            try Data(contentsOf: URL(fileURLWithPath: directory + "/dataset.jsonl"))
                == Data(contentsOf: URL(fileURLWithPath: input)))

        // A spectator watches the board live while the owner benchmarks.
        let spectator = LeaderboardClient(baseURL: try #require(URL(string: base)))
        let seen = Mutex<[BoardUpdate]>([])
        let watcher = Task {
            for try await update in spectator.watchBoard() { seen.withLock { $0.append(update) } }
        }
        defer { watcher.cancel() }
        #expect(try await eventually(within: .seconds(10)) { seen.withLock { !$0.isEmpty } })

        // The decrypted dataset the run keeps goes in the test's directory (the default is the system's temporary
        // directory, where every run left one); not at `dataset`, which is DatasetService's data directory.
        let ran = try await Self.cli([
            "client", "run-synthetic", "--credentials", owner, "--tps", "140", "--duration", "4", "--framework",
            "vllm", "--display-name", "story", "--dataset-file", directory + "/benchmark-dataset.jsonl",
        ])
        let recordID = try #require(
            ran.split(separator: " ").drop { $0 != "record" }.dropFirst().first.map { String($0.dropLast()) },
            "\(ran)")
        #expect(ran.hasPrefix("accepted: record \(recordID), rank #1"), "\(ran)")
        // The session is spent: submitting it again (another body, another key) is refused, clearly, with exit 1.
        let session = try #require(ran.split(separator: " ").last.map { $0.trimmingCharacters(in: .newlines) })
        let results = directory + "/results.json"
        try Data(#"{"results": {"tps": 900, "avg_latency": 0.1, "concurrent_count": 4, "duration": 3}}"#.utf8)
            .write(to: URL(fileURLWithPath: results))
        let again = try LeaderboardProcess([
            "client", "submit", "--credentials", owner, "--session", session, "--file", results,
        ])
        #expect(try await again.exitStatus() == 1)
        #expect(again.standardError.contains("(HTTP 4"), "\(again.standardError)")
        let board = try await Self.cli(["client", "board", "--server", base])
        #expect(board.contains(recordID) && board.contains("#1"), "\(board)")
        #expect(
            try await eventually(within: .seconds(10)) {
                seen.withLock {
                    $0.contains {
                        if case .accepted(_, let record, 1) = $0 { return record.recordID == recordID }
                        return false
                    }
                }
            })

        // Another device (through the SDK) likes and comments; the owner hears of both, live and in the list.
        let fanCredentials = try await EndToEnd.activeDevice(base: base) { try system.lastLink() }
        let fan = LeaderboardClient(
            baseURL: try #require(URL(string: base)),
            credentials: DeviceCredentials(machineID: fanCredentials.machineID, secret: fanCredentials.secret))
        let ownerClient = LeaderboardClient(baseURL: try #require(URL(string: base)), credentials: ownerDevice)
        let before = try await ownerClient.notifications().latestSequence
        let live = Mutex<[DeviceNotification]>([])
        let listener = Task {
            for try await notification in ownerClient.watchNotifications(since: before) {
                live.withLock { $0.append(notification) }
            }
        }
        defer { listener.cancel() }
        // No wait for the upgrade: notifications after `before` come from storage whenever it connects.

        let counts = try await fan.react(to: recordID, like: true)
        #expect(counts.likesCount == 1 && counts.mine == "like")
        let comment = try await fan.comment(on: recordID, content: "Impressive numbers <b>really</b>")
        #expect(comment.authorName.isEmpty == false)
        #expect(try await spectator.comments(on: recordID).comments.map(\.content) == [comment.content])
        let record = try await spectator.record(recordID)
        #expect(record.likesCount == 1 && record.commentsCount == 1)

        let kinds = { (notifications: [DeviceNotification]) in Set(notifications.map(\.kind)) }
        #expect(
            try await eventually(within: .seconds(10)) {
                kinds(live.withLock { $0 }).isSuperset(of: ["reaction", "comment"])
            },
            "live: \(live.withLock { $0.map(\.summary) })")
        let listed = try await ownerClient.notifications(since: before)
        #expect(kinds(listed.notifications) == ["reaction", "comment"])
        // Reading marks everything so far, the "entered the board at #1" notice of the submit included.
        #expect(try await ownerClient.markNotificationsRead(upTo: listed.latestSequence) >= 2)
        #expect(try await ownerClient.notifications(unreadOnly: true).notifications.isEmpty)

        watcher.cancel()
        listener.cancel()
        try await system.stop()
    }
}
