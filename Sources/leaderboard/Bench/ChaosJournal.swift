import Foundation
import LeaderboardClient
import NIOCore
import NIOHTTP1
import Synchronization

/// What `scripts/chaos` reads of a load run: every request with its start, duration and outcome, written as one JSON
/// object per line, and the faults' windows (written by the script) are matched against it afterwards.
final class ChaosJournal: Sendable {
    struct Entry: Sendable {
        /// What the request was for (`submit`, `board`, `chunk`, …).
        let kind: String
        /// Seconds since 1970 when it was sent.
        let start: Double
        let milliseconds: Double
        /// The HTTP status; 0 when the connection failed or broke, -1 when the client gave up waiting.
        let status: Int
        /// The problem's `code` (or the transport error).
        let code: String
        /// Whether a 503 said when to come back.
        let retryAfter: Bool
        /// Which gateway answered (0 or 1).
        let gateway: Int
    }

    private let entries = Mutex<[Entry]>([])

    func record(_ entry: Entry) { entries.withLock { $0.append(entry) } }

    var all: [Entry] { entries.withLock { $0 } }

    /// Writes the entries as JSON lines.
    func write(to path: String) throws {
        try writeJSONLines(
            all.map {
                [
                    "kind": $0.kind, "start": $0.start, "ms": $0.milliseconds, "status": $0.status, "code": $0.code,
                    "retry_after": $0.retryAfter, "gateway": $0.gateway,
                ]
            }, to: path)
    }
}

/// One JSON object per line (sorted keys), the form `scripts/lib/chaos_report.py` reads.
func writeJSONLines(_ objects: [[String: Any]], to path: String) throws {
    var text = ""
    for object in objects {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        text += String(decoding: data, as: UTF8.self) + "\n"
    }
    try text.write(toFile: path, atomically: true, encoding: .utf8)
}

/// The gateways a load run talks to, and how it sends one request to them: a fresh connection per request (so a
/// killed gateway costs a request, never a poisoned pooled connection), journaled, given up after `timeout`.
struct ChaosGateways: Sendable {
    let bases: [URL]
    let journal: ChaosJournal
    let timeout: Duration

    struct Answer: Sendable {
        let status: Int
        let headers: HTTPHeaders
        let body: Data

        var ok: Bool { (200..<300).contains(status) }
        var json: [String: Any] { ((try? JSONSerialization.jsonObject(with: body)) as? [String: Any]) ?? [:] }
        /// The answer a client must not retry: a refusal of the request itself (4xx other than 408, 409 and 429).
        var isFinalRefusal: Bool { (400..<500).contains(status) && ![408, 409, 429].contains(status) }
    }

    struct GaveUp: Error {}

    /// Sends one request to gateway `gateway` (modulo their count), signed by `device` when given.
    func send(
        _ kind: String, _ method: HTTPMethod, _ path: String, json: [String: Any]? = nil,
        device: DeviceCredentials? = nil, headers extra: [(String, String)] = [], gateway: Int = 0
    ) async -> Answer {
        let index = gateway % bases.count
        let base = bases[index]
        let body = json.flatMap { try? JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]) } ?? Data()
        var headers = extra
        if let device {
            let url = URL(string: path, relativeTo: base)?.absoluteURL ?? base
            headers += device.signatureHeaders(method: method.rawValue, url: url, body: body).map { ($0.key, $0.value) }
        }
        if json != nil { headers.append(("Content-Type", "application/json")) }
        let fields = headers
        let host = base.host ?? "127.0.0.1"
        let port = base.port ?? 80
        let started = Date()
        let clock = ContinuousClock()
        let begin = clock.now
        let answer: Answer
        do {
            answer = try await Self.race(timeout) {
                let reply = try await BenchHTTPConnection.with(host: host, port: port) { connection in
                    try await connection.send(method, path, headers: fields, body: Array(body))
                }
                return Answer(status: reply.status, headers: reply.headers, body: Data(reply.body.readableBytesView))
            }
        } catch is GaveUp {
            answer = Answer(status: -1, headers: [:], body: Data("{\"code\":\"client_timeout\"}".utf8))
        } catch {
            let text = "\(error)".replacingOccurrences(of: "\"", with: "'")
            answer = Answer(status: 0, headers: [:], body: Data("{\"code\":\"transport: \(text.prefix(120))\"}".utf8))
        }
        journal.record(
            .init(
                kind: kind, start: started.timeIntervalSince1970, milliseconds: (clock.now - begin).milliseconds,
                status: answer.status, code: answer.json["code"] as? String ?? "",
                retryAfter: answer.headers.first(name: "Retry-After") != nil, gateway: index))
        return answer
    }

    /// `work`'s result, or ``GaveUp`` once `timeout` passes (the work is cancelled and left to end on its own).
    static func race<T: Sendable>(_ timeout: Duration, _ work: @escaping @Sendable () async throws -> T) async throws
        -> T
    {
        let race = Race<T>()
        return try await withCheckedThrowingContinuation { continuation in
            race.pending.withLock { $0 = continuation }
            let timer = Task {
                try? await Task.sleep(for: timeout)
                guard let waiting = race.pending.withLock({ $0.take() }) else { return }
                race.worker.withLock { $0 }?.cancel()
                waiting.resume(throwing: GaveUp())
            }
            let worker = Task {
                do {
                    let value = try await work()
                    race.pending.withLock { $0.take() }?.resume(returning: value)
                } catch {
                    race.pending.withLock { $0.take() }?.resume(throwing: error)
                }
                timer.cancel()
            }
            race.worker.withLock { $0 = worker }
        }
    }
}

/// The waiting caller and the work of one ``ChaosGateways/race(_:_:)``.
private final class Race<T: Sendable>: Sendable {
    let pending = Mutex<CheckedContinuation<T, any Error>?>(nil)
    let worker = Mutex<Task<Void, Never>?>(nil)
}
