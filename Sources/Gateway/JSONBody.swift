import Foundation
import Hummingbird
import LeaderboardAPI
import SwiftProtobuf

/// Any JSON value, decoded without Foundation's `NSNumber` ambiguity between booleans and numbers.
enum JSONValue: Codable, Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Swift.Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    func encode(to encoder: any Swift.Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}

/// A request body that must be one JSON object, with typed field access whose failures are 400 problems naming
/// the field. Unknown fields are ignored.
struct JSONBody {
    let fields: [String: JSONValue]
    /// Where this object sits in the request (`results.`), so errors name the full field path.
    var path = ""

    /// Collects up to `limit` bytes and parses them; an empty body is an empty object.
    static func read(_ request: inout Request, limit: Int = 64 << 10) async throws -> JSONBody {
        let buffer = try await collectBody(&request, limit: limit)
        if buffer.readableBytes == 0 { return JSONBody(fields: [:]) }
        guard
            case .object(let fields)? = try? JSONDecoder().decode(JSONValue.self, from: Data(buffer.readableBytesView))
        else {
            throw Problem(.badRequest, code: "invalid_json", detail: "The body must be one JSON object.")
        }
        return JSONBody(fields: fields)
    }

    /// A required string field.
    func string(_ name: String) throws -> String {
        guard let value = try optionalString(name) else { throw missing(name) }
        return value
    }

    func missing(_ name: String) -> Problem {
        Problem(.badRequest, code: "missing_field", detail: "The field \"\(path)\(name)\" is required.")
    }

    /// A finite number that may be absent or null (JSON has no NaN or infinity; huge literals are refused).
    func optionalDouble(_ name: String) throws -> Double? {
        switch fields[name] {
        case nil, .null: return nil
        case .number(let number) where number.isFinite: return number
        default: throw wrongType(name, "a finite number")
        }
    }

    func double(_ name: String) throws -> Double {
        guard let value = try optionalDouble(name) else { throw missing(name) }
        return value
    }

    /// An integer that may be absent or null; fractions and numbers beyond ±2⁵³ are refused.
    func optionalInt64(_ name: String) throws -> Int64? {
        switch fields[name] {
        case nil, .null: return nil
        case .number(let number):
            guard let value = Int64(exactly: number), abs(value) <= 1 << 53 else { throw wrongType(name, "an integer") }
            return value
        default: throw wrongType(name, "an integer")
        }
    }

    func int32(_ name: String) throws -> Int32 {
        guard let value = try optionalInt32(name) else { throw missing(name) }
        return value
    }

    /// A nested object that may be absent or null.
    func optionalObject(_ name: String) throws -> JSONBody? {
        switch fields[name] {
        case nil, .null: return nil
        case .object(let object): return JSONBody(fields: object, path: "\(path)\(name).")
        default: throw wrongType(name, "an object")
        }
    }

    func object(_ name: String) throws -> JSONBody {
        guard let value = try optionalObject(name) else { throw missing(name) }
        return value
    }

    /// An array of objects that may be absent or null.
    func optionalObjects(_ name: String) throws -> [JSONBody]? {
        switch fields[name] {
        case nil, .null: return nil
        case .array(let values):
            return try values.enumerated().map { index, value in
                guard case .object(let object) = value else { throw wrongType(name, "an array of objects") }
                return JSONBody(fields: object, path: "\(path)\(name)[\(index)].")
            }
        default: throw wrongType(name, "an array of objects")
        }
    }

    /// The object without the named fields, as compact JSON ("" when nothing is left).
    func remainder(excluding names: Set<String>) throws -> String {
        let rest = fields.filter { !names.contains($0.key) }
        guard !rest.isEmpty else { return "" }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(rest), as: UTF8.self)
    }

    /// A string field that may be absent or null.
    func optionalString(_ name: String) throws -> String? {
        switch fields[name] {
        case nil, .null: return nil
        case .string(let value):
            // PostgreSQL text cannot hold NUL, and no field of ours has a use for it.
            guard !value.contains("\0") else { throw wrongType(name, "a string without NUL characters") }
            return value
        default: throw wrongType(name, "a string")
        }
    }

    /// An integer field that may be absent or null; fractions and numbers outside Int32 are refused.
    func optionalInt32(_ name: String) throws -> Int32? {
        switch fields[name] {
        case nil, .null: return nil
        case .number(let number):
            guard let value = Int32(exactly: number) else { throw wrongType(name, "a 32-bit integer") }
            return value
        default: throw wrongType(name, "an integer")
        }
    }

    /// A boolean field that may be absent or null.
    func optionalBool(_ name: String) throws -> Bool? {
        switch fields[name] {
        case nil, .null: return nil
        case .bool(let value): return value
        default: throw wrongType(name, "true or false")
        }
    }

    /// An array of strings that may be absent or null.
    func optionalStrings(_ name: String) throws -> [String]? {
        switch fields[name] {
        case nil, .null: return nil
        case .array(let values):
            return try values.map { value in
                guard case .string(let text) = value, !text.contains("\0") else {
                    throw wrongType(name, "an array of strings without NUL characters")
                }
                return text
            }
        default: throw wrongType(name, "an array of strings")
        }
    }

    /// An object field kept as compact JSON text (keys sorted); "" when absent or null. A string is taken as is.
    func jsonText(_ name: String) throws -> String {
        switch fields[name] {
        case nil, .null: return ""
        case .string(let text): return text
        case .object(let object):
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            return String(decoding: try encoder.encode(object), as: UTF8.self)
        default: throw wrongType(name, "an object")
        }
    }

    /// An RFC 3339 time that may be absent or null.
    func optionalTimestamp(_ name: String) throws -> Google_Protobuf_Timestamp? {
        guard let text = try optionalString(name) else { return nil }
        guard let date = try? Date(text, strategy: .iso8601) else {
            throw wrongType(name, "an RFC 3339 time such as 2026-01-31T12:00:00Z")
        }
        return Google_Protobuf_Timestamp(date: date)
    }

    private func wrongType(_ name: String, _ expected: String) -> Problem {
        Problem(.badRequest, code: "invalid_field_type", detail: "The field \"\(path)\(name)\" must be \(expected).")
    }
}

extension Google_Protobuf_Timestamp {
    /// RFC 3339 in UTC with whole seconds, e.g. `2026-11-23T10:00:00Z`; nil for an unset time.
    var rfc3339: String? {
        guard seconds != 0 || nanos != 0 else { return nil }
        return date.formatted(.iso8601)
    }
}

/// A JSON `null` for absent optional values in responses.
func jsonValue(_ value: String?) -> Any { value ?? NSNull() }

extension Leaderboard_Common_V1_PageResponse {
    /// `next_cursor` of a listing: the cursor, or null on the last page.
    var nextCursorJSON: Any { jsonValue(nextCursor.isEmpty ? nil : nextCursor) }
}
