/// A `multipart/form-data` body (RFC 7578, RFC 2046 §5.1) parsed as it arrives, chunk by chunk, with every size
/// bounded before it is buffered: the preamble and each part's headers by ``Limits/maximumHeaderBytes``, each part's
/// body by ``Limits/maximumPartBytes`` (per part name), the number of parts by ``Limits/maximumParts``.
///
/// Work is linear in the input: the delimiter can only start at a CR, and it holds no other CR, so every byte is
/// compared a bounded number of times. Folded header lines and `Content-Transfer-Encoding` are not supported (RFC 7578
/// deprecates both); the epilogue after the closing delimiter is ignored.
public struct MultipartForm: Sendable {
    /// One complete part.
    public struct Part: Sendable, Equatable {
        /// `Content-Disposition: form-data; name="…"`.
        public var name: String
        public var filename: String?
        public var contentType: String?
        public var body: [UInt8]

        public init(name: String, filename: String? = nil, contentType: String? = nil, body: [UInt8]) {
            self.name = name
            self.filename = filename
            self.contentType = contentType
            self.body = body
        }
    }

    public struct Limits: Sendable {
        public var maximumParts: Int
        /// The preamble, and each part's header block.
        public var maximumHeaderBytes: Int
        /// The largest body a part of this name may have.
        public var maximumPartBytes: @Sendable (_ name: String) -> Int

        public init(
            maximumParts: Int = 16, maximumHeaderBytes: Int = 8192,
            maximumPartBytes: @escaping @Sendable (_ name: String) -> Int
        ) {
            self.maximumParts = maximumParts
            self.maximumHeaderBytes = maximumHeaderBytes
            self.maximumPartBytes = maximumPartBytes
        }
    }

    /// The `boundary` parameter of a `multipart/form-data` media type: 1–70 characters of RFC 2046's `bchars`.
    public static func boundary(contentType: String) throws(InputError) -> String {
        let invalid = InputError(
            "invalid_multipart", "Content-Type must be multipart/form-data with a boundary of 1 to 70 characters.")
        let (type, parameters) = try mediaType(Array(contentType.utf8), invalid: invalid)
        guard type == "multipart/form-data", let boundary = parameters.first(where: { $0.name == "boundary" })?.value,
            (1...70).contains(boundary.utf8.count), boundary.utf8.allSatisfy(isBoundaryCharacter),
            boundary.utf8.last != UInt8(ascii: " ")
        else { throw invalid }
        return boundary
    }

    private enum State: Sendable {
        case preamble
        case afterDelimiter
        case headers
        case body
        case done
    }

    private let delimiter: [UInt8]
    private let limits: Limits
    private var state = State.preamble
    /// Bytes received and not yet consumed; the body starts with a CRLF of our own, so the first delimiter matches
    /// like every other.
    private var pending: [UInt8] = [13, 10]
    private var consumed = 0
    /// Bytes of the preamble, or of the current part's header block, so far.
    private var headerBytes = 0
    private var current: Part?
    private var currentLimit = 0
    private var parts = 0

    public init(boundary: String, limits: Limits) {
        delimiter = Array("\r\n--\(boundary)".utf8)
        self.limits = limits
    }

    /// True once the closing delimiter has been read.
    public var isComplete: Bool {
        if case .done = state { return true }
        return false
    }

    /// Takes the next bytes of the body; answers the parts they completed, in order.
    public mutating func feed(_ bytes: some Collection<UInt8>) throws(InputError) -> [Part] {
        pending.append(contentsOf: bytes)
        var completed: [Part] = []
        defer {
            pending.removeFirst(consumed)
            consumed = 0
        }
        while true {
            switch state {
            case .preamble:
                if let at = find(delimiter, from: consumed) {
                    headerBytes += at - consumed
                    consumed = at + delimiter.count
                    state = .afterDelimiter
                } else {
                    let keep = max(consumed, pending.count - (delimiter.count - 1))
                    headerBytes += keep - consumed
                    consumed = keep
                }
                guard headerBytes <= limits.maximumHeaderBytes else {
                    throw InputError("invalid_multipart", "The body does not start with its boundary.")
                }
                if case .preamble = state { return completed }
            case .afterDelimiter:
                // "--" closes the body; otherwise optional transport padding, then CRLF.
                guard pending.count - consumed >= 2 else { return completed }
                if pending[consumed] == UInt8(ascii: "-"), pending[consumed + 1] == UInt8(ascii: "-") {
                    consumed = pending.count
                    state = .done
                    return completed
                }
                var index = consumed
                while index < pending.count, pending[index] == 32 || pending[index] == 9 { index += 1 }
                guard index - consumed <= 64 else {
                    throw InputError("invalid_multipart", "A boundary line carries more than 64 bytes of padding.")
                }
                guard pending.count - index >= 2 else { return completed }
                guard pending[index] == 13, pending[index + 1] == 10 else {
                    throw InputError("invalid_multipart", "A boundary line does not end with CRLF.")
                }
                consumed = index + 2
                guard parts < limits.maximumParts else {
                    throw InputError("too_many_parts", "A body may have at most \(limits.maximumParts) parts.")
                }
                parts += 1
                headerBytes = 0
                current = Part(name: "", body: [])
                state = .headers
            case .headers:
                guard let end = find([13, 10], from: consumed) else {
                    guard headerBytes + (pending.count - consumed) <= limits.maximumHeaderBytes else {
                        throw InputError(
                            "invalid_multipart",
                            "A part's headers are longer than \(limits.maximumHeaderBytes) bytes.")
                    }
                    return completed
                }
                headerBytes += end + 2 - consumed
                guard headerBytes <= limits.maximumHeaderBytes else {
                    throw InputError(
                        "invalid_multipart", "A part's headers are longer than \(limits.maximumHeaderBytes) bytes.")
                }
                let line = Array(pending[consumed..<end])
                consumed = end + 2
                if line.isEmpty {
                    guard let part = current, !part.name.isEmpty else {
                        throw InputError(
                            "invalid_multipart", "Every part needs Content-Disposition: form-data with a name.")
                    }
                    currentLimit = limits.maximumPartBytes(part.name)
                    state = .body
                } else {
                    try header(line)
                }
            case .body:
                let found = find(delimiter, from: consumed)
                let end = found ?? max(consumed, pending.count - (delimiter.count - 1))
                if end > consumed {
                    guard let part = current, part.body.count + (end - consumed) <= currentLimit else {
                        throw InputError(
                            "part_too_large",
                            "The part \"\(current?.name ?? "")\" is larger than \(currentLimit) bytes.")
                    }
                    current?.body.append(contentsOf: pending[consumed..<end])
                }
                consumed = end
                guard let found else { return completed }
                consumed = found + delimiter.count
                if let part = current { completed.append(part) }
                current = nil
                state = .afterDelimiter
            case .done:
                consumed = pending.count
                return completed
            }
        }
    }

    /// Throws unless the body ended with its closing delimiter.
    public func finish() throws(InputError) {
        guard isComplete else {
            throw InputError("invalid_multipart", "The body ends before its closing boundary.")
        }
    }

    // MARK: - pieces

    /// One header line of the current part.
    private mutating func header(_ line: [UInt8]) throws(InputError) {
        guard line.first != 32, line.first != 9 else {
            throw InputError("invalid_multipart", "Folded part header lines are not supported.")
        }
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > 0,
            line[..<colon].allSatisfy(Self.isTokenCharacter)
        else { throw InputError("invalid_multipart", "A part header line is not \"Name: value\".") }
        let name = String(decoding: line[..<colon], as: UTF8.self).lowercased()
        let value = Array(line[(colon + 1)...])
        switch name {
        case "content-disposition":
            let invalid = InputError(
                "invalid_multipart", "A part's Content-Disposition is not form-data with a quoted name.")
            let (type, parameters) = try Self.mediaType(value, invalid: invalid)
            guard type == "form-data", let partName = parameters.first(where: { $0.name == "name" })?.value,
                !partName.isEmpty, current?.name.isEmpty == true
            else { throw invalid }
            current?.name = partName
            current?.filename = parameters.first(where: { $0.name == "filename" })?.value
        case "content-type":
            guard let text = String(validating: value, as: UTF8.self) else {
                throw InputError("invalid_multipart", "A part's Content-Type is not UTF-8.")
            }
            current?.contentType = text.trimmingSpaces
        default:
            break  // Content-Transfer-Encoding and others: ignored (RFC 7578 §4.7)
        }
    }

    /// `type/subtype; name=value; name="quoted value"` (names lowercased; values as given, escapes undone).
    static func mediaType(_ bytes: [UInt8], invalid: InputError) throws(InputError) -> (
        type: String, parameters: [(name: String, value: String)]
    ) {
        var index = 0
        func skipSpaces() { while index < bytes.count, bytes[index] == 32 || bytes[index] == 9 { index += 1 } }
        func token() -> [UInt8] {
            let start = index
            while index < bytes.count, isTokenCharacter(bytes[index]) || bytes[index] == UInt8(ascii: "/") {
                index += 1
            }
            return Array(bytes[start..<index])
        }
        skipSpaces()
        let type = token()
        guard !type.isEmpty else { throw invalid }
        var parameters: [(name: String, value: String)] = []
        while true {
            skipSpaces()
            guard index < bytes.count else { break }
            guard bytes[index] == UInt8(ascii: ";") else { throw invalid }
            index += 1
            skipSpaces()
            if index == bytes.count { break }  // a trailing ";"
            let name = token()
            skipSpaces()
            guard !name.isEmpty, index < bytes.count, bytes[index] == UInt8(ascii: "=") else { throw invalid }
            index += 1
            skipSpaces()
            var value: [UInt8] = []
            if index < bytes.count, bytes[index] == UInt8(ascii: "\"") {
                index += 1
                var closed = false
                while index < bytes.count {
                    let byte = bytes[index]
                    index += 1
                    if byte == UInt8(ascii: "\"") {
                        closed = true
                        break
                    }
                    if byte == UInt8(ascii: "\\"), index < bytes.count {
                        value.append(bytes[index])
                        index += 1
                    } else {
                        value.append(byte)
                    }
                }
                guard closed else { throw invalid }
            } else {
                value = token()
                guard !value.isEmpty else { throw invalid }
            }
            guard let text = String(validating: value, as: UTF8.self),
                !text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
            else { throw invalid }
            parameters.append((String(decoding: name, as: UTF8.self).lowercased(), text))
        }
        return (String(decoding: type, as: UTF8.self).lowercased(), parameters)
    }

    /// RFC 7230 `tchar`.
    static func isTokenCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
        }
    }

    /// RFC 2046 `bchars`.
    static func isBoundaryCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return Array("'()+_,-./:=? ".utf8).contains(byte)
        }
    }

    /// The first place `needle` occurs in `pending` at or after `start` (it starts with CR and holds no other CR,
    /// except the two-byte CRLF, so each byte is looked at a bounded number of times).
    private func find(_ needle: [UInt8], from start: Int) -> Int? {
        var index = start
        while index + needle.count <= pending.count {
            guard let cr = pending[index...].firstIndex(of: 13) else { return nil }
            guard cr + needle.count <= pending.count else { return nil }
            if pending[cr..<(cr + needle.count)].elementsEqual(needle) { return cr }
            index = cr + 1
        }
        return nil
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        var scalars = Substring(self)
        while scalars.first == " " || scalars.first == "\t" { scalars.removeFirst() }
        while scalars.last == " " || scalars.last == "\t" { scalars.removeLast() }
        return String(scalars)
    }
}
