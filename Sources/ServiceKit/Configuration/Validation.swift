/// Collects problems while typed values are read from a ``RawConfiguration``.
///
/// Each reader returns a usable placeholder on failure so validation continues and every problem is reported.
public struct ConfigurationReader {
    public let raw: RawConfiguration
    public private(set) var problems: [ConfigurationProblem]

    public init(raw: RawConfiguration, problems: [ConfigurationProblem] = []) {
        self.raw = raw
        self.problems = problems
    }

    public mutating func fail(_ setting: Setting, _ message: String) {
        problems.append(ConfigurationProblem(origin: raw[setting].origin, message: message))
    }

    public func string(_ setting: Setting) -> String { raw[setting].value }

    /// Reads a value through a parser that throws a ``SettingParseError`` describing what is wrong.
    public mutating func parse<T>(_ setting: Setting, _ parser: (String) throws(SettingParseError) -> T) -> T? {
        let value = raw[setting]
        do {
            return try parser(value.value)
        } catch {
            problems.append(ConfigurationProblem(origin: value.origin, message: error.message))
            return nil
        }
    }

    public mutating func integer(_ setting: Setting, in range: ClosedRange<Int>) -> Int {
        parse(setting) { text throws(SettingParseError) in
            guard let number = Int(text), range.contains(number) else {
                throw SettingParseError("not an integer in \(range.lowerBound)...\(range.upperBound)")
            }
            return number
        } ?? range.lowerBound
    }

    public mutating func choice<T: RawRepresentable & CaseIterable>(_ setting: Setting, as type: T.Type) -> T?
    where T.RawValue == String {
        parse(setting) { text throws(SettingParseError) in
            guard let value = T(rawValue: text.lowercased()) else {
                throw SettingParseError("must be one of \(T.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return value
        }
    }

    /// `true` or `false` (also `1`/`0`, `yes`/`no`).
    public mutating func boolean(_ setting: Setting) -> Bool {
        parse(setting) { text throws(SettingParseError) in
            switch text.lowercased() {
            case "true", "1", "yes": return true
            case "false", "0", "no", "": return false
            default: throw SettingParseError("must be true or false")
            }
        } ?? false
    }

    /// Two file settings that go together (a certificate and its key): both or neither, each readable. Returns
    /// both paths when both are set and readable.
    public mutating func filePair(_ first: Setting, _ second: Setting) -> (String, String)? {
        let paths = (string(first), string(second))
        var usable = !paths.0.isEmpty && !paths.1.isEmpty
        if paths.0.isEmpty != paths.1.isEmpty {
            fail(paths.0.isEmpty ? first : second, "\(first.name) and \(second.name) must be set together")
        }
        for (setting, path) in [(first, paths.0), (second, paths.1)]
        where !path.isEmpty && !FileSystem.isReadableFile(path) {
            fail(setting, "cannot read file '\(path)'")
            usable = false
        }
        return usable ? paths : nil
    }

    /// Throws every collected problem at once.
    public func check() throws(ConfigurationError) {
        if !problems.isEmpty { throw ConfigurationError(problems: problems) }
    }
}

/// Why a single setting value is invalid; the text is shown to the operator after the setting's name.
public struct SettingParseError: Error, Sendable {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }
}

/// A `host:port` pair for listeners and remote services.
public struct HostPort: Sendable, Hashable, CustomStringConvertible {
    public let host: String
    public let port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Whether the host is an IPv6 literal (it contains a colon once brackets are removed).
    public var isIPv6: Bool { host.contains(":") }

    /// Whether the host is an IP literal rather than a name.
    public var isIPLiteral: Bool {
        if isIPv6 { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { part in UInt8(part) != nil && !part.isEmpty }
    }

    /// Whether the host is this machine (localhost, 127.0.0.0/8 or ::1).
    public var isLoopback: Bool { host == "localhost" || host == "::1" || (isIPLiteral && host.hasPrefix("127.")) }

    /// A listener address; port 0 lets the OS choose.
    public static func parseListener(_ text: String) throws(SettingParseError) -> HostPort {
        try parse(text, allowZeroPort: true)
    }

    /// A remote address; needs a real port.
    public static func parseRemote(_ text: String) throws(SettingParseError) -> HostPort {
        try parse(text, allowZeroPort: false)
    }

    /// Accepts `host:port` and `[v6]:port`; port 0 (listeners only) asks the OS for a free port.
    public static func parse(_ text: String, allowZeroPort: Bool = true) throws(SettingParseError) -> HostPort {
        var host: Substring
        var portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                throw SettingParseError("not a host:port address")
            }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else { throw SettingParseError("not a host:port address") }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, let port = Int(portText), (allowZeroPort ? 0 : 1)...65535 ~= port else {
            throw SettingParseError("not a host:port address")
        }
        return HostPort(host: String(host), port: port)
    }
}
