import ArgumentParser
import Foundation
import LeaderboardClient
import NIOHTTP1
import Synchronization

/// The steady mixed load `scripts/chaos` runs while it kills parts of the system (docs/RELIABILITY.md): submitters
/// (start a session, report, submit with an idempotency key retried until it is answered, comment on the record),
/// board and record readers, chunk downloaders, and WebSocket watchers of the global board that check every diff's
/// sequence. It runs until the stop file appears (or `--seconds` pass), then checks that every write the server
/// acknowledged is there, writes the journal of every request, and prints its figures as one JSON object.
struct MixedLoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mixed", abstract: "A steady mixed load with a request journal and a durability check.")

    @OptionGroup var options: BenchServerOptions
    @Option(help: "Another gateway of the same system; requests alternate between them.") var otherServer: String?
    @Option(help: "Stop when this file exists.") var stopFile: String?
    @Option(help: "Stop after this many seconds at the latest.") var seconds = 900.0
    @Option(help: "Write the request journal (JSON lines) here.") var journal: String
    @Option(help: "Write the watchers' per-connection record (JSON lines) here.") var watcherLog: String?
    @Option(help: "Submitting clients.") var submitters = 6
    @Option(help: "Board and record readers.") var readers = 4
    @Option(help: "Chunk downloaders.") var downloaders = 1
    @Option(help: "WebSocket watchers of the global board.") var watchers = 20
    @Option(help: "Milliseconds a reader or downloader waits between requests.") var pauseMs = 25
    @Option(help: "Seconds a client waits for an answer before giving up.") var clientTimeout = 30.0

    func run() async throws {
        let target = try options.target()
        let bases = [target.base] + (try otherServer.map { [try BenchServer(server: $0, mailLog: "").base] } ?? [])
        let gateways = ChaosGateways(bases: bases, journal: ChaosJournal(), timeout: .seconds(clientTimeout))
        let devices = try await target.activateDevices(submitters * 2, tag: "mixed-\(UUID().uuidString.prefix(8))")
        let dataset = try await target.client.dataset()
        guard let checksum = dataset.manifest?.plaintextSha256 else { throw BenchError("no active dataset") }
        let plaintext = FileManager.default.temporaryDirectory.appendingPathComponent(
            "leaderboard-mixed-\(UUID().uuidString.prefix(8))"
        ).path
        defer { try? FileManager.default.removeItem(atPath: plaintext) }
        if let first = devices.first {
            _ = try await LeaderboardClient(baseURL: target.base, credentials: first).download(
                version: dataset.version, to: plaintext)
        }
        let state = MixedLoadState()
        let (stopFile, seconds) = (stopFile, seconds)
        let deadline = ContinuousClock.now + .seconds(seconds)
        let stopped: @Sendable () -> Bool = {
            ContinuousClock.now > deadline || stopFile.map { FileManager.default.fileExists(atPath: $0) } ?? false
        }
        let spec = SubmitterSpec(
            version: dataset.version, checksum: checksum, plaintext: plaintext,
            duration: Double(max(1, dataset.minDurationSeconds)))
        let started = Date()
        FileHandle.standardError.write(Data("mixed: load running\n".utf8))
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<submitters {
                group.addTask {
                    await Self.submitter(
                        index, devices: [devices[index * 2], devices[index * 2 + 1]], spec: spec, gateways: gateways,
                        state: state, stopped: stopped)
                }
            }
            for index in 0..<readers {
                group.addTask { await Self.reader(index, gateways: gateways, state: state, stopped: stopped) }
            }
            for index in 0..<downloaders {
                group.addTask {
                    await Self.downloader(
                        index, version: dataset.version, gateways: gateways, pause: pauseMs, stopped: stopped)
                }
            }
            for index in 0..<watchers {
                group.addTask {
                    await Self.watcher(index, bases: bases, state: state, stopped: stopped)
                }
            }
            group.addTask {
                while !stopped() { try? await Task.sleep(for: .milliseconds(200)) }
            }
        }
        let loadSeconds = Date().timeIntervalSince(started)
        FileHandle.standardError.write(Data("mixed: load stopped; checking acknowledged writes\n".utf8))
        try gateways.journal.write(to: journal)
        if let watcherLog { try state.writeConnections(to: watcherLog) }
        let missing = try await Self.missingWrites(state: state, gateways: gateways)
        let entries = gateways.journal.all
        var outcomes: [String: Int] = [:]
        for entry in entries { outcomes["\(entry.kind) \(entry.status)", default: 0] += 1 }
        let (submits, comments, held) = state.acknowledged.withLock { ($0.submits.count, $0.comments.count, $0.held) }
        let connections = state.connections.withLock { $0 }
        printFigures([
            "seconds": loadSeconds, "requests": entries.count, "outcomes": outcomes,
            "acknowledged_submits": submits, "held_for_review": held, "acknowledged_comments": comments,
            "missing_submits": missing.submits, "missing_comments": missing.comments,
            "refused_submits": state.refusals.withLock { $0 },
            "watcher_connections": connections.count, "watcher_diffs": connections.reduce(0) { $0 + $1.diffs },
            "watcher_gaps": connections.reduce(0) { $0 + $1.gaps },
            "watcher_duplicates": connections.reduce(0) { $0 + $1.duplicates },
        ])
    }

    struct SubmitterSpec: Sendable {
        let version: String
        let checksum: String
        let plaintext: String
        let duration: Double
    }

    /// One benchmark client: session, report, submit (retried with its key until answered), comment; over and over,
    /// alternating between its two devices and the gateways.
    static func submitter(
        _ index: Int, devices: [DeviceCredentials], spec: SubmitterSpec, gateways: ChaosGateways,
        state: MixedLoadState, stopped: @escaping @Sendable () -> Bool
    ) async {
        let frameworks = ["vllm", "llama.cpp", "sglang", "tgi"]
        var round = 0
        while !stopped() {
            round += 1
            let device = devices[round % devices.count]
            let gateway = index + round
            // Each device keeps its framework and a speed that varies by a few percent between runs, as real
            // reruns on one machine do (an identical result would be refused as a duplicate).
            let deviceNumber = index * 2 + round % devices.count
            let tps = (400 + Double(deviceNumber % 97) * 7) * Double.random(in: 0.97...1.03)
            let start = BenchRun.sessionStart(
                version: spec.version, checksum: spec.checksum, framework: frameworks[deviceNumber % frameworks.count],
                gpu: "NVIDIA RTX 4090", model: "chaos-8b", displayName: "chaos \(deviceNumber)")
            let run = BenchRun(tps: tps, duration: spec.duration)
            let clock = ContinuousClock()
            let began = clock.now
            guard
                let started = await retried(
                    "start", .POST, "/api/v1/benchmarks/start", json: start.json, device: device, gateways: gateways,
                    gateway: gateway, stopped: stopped)
            else { continue }
            let ready: ReadySession
            do {
                let session = try Self.decoder.decode(Session.self, from: started.body)
                ready = ReadySession(
                    device: device, sessionID: session.sessionID, results: run.results,
                    proof: try session.datasetChallenge?.proof(plaintextFile: spec.plaintext) ?? "")
            } catch {
                state.refusals.withLock { $0 += 1 }
                continue
            }
            guard
                await retried(
                    "metrics", .POST, "/api/v1/benchmarks/\(ready.sessionID)/metrics", json: run.sample.json,
                    device: device, gateways: gateways, gateway: gateway, stopped: stopped) != nil
            else { continue }
            try? await Task.sleep(until: began + .seconds(spec.duration + 0.1))
            guard
                let outcome = await retried(
                    "submit", .POST, "/api/v1/benchmarks/\(ready.sessionID)/submit", json: ready.submitBody,
                    device: device, headers: [("Idempotency-Key", UUID().uuidString)], gateways: gateways,
                    gateway: gateway, stopped: stopped, giveUpWhenStopped: false)?.json
            else {
                state.refusals.withLock { $0 += 1 }
                continue
            }
            guard let recordID = outcome["record_id"] as? String, !recordID.isEmpty else { continue }
            guard outcome["state"] as? String == "accepted" else {
                state.acknowledged.withLock { $0.held += 1 }
                continue
            }
            state.acknowledged.withLock { $0.submits.append(recordID) }
            let content = "chaos \(index)-\(round) \(UUID().uuidString.prefix(8))"
            if let comment = await retried(
                "comment", .POST, "/api/v1/benchmarks/\(recordID)/comments", json: ["content": content],
                device: device, gateways: gateways, gateway: gateway, stopped: stopped, giveUpWhenStopped: false),
                let commentID = comment.json["comment_id"] as? String
            {
                state.acknowledged.withLock { $0.comments.append((recordID, commentID)) }
            }
            if let other = state.acknowledged.withLock({ $0.submits.randomElement() }) {
                _ = await gateways.send(
                    "like", .POST, "/api/v1/benchmarks/\(other)/like", device: device, gateway: gateway)
            }
        }
    }

    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }()

    /// Sends a request until it is answered 2xx (returning the answer) or refused for good (nil); waits 200 ms between
    /// tries, as a client honouring a short `Retry-After` does. Stops trying when the run stops, unless told not to
    /// (a submit is retried to its answer, so every acknowledged one is known).
    static func retried(
        _ kind: String, _ method: HTTPMethod, _ path: String, json: [String: Any]? = nil,
        device: DeviceCredentials?, headers: [(String, String)] = [], gateways: ChaosGateways, gateway: Int,
        stopped: @escaping @Sendable () -> Bool, giveUpWhenStopped: Bool = true
    ) async -> ChaosGateways.Answer? {
        var attempt = 0
        let clock = ContinuousClock()
        let began = clock.now
        while true {
            let answer = await gateways.send(
                kind, method, path, json: json, device: device, headers: headers, gateway: gateway + attempt)
            if answer.ok { return answer }
            if answer.isFinalRefusal { return nil }
            if giveUpWhenStopped && stopped() { return nil }
            // Past two minutes of retries after the stop, the run reports the write as unanswered.
            if stopped() && clock.now - began > .seconds(120) { return nil }
            attempt += 1
            try? await Task.sleep(for: .milliseconds(200))
        }
    }

    /// Reads the board (as the site and clients do), a known record, and its comments.
    static func reader(
        _ index: Int, gateways: ChaosGateways, state: MixedLoadState, stopped: @escaping @Sendable () -> Bool
    ) async {
        var round = index
        while !stopped() {
            round += 1
            _ = await gateways.send("board", .GET, "/api/v1/benchmarks?limit=50", gateway: round)
            if let record = state.acknowledged.withLock({ $0.submits.randomElement() }) {
                _ = await gateways.send("record", .GET, "/api/v1/benchmarks/\(record)", gateway: round)
                _ = await gateways.send("comments", .GET, "/api/v1/benchmarks/\(record)/comments", gateway: round)
            }
            try? await Task.sleep(for: .milliseconds(25))
        }
    }

    /// Fetches the active dataset's description and a ciphertext chunk, as a client does before a run.
    static func downloader(
        _ index: Int, version: String, gateways: ChaosGateways, pause: Int, stopped: @escaping @Sendable () -> Bool
    ) async {
        var round = index
        while !stopped() {
            round += 1
            _ = await gateways.send("dataset", .GET, "/api/v1/datasets/latest", gateway: round)
            _ = await gateways.send("chunk", .GET, "/api/v1/datasets/\(version)/chunks/0", gateway: round)
            try? await Task.sleep(for: .milliseconds(pause * 4))
        }
    }

    /// Watches the global board, reconnecting whenever the stream ends; per connection, every diff must carry the
    /// next sequence after the snapshot's (a gap or a repeat is counted).
    static func watcher(
        _ index: Int, bases: [URL], state: MixedLoadState, stopped: @escaping @Sendable () -> Bool
    ) async {
        let gateway = index % bases.count
        let client = LeaderboardClient(baseURL: bases[gateway])
        while !stopped() {
            let opened = Date().timeIntervalSince1970
            let watch = Task {
                var connection = MixedLoadState.Connection(watcher: index, opened: opened)
                connection.gateway = gateway
                do {
                    for try await update in client.watchBoard(limit: 10) {
                        let sequence = update.sequence
                        if case .snapshot = update {
                            connection.snapshots += 1
                            connection.position = sequence
                            continue
                        }
                        connection.diffs += 1
                        if sequence <= connection.position {
                            connection.duplicates += 1
                        } else if sequence > connection.position + 1 {
                            connection.gaps += 1
                            connection.position = sequence
                        } else {
                            connection.position = sequence
                        }
                        connection.last = Date().timeIntervalSince1970
                    }
                    connection.ending = "closed"
                } catch {
                    connection.ending = "\(error)".prefix(160).description
                }
                return connection
            }
            // The watch ends by itself when the gateway goes; the run's end closes it.
            let stopper = Task {
                // Cancelled when the watch ends by itself (a cancelled sleep returns at once: check both).
                while !stopped() && !Task.isCancelled { try? await Task.sleep(for: .milliseconds(200)) }
                watch.cancel()
            }
            var connection = await watch.value
            stopper.cancel()
            connection.closed = Date().timeIntervalSince1970
            state.connections.withLock { $0.append(connection) }
            if !stopped() { try? await Task.sleep(for: .milliseconds(250)) }
        }
    }

    /// The acknowledged records and comments that cannot be read back (through the first gateway, with retries for
    /// a part still recovering).
    static func missingWrites(state: MixedLoadState, gateways: ChaosGateways) async throws -> (
        submits: [String], comments: [String]
    ) {
        let (submits, comments) = state.acknowledged.withLock { ($0.submits, $0.comments) }
        let missingSubmits = Mutex<[String]>([])
        try await forEachConcurrently(submits.count, concurrency: 8) { index in
            let answer = await readBack("verify-record", "/api/v1/benchmarks/\(submits[index])", gateways: gateways)
            if answer?.json["record_id"] as? String != submits[index] {
                missingSubmits.withLock { $0.append(submits[index]) }
            }
        }
        var byRecord: [String: [String]] = [:]
        for (record, comment) in comments { byRecord[record, default: []].append(comment) }
        let records = Array(byRecord.keys)
        let expected = byRecord
        let missingComments = Mutex<[String]>([])
        try await forEachConcurrently(records.count, concurrency: 8) { index in
            var found = Set<String>()
            var cursor: String?
            repeat {
                let query = cursor.map { "?cursor=\($0)" } ?? ""
                guard
                    let page = await readBack(
                        "verify-comments", "/api/v1/benchmarks/\(records[index])/comments\(query)", gateways: gateways)
                else { break }
                for comment in page.json["comments"] as? [[String: Any]] ?? [] {
                    if let id = comment["comment_id"] as? String { found.insert(id) }
                }
                cursor = (page.json["next_cursor"] as? String).flatMap { $0.isEmpty ? nil : $0 }
            } while cursor != nil
            let lost = expected[records[index], default: []].filter { !found.contains($0) }
            if !lost.isEmpty { missingComments.withLock { $0 += lost } }
        }
        return (missingSubmits.withLock { $0 }, missingComments.withLock { $0 })
    }

    /// A read that is retried (up to 30 s) until it is answered 2xx or 404.
    static func readBack(_ kind: String, _ path: String, gateways: ChaosGateways) async -> ChaosGateways.Answer? {
        for _ in 0..<150 {
            let answer = await gateways.send(kind, .GET, path)
            if answer.ok { return answer }
            if answer.status == 404 { return nil }
            try? await Task.sleep(for: .milliseconds(200))
        }
        return nil
    }
}

/// What the load's clients share: the writes the server acknowledged, and the watchers' connections.
final class MixedLoadState: Sendable {
    struct Acknowledged {
        var submits: [String] = []
        var comments: [(record: String, comment: String)] = []
        var held = 0
    }

    /// One watcher connection, from its snapshot to its end.
    struct Connection: Sendable {
        let watcher: Int
        let opened: Double
        var closed = 0.0
        var last = 0.0
        var position = 0
        var snapshots = 0
        var diffs = 0
        var gaps = 0
        var duplicates = 0
        var ending = ""
        /// Which gateway it watched through.
        var gateway = 0
    }

    let acknowledged = Mutex(Acknowledged())
    let refusals = Mutex(0)
    let connections = Mutex<[Connection]>([])

    func writeConnections(to path: String) throws {
        try writeJSONLines(
            connections.withLock { $0 }.map {
                [
                    "watcher": $0.watcher, "opened": $0.opened, "closed": $0.closed, "snapshots": $0.snapshots,
                    "diffs": $0.diffs, "gaps": $0.gaps, "duplicates": $0.duplicates, "ending": $0.ending,
                    "position": $0.position, "last": $0.last, "gateway": $0.gateway,
                ]
            }, to: path)
    }
}
