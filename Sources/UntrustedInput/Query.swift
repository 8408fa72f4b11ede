/// A URL query as sent (`a=1&b=x%20y`), decoded: `+` is a space, `%XX` a byte, and every name and value valid UTF-8
/// without NUL. At most `maximumPairs` parameters.
public struct QueryParameters: Sendable, Equatable {
    public struct Pair: Sendable, Equatable {
        public let name: String
        public let value: String
    }

    public let pairs: [Pair]

    public static let maximumPairs = 64

    public static func parse(_ query: some StringProtocol, maximumPairs: Int = maximumPairs) throws(InputError)
        -> QueryParameters
    {
        var pairs: [Pair] = []
        for part in Array(query.utf8).split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            guard pairs.count < maximumPairs else {
                throw InputError("invalid_query", "The query has more than \(maximumPairs) parameters.")
            }
            let equals = part.firstIndex(of: UInt8(ascii: "="))
            let name = try decode(equals.map { part[part.startIndex..<$0] } ?? part)
            let value = try decode(equals.map { part[part.index(after: $0)...] } ?? [])
            pairs.append(Pair(name: name, value: value))
        }
        return QueryParameters(pairs: pairs)
    }

    /// The first value of `name`.
    public subscript(name: String) -> String? { pairs.first { $0.name == name }?.value }

    /// Percent-decoding (and `+` as a space) of one name or value.
    static func decode(_ encoded: ArraySlice<UInt8>) throws(InputError) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(encoded.count)
        var index = encoded.startIndex
        while index < encoded.endIndex {
            let byte = encoded[index]
            if byte == UInt8(ascii: "%") {
                guard encoded.endIndex - index >= 3, let high = HexDigits.value(of: encoded[index + 1]),
                    let low = HexDigits.value(of: encoded[index + 2])
                else { throw InputError("invalid_query", "The query has a malformed %-escape.") }
                bytes.append(high << 4 | low)
                index += 3
            } else {
                bytes.append(byte == UInt8(ascii: "+") ? 0x20 : byte)
                index += 1
            }
        }
        guard !bytes.contains(0), let text = String(validating: bytes, as: UTF8.self) else {
            throw InputError("invalid_character", "The query must be UTF-8 text without NUL characters.")
        }
        return text
    }

    /// Percent-encoding for a canonical query: unreserved characters (RFC 3986) as they are, every other byte %XX.
    static func encode(_ text: String) -> String {
        var output = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                output.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let digits = Array("0123456789ABCDEF".unicodeScalars)
                output += "%"
                output.unicodeScalars.append(digits[Int(byte >> 4)])
                output.unicodeScalars.append(digits[Int(byte & 0x0F)])
            }
        }
        return output
    }
}

/// The query parameters one route declares, and what each may hold.
///
/// A route reads its parameters only through its spec; the response cache keys a route by the spec's canonical
/// form (declared parameters, in declared order, re-encoded), so parameters a route does not read can neither
/// split its cache entries nor get past the cache.
public struct QuerySpec: Sendable {
    public enum Kind: Sendable, Equatable {
        /// Text of at most this many characters.
        case text(maximumLength: Int)
        /// A base-10 integer in the range.
        case integer(ClosedRange<Int64>)
        /// A finite decimal number in the range.
        case number(ClosedRange<Double>)
        /// `true` or `false` (also `1` and `0`).
        case flag
        /// One of the listed words.
        case choice([String])
        /// An opaque page cursor (canonical base64url, at most 512 characters).
        case cursor
    }

    public struct Parameter: Sendable {
        public let name: String
        public let kind: Kind
        /// The code of the error when this parameter is wrong (e.g. `invalid_limit`); default `invalid_query`
        /// (`invalid_cursor` for a cursor).
        public let code: String

        public init(_ name: String, _ kind: Kind, code: String? = nil) {
            self.name = name
            self.kind = kind
            self.code = code ?? (kind == .cursor ? "invalid_cursor" : "invalid_query")
        }
    }

    public let parameters: [Parameter]

    public init(_ parameters: [Parameter]) { self.parameters = parameters }

    /// No parameters at all.
    public static let none = QuerySpec([])

    /// Parses `raw` (the query exactly as sent, without `?`). Declared parameters are decoded and checked (each at
    /// most once; a failure carries the parameter's code); the others are skipped without being decoded.
    public func parse(_ raw: some StringProtocol) throws(InputError) -> DeclaredQuery {
        var values: [String: String] = [:]
        var count = 0
        for part in Array(raw.utf8).split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            count += 1
            guard count <= QueryParameters.maximumPairs else {
                throw InputError("invalid_query", "The query has more than \(QueryParameters.maximumPairs) parameters.")
            }
            let equals = part.firstIndex(of: UInt8(ascii: "="))
            let name = try QueryParameters.decode(equals.map { part[part.startIndex..<$0] } ?? part)
            guard let parameter = parameters.first(where: { $0.name == name }) else { continue }
            guard values[name] == nil else {
                throw InputError(parameter.code, "The query parameter \"\(name)\" is given more than once.")
            }
            let value: String
            do throws(InputError) {
                value = try QueryParameters.decode(equals.map { part[part.index(after: $0)...] } ?? [])
            } catch {
                if error.code == "invalid_character" { throw error }
                throw InputError(parameter.code, "The query parameter \"\(name)\": \(error.detail)")
            }
            try check(value, parameter)
            values[name] = value
        }
        return DeclaredQuery(values: values, order: parameters.map(\.name))
    }

    func check(_ value: String, _ parameter: Parameter) throws(InputError) {
        let name = parameter.name
        func fail(_ expected: String) -> InputError {
            InputError(parameter.code, "The query parameter \"\(name)\" must be \(expected).")
        }
        switch parameter.kind {
        case .text(let maximumLength):
            guard value.count <= maximumLength else { throw fail("at most \(maximumLength) characters") }
        case .integer(let range):
            let utf8 = Array(value.utf8)
            let digits = utf8.first == UInt8(ascii: "-") ? utf8.dropFirst() : utf8[...]
            guard (1...18).contains(digits.count), digits.allSatisfy({ (0x30...0x39).contains($0) }),
                let number = Int64(value), range.contains(number)
            else { throw fail("an integer from \(range.lowerBound) to \(range.upperBound)") }
        case .number(let range):
            guard value.utf8.count <= 32,
                value.utf8.allSatisfy({
                    (0x30...0x39).contains($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-")
                }),
                let number = Double(value), number.isFinite, range.contains(number)
            else { throw fail("a number from \(range.lowerBound) to \(range.upperBound)") }
        case .flag:
            guard ["true", "false", "1", "0"].contains(value) else { throw fail("true or false") }
        case .choice(let words):
            guard words.contains(value) else { throw fail("one of \(words.joined(separator: ", "))") }
        case .cursor:
            guard value.isEmpty || PageCursor.parts(of: value) != nil else {
                throw InputError(parameter.code, "The cursor is not one this server made.")
            }
        }
    }
}

/// A query parsed against a ``QuerySpec``: only declared parameters, each checked.
public struct DeclaredQuery: Sendable, Equatable {
    public let values: [String: String]
    let order: [String]

    public subscript(name: String) -> String? { values[name] }

    /// An integer parameter (already range-checked by its spec).
    public func integer(_ name: String) -> Int64? { values[name].flatMap { Int64($0) } }

    /// A number parameter (already checked by its spec).
    public func number(_ name: String) -> Double? { values[name].flatMap { Double($0) } }

    /// A flag parameter: true for `true`/`1`.
    public func flag(_ name: String) -> Bool? { values[name].map { $0 == "true" || $0 == "1" } }

    /// The declared parameters present, in declared order, percent-encoded the one way: two requests that mean the
    /// same get the same text.
    public var canonical: String {
        order.compactMap { name in
            values[name].map { QueryParameters.encode(name) + "=" + QueryParameters.encode($0) }
        }.joined(separator: "&")
    }
}
