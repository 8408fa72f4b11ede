/// A JSON value (RFC 8259) as read from untrusted bytes.
///
/// Parsed by ``parse(_:maximumDepth:)``: one pass, linear in the input, nesting bounded, every number finite, every
/// string valid Unicode, no duplicate keys. (Foundation's `JSONDecoder`, asked for a value of unknown shape, tries
/// each type in turn at every level: 1 KB of nested brackets cost it over a second of CPU.)
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// The nesting a request body may use unless a caller says otherwise: far more than any of our shapes needs.
    public static let defaultMaximumDepth = 32

    /// Parses exactly one JSON value, surrounded by optional whitespace.
    public static func parse(_ bytes: some Collection<UInt8>, maximumDepth: Int = defaultMaximumDepth)
        throws(InputError) -> JSONValue
    {
        var parser = JSONParser(bytes: Array(bytes), maximumDepth: maximumDepth)
        return try parser.document()
    }

    /// Compact JSON text with object keys sorted (a canonical form: equal values give equal text).
    public var canonicalText: String {
        var output = ""
        JSONWriter.write(self, to: &output)
        return output
    }
}

/// A recursive-descent parser over bytes; depth is bounded, so recursion is too.
struct JSONParser {
    let bytes: [UInt8]
    let maximumDepth: Int
    var index = 0

    init(bytes: [UInt8], maximumDepth: Int) {
        self.bytes = bytes
        self.maximumDepth = maximumDepth
    }

    static func invalid(_ detail: String) -> InputError { InputError("invalid_json", detail) }

    mutating func document() throws(InputError) -> JSONValue {
        skipWhitespace()
        let value = try value(depth: 0)
        skipWhitespace()
        guard index == bytes.count else { throw Self.invalid("Unexpected text after the JSON value.") }
        return value
    }

    mutating func skipWhitespace() {
        while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
    }

    mutating func value(depth: Int) throws(InputError) -> JSONValue {
        guard index < bytes.count else { throw Self.invalid("The JSON text ends too early.") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try object(depth: depth + 1)
        case UInt8(ascii: "["): return try array(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"):
            try literal("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try literal("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try literal("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        default: throw Self.invalid("Unexpected character at byte \(index).")
        }
    }

    mutating func literal(_ word: StaticString) throws(InputError) {
        let expected = UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
        guard bytes.count - index >= expected.count, bytes[index..<index + expected.count].elementsEqual(expected)
        else { throw Self.invalid("Unexpected character at byte \(index).") }
        index += expected.count
    }

    mutating func object(depth: Int) throws(InputError) -> JSONValue {
        guard depth <= maximumDepth else { throw Self.invalid("JSON nested deeper than \(maximumDepth) levels.") }
        index += 1  // {
        var fields: [String: JSONValue] = [:]
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return .object(fields)
        }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                throw Self.invalid("Expected a quoted key at byte \(index).")
            }
            let key = try string()
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else {
                throw Self.invalid("Expected ':' at byte \(index).")
            }
            index += 1
            skipWhitespace()
            let value = try value(depth: depth)
            guard fields.updateValue(value, forKey: key) == nil else {
                throw Self.invalid("The key \"\(key.prefix(40))\" appears twice in one object.")
            }
            skipWhitespace()
            guard index < bytes.count else { throw Self.invalid("The JSON text ends inside an object.") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            guard bytes[index] == UInt8(ascii: "}") else { throw Self.invalid("Expected ',' or '}' at byte \(index).") }
            index += 1
            return .object(fields)
        }
    }

    mutating func array(depth: Int) throws(InputError) -> JSONValue {
        guard depth <= maximumDepth else { throw Self.invalid("JSON nested deeper than \(maximumDepth) levels.") }
        index += 1  // [
        var elements: [JSONValue] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try value(depth: depth))
            skipWhitespace()
            guard index < bytes.count else { throw Self.invalid("The JSON text ends inside an array.") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            guard bytes[index] == UInt8(ascii: "]") else { throw Self.invalid("Expected ',' or ']' at byte \(index).") }
            index += 1
            return .array(elements)
        }
    }

    /// A number as RFC 8259 writes it; finite as a Double, or refused.
    mutating func number() throws(InputError) -> Double {
        let start = index
        func digits() -> Int {
            let first = index
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
            return index - first
        }
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count else { throw Self.invalid("A number ends too early.") }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else if digits() == 0 {
            throw Self.invalid("Expected a digit at byte \(index).")
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard digits() > 0 else { throw Self.invalid("Expected a digit after '.' at byte \(index).") }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
                index += 1
            }
            guard digits() > 0 else { throw Self.invalid("Expected a digit in the exponent at byte \(index).") }
        }
        // The grammar above admits only ASCII digits, signs, '.' and 'e', which Double's parser reads exactly.
        let text = String(decoding: bytes[start..<index], as: UTF8.self)
        guard let value = Double(text), value.isFinite else {
            throw Self.invalid("The number at byte \(start) is out of range.")
        }
        return value
    }

    /// A string: escapes resolved, surrogate pairs joined; invalid UTF-8, raw control characters and lone
    /// surrogates refused.
    mutating func string() throws(InputError) -> String {
        index += 1  // opening quote
        var scalars = String.UnicodeScalarView()
        var runStart = index
        func flushRun(_ parser: JSONParser, upTo end: Int) throws(InputError) {
            guard runStart < end else { return }
            guard let text = String(validating: parser.bytes[runStart..<end], as: UTF8.self) else {
                throw Self.invalid("A string is not valid UTF-8 (near byte \(runStart)).")
            }
            scalars.append(contentsOf: text.unicodeScalars)
        }
        while true {
            guard index < bytes.count else { throw Self.invalid("The JSON text ends inside a string.") }
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                try flushRun(self, upTo: index)
                index += 1
                return String(scalars)
            case UInt8(ascii: "\\"):
                try flushRun(self, upTo: index)
                index += 1
                scalars.append(try escape())
                runStart = index
            case 0x00..<0x20:
                throw Self.invalid("A string holds a raw control character at byte \(index).")
            default:
                index += 1
            }
        }
    }

    /// The character after a backslash (the backslash already read).
    mutating func escape() throws(InputError) -> Unicode.Scalar {
        guard index < bytes.count else { throw Self.invalid("The JSON text ends inside an escape.") }
        let byte = bytes[index]
        index += 1
        switch byte {
        case UInt8(ascii: "\""): return "\""
        case UInt8(ascii: "\\"): return "\\"
        case UInt8(ascii: "/"): return "/"
        case UInt8(ascii: "b"): return "\u{08}"
        case UInt8(ascii: "f"): return "\u{0C}"
        case UInt8(ascii: "n"): return "\n"
        case UInt8(ascii: "r"): return "\r"
        case UInt8(ascii: "t"): return "\t"
        case UInt8(ascii: "u"):
            let first = try hexQuad()
            switch first {
            case 0xD800...0xDBFF:
                // A high surrogate must be followed by \u and a low one.
                guard bytes.count - index >= 2, bytes[index] == UInt8(ascii: "\\"),
                    bytes[index + 1] == UInt8(ascii: "u")
                else { throw Self.invalid("A lone surrogate \\u escape at byte \(index).") }
                index += 2
                let second = try hexQuad()
                guard (0xDC00...0xDFFF).contains(second),
                    let scalar = Unicode.Scalar(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00))
                else { throw Self.invalid("A lone surrogate \\u escape at byte \(index).") }
                return scalar
            case 0xDC00...0xDFFF:
                throw Self.invalid("A lone surrogate \\u escape at byte \(index).")
            default:
                guard let scalar = Unicode.Scalar(first) else { throw Self.invalid("A bad \\u escape.") }
                return scalar
            }
        default:
            throw Self.invalid("An unknown escape at byte \(index - 1).")
        }
    }

    mutating func hexQuad() throws(InputError) -> UInt32 {
        guard bytes.count - index >= 4 else { throw Self.invalid("A \\u escape needs four hex digits.") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let nibble = HexDigits.value(of: bytes[index]) else {
                throw Self.invalid("A \\u escape needs four hex digits.")
            }
            value = value << 4 | UInt32(nibble)
            index += 1
        }
        return value
    }
}

/// Compact JSON text, keys sorted, strings escaped as RFC 8259 requires (and `/` left as it is).
enum JSONWriter {
    static func write(_ value: JSONValue, to output: inout String) {
        switch value {
        case .null: output += "null"
        case .bool(let flag): output += flag ? "true" : "false"
        case .number(let number): output += numberText(number)
        case .string(let text): writeString(text, to: &output)
        case .array(let elements):
            output += "["
            for (position, element) in elements.enumerated() {
                if position > 0 { output += "," }
                write(element, to: &output)
            }
            output += "]"
        case .object(let fields):
            output += "{"
            for (position, key) in fields.keys.sorted().enumerated() {
                if position > 0 { output += "," }
                writeString(key, to: &output)
                output += ":"
                if let field = fields[key] { write(field, to: &output) }
            }
            output += "}"
        }
    }

    /// Integers up to 2⁵³ without a fraction; other numbers in Swift's shortest round-trip form (valid JSON, since
    /// only finite numbers are ever held).
    static func numberText(_ number: Double) -> String {
        if number == number.rounded(), abs(number) <= 9_007_199_254_740_992 { return String(Int64(number)) }
        return "\(number)"
    }

    static func writeString(_ text: String, to output: inout String) {
        output += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case "\u{00}"..."\u{1F}":
                let hex = String(scalar.value, radix: 16)
                output += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: output.unicodeScalars.append(scalar)
            }
        }
        output += "\""
    }
}
