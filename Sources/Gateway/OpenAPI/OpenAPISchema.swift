import Foundation
import HTTPTypes

/// The few building blocks the OpenAPI document is written with: JSON Schema 2020-12 values (OpenAPI 3.1) as
/// plain dictionaries, so the document reads close to what is served.
enum Schema {
    typealias Value = [String: any Sendable]

    static let string: Value = ["type": "string"]
    static let integer: Value = ["type": "integer"]
    static let number: Value = ["type": "number"]
    static let boolean: Value = ["type": "boolean"]
    /// RFC 3339 time, e.g. `2026-11-23T10:00:00Z`.
    static let time: Value = ["type": "string", "format": "date-time"]
    /// A JSON object with any members.
    static let anyObject: Value = ["type": "object"]

    static func string(_ values: [String]) -> Value { ["type": "string", "enum": values] }
    static func integer(minimum: Int) -> Value { ["type": "integer", "minimum": minimum] }
    static func ref(_ name: String) -> Value { ["$ref": "#/components/schemas/\(name)"] }
    static func array(_ items: Value) -> Value { ["type": "array", "items": items] }

    /// The value or JSON null.
    static func nullable(_ schema: Value) -> Value {
        if let type = schema["type"] as? String, schema["enum"] == nil {
            var copy = schema
            copy["type"] = [type, "null"]
            return copy
        }
        return ["anyOf": [schema, ["type": "null"]]]
    }

    /// An object with the given members; `required` lists the ones that are always present.
    static func object(_ properties: [String: Value], required: [String] = [], description: String? = nil) -> Value {
        var schema: Value = ["type": "object", "properties": properties]
        if !required.isEmpty { schema["required"] = required.sorted() }
        if let description { schema["description"] = description }
        return schema
    }

    /// An object whose every listed member is always present (what the gateway's responses are).
    static func complete(_ properties: [String: Value], description: String? = nil) -> Value {
        object(properties, required: Array(properties.keys), description: description)
    }
}

/// One operation of the document: what it takes, what it answers, who may call it.
struct Operation {
    enum Access {
        case anyone
        /// Device signature headers (docs/SIGNING.md).
        case device
        /// Signed by a device or anonymous.
        case deviceOrAnonymous
        /// `Authorization: Bearer <admin api key>`.
        case admin
    }

    var method: String
    var path: String
    var summary: String
    var tag: String
    var access: Access = .anyone
    var parameters: [Schema.Value] = []
    var body: Schema.Value? = nil
    var bodyContentType = "application/json"
    var bodyRequired = true
    /// Success responses: status → (description, media type, schema); a nil schema means no body.
    var responses: [(status: String, description: String, media: String?, schema: Schema.Value?)] = []
    /// Error statuses this operation is known to answer with (always problem+json); `default` covers the rest.
    var errors: [String] = []
    var rateLimited = false
    /// Errors also come as text/plain (for a client that shows the body to its user as it is).
    var plainTextErrors = false

    static func query(_ name: String, _ schema: Schema.Value, _ description: String, required: Bool = false)
        -> Schema.Value
    {
        ["name": name, "in": "query", "required": required, "schema": schema, "description": description]
    }

    static func header(_ name: String, _ schema: Schema.Value, _ description: String) -> Schema.Value {
        ["name": name, "in": "header", "required": false, "schema": schema, "description": description]
    }

    static func path(_ name: String, _ description: String, schema: Schema.Value = Schema.string) -> Schema.Value {
        ["name": name, "in": "path", "required": true, "schema": schema, "description": description]
    }

    static let limit = query("limit", Schema.integer, "Page size; out-of-range values are clamped by the service.")
    static let cursor = query("cursor", Schema.string, "The `next_cursor` of the previous page.")
    static let ifNoneMatch = header("If-None-Match", Schema.string, "An ETag from an earlier answer; 304 if unchanged.")
    static let idempotencyKey = header(
        "Idempotency-Key", Schema.string, "Repeating a submit with the same key and body replays the first answer.")
    /// The signature headers, declared as parameters too (besides the security scheme) so a fuzzer generates them:
    /// whatever they hold, the answer is a documented 400 or 401 (docs/SIGNING.md).
    static let signatureHeaders = [
        header("X-Device-ID", Schema.string, "The device's machine id."),
        header("X-Request-Time", Schema.string, "Unix seconds."),
        header("X-Nonce", Schema.string, "Single use; v1: 32 hex digits or a UUID, v2: 8–128 printable characters."),
        header("X-Signature", Schema.string, "64 hex digits: HMAC-SHA256 of the message."),
        header("X-Signature-Version", Schema.string, "1 (default) or 2."),
    ]

    /// The OpenAPI operation object.
    func document(problem: Schema.Value) -> Schema.Value {
        var answers: Schema.Value = [:]
        // Several entries with one status are one response with several media types (e.g. JSON or CSV).
        for response in responses {
            var answer = answers[response.status] as? Schema.Value ?? ["description": response.description]
            if let media = response.media {
                var content = answer["content"] as? Schema.Value ?? [:]
                content[media] = response.schema.map { ["schema": $0] } ?? [:]
                answer["content"] = content
            }
            answers[response.status] = answer
        }
        var errorStatuses = errors
        switch access {
        case .anyone: break
        case .device, .deviceOrAnonymous: errorStatuses += ["401"]
        case .admin: errorStatuses += ["401", "403"]
        }
        if rateLimited || access == .device || access == .admin { errorStatuses.append("429") }
        let problemContent: Schema.Value = ["application/problem+json": ["schema": problem]]
        // An error status a page also answers with (HTML) gets problem+json as a second media type.
        for status in Set(errorStatuses) {
            var answer =
                answers[status] as? Schema.Value ?? [
                    "description": HTTPResponse.Status(code: Int(status) ?? 500).reasonPhrase
                ]
            var content = answer["content"] as? Schema.Value ?? [:]
            content["application/problem+json"] = ["schema": problem] as Schema.Value
            if plainTextErrors { content["text/plain"] = ["schema": Schema.string] as Schema.Value }
            answer["content"] = content
            answers[status] = answer
        }
        var otherContent = problemContent
        if plainTextErrors { otherContent["text/plain"] = ["schema": Schema.string] as Schema.Value }
        let other: Schema.Value = ["description": "Any other error, as problem+json.", "content": otherContent]
        answers["default"] = other

        var operation: Schema.Value = [
            "operationId": operationID, "summary": summary, "tags": [tag], "responses": answers,
        ]
        let declared =
            parameters + (access == .device || access == .deviceOrAnonymous ? Self.signatureHeaders : [])
        if !declared.isEmpty { operation["parameters"] = declared }
        if let body {
            let content: Schema.Value = [bodyContentType: ["schema": body] as Schema.Value]
            operation["requestBody"] = ["required": bodyRequired, "content": content] as Schema.Value
        }
        switch access {
        case .anyone: operation["security"] = [Schema.Value]()
        case .device: operation["security"] = [["deviceSignature": [String]()]]
        case .deviceOrAnonymous: operation["security"] = [["deviceSignature": [String]()], [:]]
        case .admin: operation["security"] = [["adminKey": [String]()]]
        }
        return operation
    }

    /// `get_api_v1_benchmarks_id_comments`: unique per method and path.
    var operationID: String {
        let words = path.split(separator: "/").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "{}")) }
        return ([method.lowercased()] + words).joined(separator: "_")
    }
}
