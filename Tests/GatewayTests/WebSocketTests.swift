import Foundation
import Gateway
import HTTPTypes
import HummingbirdTesting
import HummingbirdWSTesting
import NIOWebSocket
import ServiceKit
import Synchronization
import TestSupport
import Testing
import WSClient
import WSCore

/// Counts clients that are ready, so a test acts only once all of them listen.
final class Readiness: Sendable {
    private let count = Mutex(0)  // the clients' tasks and the test
    func arrive() { count.withLock { $0 += 1 } }
    var arrived: Int { count.withLock { $0 } }
}

@Suite("WebSockets through the gateway", .timeLimit(.minutes(4)), .enabled(if: ExternalTools.hasPythonPackages))
struct WebSocketTests {
    static func json(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }

    /// Connects to a board, returns its first snapshot and the next `count` diffs as (type, sequence, record id).
    static func watch(_ gateway: AuthGateway, _ path: String, count: Int, ready: Readiness) async throws
        -> (snapshot: String, diffs: [String])
    {
        let collected = Mutex<(snapshot: String, diffs: [String])>(("", []))
        _ = try await gateway.client.ws(path) { inbound, outbound, _ in
            for try await message in inbound.messages(maxSize: 1 << 20) {
                guard case .text(let text) = message else { continue }
                let object = json(text)
                if object["type"] as? String == "snapshot" {
                    collected.withLock { $0.snapshot = text }
                    ready.arrive()
                    continue
                }
                let id = (object["record"] as? [String: Any])?["record_id"] as? String ?? object["record_id"] as? String
                let diff =
                    "\(object["sequence"] as? Int ?? -1) \(object["type"] as? String ?? "?") \(id ?? "?")"
                    + (object["new_rank"].map { " →\($0)" } ?? object["rank"].map { " #\($0)" } ?? "")
                if collected.withLock({
                    $0.diffs.append(diff); return $0.diffs.count
                }) == count {
                    try await outbound.close(.normalClosure, reason: nil)
                    return
                }
            }
        }
        return collected.withLock { ($0.snapshot, $0.diffs) }
    }

    @Test(
        "two clients see the same snapshot and the same ordered diffs of submissions",
        arguments: StorageBackend.available)
    func leaderboard(_ backend: StorageBackend) async throws {
        // A shorter request timeout: the joins' reads are bounded by it, the board's watch must outlive it. (Not
        // much shorter: every request of the test has it, and a loaded CI machine once took 3 s for the upload.)
        try await AuthGateway.with(backend, live: true, configure: { $0.requestTimeout = .seconds(10) }) { gateway in
            let dataset = try await RankingRoutesTests.dataset(gateway)
            let first = try await BenchmarkClient(gateway: gateway, device: try await gateway.activeDevice())
                .run(version: dataset.version, checksum: dataset.checksum, tps: 100, key: "a")
            let path = "/api/v1/ws/leaderboard?dataset_version=\(dataset.version)"
            let ready = Readiness()
            let clients = (0..<2).map { _ in
                Task { try await Self.watch(gateway, path, count: 4, ready: ready) }
            }
            #expect(try await eventually(within: .seconds(10)) { ready.arrived == 2 })
            try await Task.sleep(for: .seconds(10.5))  // past the deadline of the joins that started the board's watch
            var ids = [try #require(first["record_id"])]
            for tps in [200.0, 150.0] {
                let reply = try await BenchmarkClient(gateway: gateway, device: try await gateway.activeDevice())
                    .run(version: dataset.version, checksum: dataset.checksum, tps: tps, key: "k")
                ids.append(try #require(reply["record_id"]))
            }
            let one = try await clients[0].value
            let two = try await clients[1].value
            let snapshot = Self.json(one.snapshot)
            #expect(snapshot["sequence"] as? Int == 1 && one.snapshot == two.snapshot)
            #expect((snapshot["records"] as? [[String: Any]])?.map { $0["record_id"] as? String } == [ids[0]])
            let expected = [
                "2 accepted \(ids[1]) #1", "3 rank_changed \(ids[0]) →2", "4 accepted \(ids[2]) #2",
                "5 rank_changed \(ids[0]) →3",
            ]
            #expect(one.diffs == expected)
            #expect(two.diffs == expected)
        }
    }

    @Test(
        "the protocol on the wire: pings answered, fragments assembled, the close echoed, bad frames closed with their code, refused or malformed upgrades answered with problem+json, other upgrades served as plain requests"
    )
    func protocolOnTheWire() async throws {
        try await AuthGateway.with(.sqlite, live: true) { gateway in
            _ = try await RankingRoutesTests.dataset(gateway)
            let port = try #require(gateway.client.port)
            let printed = try await ExternalTools.run(
                ExternalTools.python,
                [ExternalTools.pythonScripts.appendingPathComponent("ws_protocol.py").path, String(port)])
            let result = try #require(try JSONSerialization.jsonObject(with: Data(printed.utf8)) as? [String: [Any]])
            func events(_ name: String) -> String { "\(result[name] ?? [])" }
            #expect(events("ping") == "\([["pong", "hello"]] as [Any])")
            #expect(events("fragmented") == "\([["pong", "between"], ["text", "snapshot"]] as [Any])")
            #expect(events("close") == "\([["close", 1000, ""], ["eof"]] as [Any])")
            #expect(events("unmasked") == "\([["close", 1002, "protocol_error"]] as [Any])")
            #expect(events("binary") == "\([["close", 1003, "text_only"]] as [Any])")
            #expect(events("too_large") == "\([["close", 1009, "message_too_large"]] as [Any])")
            #expect(events("invalid_utf8") == "\([["close", 1007, "invalid_utf8"]] as [Any])")
            #expect(events("stray_continuation") == "\([["close", 1002, "protocol_error"]] as [Any])")
            #expect(
                events("unknown_path")
                    == "\(["HTTP/1.1 404 Not Found", "application/problem+json", "not_found"] as [Any])")
            #expect(
                events("post")
                    == "\(["HTTP/1.1 405 Method Not Allowed", "application/problem+json", "method_not_allowed"] as [Any])"
            )
            #expect(
                events("no_key")
                    == "\(["HTTP/1.1 400 Bad Request", "application/problem+json", "invalid_websocket_key"] as [Any])")
            let upgradeRequired: [Any] = [
                "HTTP/1.1 426 Upgrade Required", "application/problem+json", "unsupported_websocket_version", "13",
            ]
            #expect(events("old_version") == "\(upgradeRequired)")
            #expect(
                events("no_connection_upgrade")
                    == "\(["HTTP/1.1 400 Bad Request", "application/problem+json", "invalid_upgrade"] as [Any])")
            #expect(events("h2c") == "\(["HTTP/1.1 200 OK", "application/json", "ok"] as [Any])")
        }
    }

    @Test(
        "notifications reach the owner live and after a reconnect; bad upgrades close with a clear code",
        arguments: StorageBackend.available)
    func notifications(_ backend: StorageBackend) async throws {
        try await AuthGateway.with(backend, live: true) { gateway in
            let dataset = try await RankingRoutesTests.dataset(gateway)
            let owner = BenchmarkClient(gateway: gateway, device: try await gateway.activeDevice())
            let fan = BenchmarkClient(gateway: gateway, device: try await gateway.activeDevice())
            let record = try #require(
                try await owner.run(version: dataset.version, checksum: dataset.checksum, tps: 90, key: "k")[
                    "record_id"])

            /// The first `count` notifications as "sequence kind"; `progress` arrives once per notification.
            func listen(_ query: String, count: Int, progress: Readiness) async throws -> [String] {
                let path = "/api/v1/ws/notifications" + (query.isEmpty ? "" : "?\(query)")
                let headers = try await owner.gateway.signatureHeaders(
                    .get, path, machineID: owner.device.machineID, secret: owner.device.secret)
                let seen = Mutex<[String]>([])
                _ = try await gateway.client.ws(path, configuration: .init(additionalHeaders: headers)) {
                    inbound, outbound, _ in
                    for try await message in inbound.messages(maxSize: 1 << 16) {
                        guard case .text(let text) = message else { continue }
                        let object = Self.json(text)
                        let line = "\(object["sequence"] as? Int ?? -1) \(object["kind"] as? String ?? "?")"
                        let total = seen.withLock {
                            $0.append(line)
                            return $0.count
                        }
                        progress.arrive()
                        if total == count {
                            try await outbound.close(.normalClosure, reason: nil)
                            return
                        }
                    }
                }
                return seen.withLock { $0 }
            }

            // A comment made before the listener connects comes from storage (since=0); once it has arrived the
            // listener is subscribed, and the reaction that follows reaches it live.
            #expect(
                try await fan.call(.post, "/api/v1/benchmarks/\(record)/comments", ["content": "wow"]).status
                    == .created)
            let progress = Readiness()
            let live = Task { try await listen("since=0", count: 2, progress: progress) }
            #expect(try await eventually(within: .seconds(10)) { progress.arrived == 1 })
            #expect(try await fan.call(.post, "/api/v1/benchmarks/\(record)/like").status == .ok)
            #expect(try await live.value == ["1 comment", "2 reaction"])
            // Reconnecting with the last sequence seen catches up from storage.
            #expect(try await listen("since=1", count: 1, progress: Readiness()) == ["2 reaction"])

            let unsigned = try await gateway.client.ws("/api/v1/ws/notifications") { _, _, _ in
                try? await Task.sleep(for: .seconds(1))
            }
            #expect(
                unsigned?.closeCode == .init(codeNumber: 4401) && unsigned?.reason == "missing_signature",
                "\(String(describing: unsigned))")
            var forged = try await owner.gateway.signatureHeaders(
                .get, "/api/v1/ws/notifications", machineID: owner.device.machineID, secret: "lbd_wrong")
            forged[HTTPField.Name("X-Nonce")!] = UUID().uuidString
            let refused = try await gateway.client.ws(
                "/api/v1/ws/notifications", configuration: .init(additionalHeaders: forged)
            ) { inbound, _, _ in for try await _ in inbound.messages(maxSize: 1024) {} }
            #expect(
                refused?.closeCode == .init(codeNumber: 4401) && refused?.reason == "signature_mismatch",
                "\(String(describing: refused))")
            let badLimit = try await gateway.client.ws("/api/v1/ws/leaderboard?limit=0") { _, _, _ in
                try? await Task.sleep(for: .seconds(1))
            }
            #expect(
                badLimit?.closeCode == .init(codeNumber: 4400) && badLimit?.reason == "invalid_limit",
                "\(String(describing: badLimit))")
        }
    }
}
