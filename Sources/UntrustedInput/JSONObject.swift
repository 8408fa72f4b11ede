public import Foundation

/// A request body that must be one JSON object, with typed field access: a failure is an ``InputError`` naming the
/// field's full path (`missing_field`, `invalid_field_type`). Unknown fields are ignored.
public struct JSONObject: Sendable, Equatable {
    public let fields: [String: JSONValue]
    /// Where this object sits in the request (`results.`), so errors name the full field path.
    public var path = ""

    public init(fields: [String: JSONValue], path: String = "") {
        self.fields = fields
        self.path = path
    }

    /// Parses a body; an empty body is an empty object, anything but one object is `invalid_json`.
    public static func parse(_ bytes: some Collection<UInt8>) throws(InputError) -> JSONObject {
        if bytes.allSatisfy({ [0x20, 0x09, 0x0A, 0x0D].contains($0) }) { return JSONObject(fields: [:]) }
        guard case .object(let fields) = try JSONValue.parse(bytes) else {
            throw InputError("invalid_json", "The body must be one JSON object.")
        }
        return JSONObject(fields: fields)
    }

    public func missing(_ name: String) -> InputError {
        InputError("missing_field", "The field \"\(path)\(name)\" is required.")
    }

    public func wrongType(_ name: String, _ expected: String) -> InputError {
        InputError("invalid_field_type", "The field \"\(path)\(name)\" must be \(expected).")
    }

    /// A required string field.
    public func string(_ name: String) throws(InputError) -> String {
        guard let value = try optionalString(name) else { throw missing(name) }
        return value
    }

    /// A string field that may be absent or null. NUL is refused: PostgreSQL text cannot hold it, and no field of
    /// ours has a use for it.
    public func optionalString(_ name: String) throws(InputError) -> String? {
        switch fields[name] {
        case nil, .null: return nil
        case .string(let value):
            guard !value.unicodeScalars.contains("\0") else { throw wrongType(name, "a string without NUL characters") }
            return value
        default: throw wrongType(name, "a string")
        }
    }

    /// A finite number that may be absent or null (JSON has no NaN or infinity; the parser refuses overflow).
    public func optionalDouble(_ name: String) throws(InputError) -> Double? {
        switch fields[name] {
        case nil, .null: return nil
        case .number(let number) where number.isFinite: return number
        default: throw wrongType(name, "a finite number")
        }
    }

    public func double(_ name: String) throws(InputError) -> Double {
        guard let value = try optionalDouble(name) else { throw missing(name) }
        return value
    }

    /// An integer that may be absent or null; fractions and numbers beyond ±2⁵³ are refused.
    public func optionalInt64(_ name: String) throws(InputError) -> Int64? {
        switch fields[name] {
        case nil, .null: return nil
        case .number(let number):
            guard let value = Int64(exactly: number), value.magnitude <= 1 << 53 else {
                throw wrongType(name, "an integer")
            }
            return value
        default: throw wrongType(name, "an integer")
        }
    }

    /// An integer field that may be absent or null; fractions and numbers outside Int32 are refused.
    public func optionalInt32(_ name: String) throws(InputError) -> Int32? {
        switch fields[name] {
        case nil, .null: return nil
        case .number(let number):
            guard let value = Int32(exactly: number) else { throw wrongType(name, "a 32-bit integer") }
            return value
        default: throw wrongType(name, "an integer")
        }
    }

    public func int32(_ name: String) throws(InputError) -> Int32 {
        guard let value = try optionalInt32(name) else { throw missing(name) }
        return value
    }

    /// A boolean field that may be absent or null.
    public func optionalBool(_ name: String) throws(InputError) -> Bool? {
        switch fields[name] {
        case nil, .null: return nil
        case .bool(let value): return value
        default: throw wrongType(name, "true or false")
        }
    }

    /// A nested object that may be absent or null.
    public func optionalObject(_ name: String) throws(InputError) -> JSONObject? {
        switch fields[name] {
        case nil, .null: return nil
        case .object(let object): return JSONObject(fields: object, path: "\(path)\(name).")
        default: throw wrongType(name, "an object")
        }
    }

    public func object(_ name: String) throws(InputError) -> JSONObject {
        guard let value = try optionalObject(name) else { throw missing(name) }
        return value
    }

    /// An array of objects that may be absent or null.
    public func optionalObjects(_ name: String) throws(InputError) -> [JSONObject]? {
        switch fields[name] {
        case nil, .null: return nil
        case .array(let values):
            var objects: [JSONObject] = []
            objects.reserveCapacity(values.count)
            for (index, value) in values.enumerated() {
                guard case .object(let object) = value else { throw wrongType(name, "an array of objects") }
                objects.append(JSONObject(fields: object, path: "\(path)\(name)[\(index)]."))
            }
            return objects
        default: throw wrongType(name, "an array of objects")
        }
    }

    /// An array of strings that may be absent or null.
    public func optionalStrings(_ name: String) throws(InputError) -> [String]? {
        switch fields[name] {
        case nil, .null: return nil
        case .array(let values):
            var strings: [String] = []
            for value in values {
                guard case .string(let text) = value, !text.unicodeScalars.contains("\0") else {
                    throw wrongType(name, "an array of strings without NUL characters")
                }
                strings.append(text)
            }
            return strings
        default: throw wrongType(name, "an array of strings")
        }
    }

    /// An object field kept as compact JSON text (keys sorted); "" when absent or null. A string is taken as is.
    public func jsonText(_ name: String) throws(InputError) -> String {
        switch fields[name] {
        case nil, .null: return ""
        case .string(let text):
            guard !text.unicodeScalars.contains("\0") else { throw wrongType(name, "an object") }
            return text
        case .object(let object): return JSONValue.object(object).canonicalText
        default: throw wrongType(name, "an object")
        }
    }

    /// The object without the named fields, as compact JSON ("" when nothing is left).
    public func remainder(excluding names: Set<String>) -> String {
        let rest = fields.filter { !names.contains($0.key) }
        return rest.isEmpty ? "" : JSONValue.object(rest).canonicalText
    }

    /// An RFC 3339 time that may be absent or null.
    public func optionalDate(_ name: String) throws(InputError) -> Date? {
        guard let text = try optionalString(name) else { return nil }
        guard text.utf8.count <= 64, let date = try? Date(text, strategy: .iso8601) else {
            throw wrongType(name, "an RFC 3339 time such as 2026-01-31T12:00:00Z")
        }
        return date
    }
}
