public import Foundation
import HTTPTypes
import Logging
import NIOWebSocket
import WSClient

/// A change to a live board (`/api/v1/ws/leaderboard`): first a snapshot, then diffs in sequence order.
public enum BoardUpdate: Sendable {
    case snapshot(sequence: Int, records: [BoardRecord])
    case accepted(sequence: Int, record: BoardRecord, rank: Int)
    case rankChanged(sequence: Int, recordID: String, oldRank: Int, newRank: Int)
    case removed(sequence: Int, recordID: String)

    public var sequence: Int {
        switch self {
        case .snapshot(let sequence, _), .accepted(let sequence, _, _), .rankChanged(let sequence, _, _, _),
            .removed(let sequence, _):
            sequence
        }
    }
}

extension LeaderboardClient {
    /// The board (or one framework's) live: its top `limit`, then every change. The stream ends when the server
    /// closes the connection; a refusal (bad parameters) ends it with a ``LeaderboardClientError``.
    public func watchBoard(framework: String? = nil, limit: Int = 50) -> AsyncThrowingStream<BoardUpdate, any Error> {
        var query = [URLQueryItem(name: "limit", value: String(limit))]
        if let framework { query.append(URLQueryItem(name: "framework", value: framework)) }
        return stream(path: "/api/v1/ws/leaderboard" + Self.queryString(query), signed: false) { data in
            try Self.boardUpdate(data)
        }
    }

    /// The device's notifications live (signed at upgrade); with `since`, stored ones after that sequence first.
    public func watchNotifications(since: Int? = nil) -> AsyncThrowingStream<DeviceNotification, any Error> {
        let query = Self.queryString(since.map { [URLQueryItem(name: "since", value: String($0))] } ?? [])
        return stream(path: "/api/v1/ws/notifications" + query, signed: true) { data in
            try Self.decoder.decode(DeviceNotification.self, from: data)
        }
    }

    static func boardUpdate(_ data: Data) throws -> BoardUpdate? {
        struct Envelope: Decodable {
            let type: String
            let sequence: Int
            let records: [BoardRecord]?
            let record: BoardRecord?
            let rank: Int?
            let recordId: String?
            let oldRank: Int?
            let newRank: Int?
        }
        let message = try decoder.decode(Envelope.self, from: data)
        switch message.type {
        case "snapshot": return .snapshot(sequence: message.sequence, records: message.records ?? [])
        case "accepted":
            guard let record = message.record else { return nil }
            return .accepted(sequence: message.sequence, record: record, rank: message.rank ?? 0)
        case "rank_changed":
            return .rankChanged(
                sequence: message.sequence, recordID: message.recordId ?? "", oldRank: message.oldRank ?? 0,
                newRank: message.newRank ?? 0)
        case "removed": return .removed(sequence: message.sequence, recordID: message.recordId ?? "")
        default: return nil  // a kind this client does not know yet
        }
    }

    /// Text messages of a WebSocket, decoded one by one; ends when either side closes.
    func stream<Element: Sendable>(
        path: String, signed: Bool, decode: @escaping @Sendable (Data) throws -> Element?
    ) -> AsyncThrowingStream<Element, any Error> {
        AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    var headers = HTTPFields()
                    if signed {
                        let url = try http.url(path)
                        for (name, value) in try requireCredentials().signatureHeaders(method: "GET", url: url) {
                            if let field = HTTPField.Name(name) { headers[field] = value }
                        }
                    }
                    var address = try http.url(path).absoluteString
                    if address.hasPrefix("http") { address = "ws" + address.dropFirst(4) }
                    let close = try await WebSocketClient.connect(
                        url: address, configuration: .init(maxFrameSize: 1 << 20, additionalHeaders: headers),
                        logger: Logger(label: "leaderboard.client.websocket")
                    ) { inbound, _, _ in
                        for try await message in inbound.messages(maxSize: 4 << 20) {
                            guard case .text(let text) = message else { continue }
                            if let element = try decode(Data(text.utf8)) { continuation.yield(element) }
                        }
                    }
                    if let close, close.closeCode != .normalClosure, close.closeCode != .goingAway {
                        throw LeaderboardClientError.local(
                            close.reason ?? "closed", "The server closed the stream (\(close.closeCode)).")
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}
