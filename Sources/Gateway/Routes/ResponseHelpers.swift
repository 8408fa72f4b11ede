import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

// What every route file uses to answer: one home, rather than one route file lending its helpers to the others.
// (Issue 26 replaces the dictionaries with Codable types; until then JSON is built from plain values here.)

/// Headers shared by answers of one kind.
enum ResponseHeaders {
    /// Answers about one device or operator (secrets, codes, keys, private lists) must not be kept by caches or
    /// proxies.
    static let noStore: HTTPFields = [.cacheControl: "no-store"]
}

/// A JSON response from plain values (strings, numbers, arrays and dictionaries of them), keys sorted.
func jsonResponse(
    _ object: [String: Any],
    status: HTTPResponse.Status,
    contentType: String = "application/json",
    headers: HTTPFields = [:]
) -> Response {
    var fields = headers
    fields[.contentType] = contentType
    return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: jsonData(object))))
}

/// Plain values as JSON, keys sorted. Callers pass only JSON-representable values, so serialization cannot fail.
func jsonData(_ object: [String: Any]) -> Data {
    (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
}

/// Plain values as a JSON string (a WebSocket message, a CSV export's cell), keys sorted.
func compactJSON(_ object: [String: Any]) -> String {
    String(decoding: jsonData(object), as: UTF8.self)
}

/// A JSON `null` for absent optional values in responses.
func jsonValue(_ value: String?) -> Any { value ?? NSNull() }
