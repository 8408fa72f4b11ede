/// Input from outside the process (a request's headers, query, body or path; a peer's metadata) that does not parse.
///
/// Everything in this module is a total function of the bytes it is given: it returns a value or throws this, and
/// never traps, whatever the input (each parser has a coverage-guided fuzz target under `Fuzz/`). The `code` is
/// stable and becomes the `code` of a 400 problem at the gateway, or an INVALID_ARGUMENT status inside.
public struct InputError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Stable, snake_case (e.g. `invalid_range`, `invalid_json`).
    public let code: String
    /// What was wrong, for a person; never echoes more than a short, sanitised part of the input.
    public let detail: String

    public init(_ code: String, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    public var description: String { "\(code): \(detail)" }
}
