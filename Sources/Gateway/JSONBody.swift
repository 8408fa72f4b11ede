import Foundation
import Hummingbird
import LeaderboardAPI
import SwiftProtobuf
import UntrustedInput

/// A request body that must be one JSON object (``JSONObject``: a total, linear-time parser with typed field
/// access; its ``InputError``s become 400 problems naming the field).
typealias JSONBody = JSONObject

extension JSONObject {
    /// Collects up to `limit` bytes and parses them; an empty body is an empty object.
    static func read(_ request: inout Request, limit: Int = 64 << 10) async throws -> JSONObject {
        let buffer = try await collectBody(&request, limit: limit)
        return try JSONObject.parse(buffer.readableBytesView)
    }

    /// An RFC 3339 time that may be absent or null.
    func optionalTimestamp(_ name: String) throws -> Google_Protobuf_Timestamp? {
        try optionalDate(name).map { Google_Protobuf_Timestamp(date: $0) }
    }
}

extension Google_Protobuf_Timestamp {
    /// RFC 3339 in UTC with whole seconds, e.g. `2026-11-23T10:00:00Z`; nil for an unset time.
    var rfc3339: String? {
        guard seconds != 0 || nanos != 0 else { return nil }
        return date.formatted(.iso8601)
    }
}

extension Leaderboard_Common_V1_PageResponse {
    /// `next_cursor` of a listing: the cursor, or null on the last page.
    var nextCursorJSON: Any { jsonValue(nextCursor.isEmpty ? nil : nextCursor) }
}
