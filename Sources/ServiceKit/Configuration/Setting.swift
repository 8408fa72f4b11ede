/// One configuration setting: a flag (`--name`), an environment variable (`LEADERBOARD_NAME`) and a default.
///
/// Settings are declared once, in ``CoreSettings``; help text, the README table and validation all read that table.
public struct Setting: Sendable, Hashable {
    /// Kebab-case name, e.g. `database-url`.
    public let name: String
    /// The value used when neither a flag nor the environment sets it; empty means "not set".
    public let defaultValue: String
    public let help: String
    /// Secret values are never echoed back in errors or logs.
    public let isSecret: Bool
    /// Whether the value may also come from a file named by `--<name>-file` / `LEADERBOARD_<NAME>_FILE` (a mounted
    /// secret). Every secret accepts one unless it declares its own file setting (master-key-file,
    /// service-token-file) or is itself a path.
    public let acceptsFile: Bool

    public init(
        _ name: String, default defaultValue: String = "", secret: Bool = false, fromFile: Bool? = nil, help: String
    ) {
        self.name = name
        self.defaultValue = defaultValue
        self.help = help
        self.isSecret = secret
        self.acceptsFile = fromFile ?? secret
    }

    public var flag: String { "--\(name)" }

    public var environmentVariable: String { Self.variable(name) }

    /// `--<name>-file`, when the setting accepts one.
    public var fileFlag: String? { acceptsFile ? "--\(name)-file" : nil }

    /// `LEADERBOARD_<NAME>_FILE`, when the setting accepts one.
    public var fileEnvironmentVariable: String? { acceptsFile ? Self.variable("\(name)-file") : nil }

    static func variable(_ name: String) -> String { "LEADERBOARD_" + name.uppercased().replacing("-", with: "_") }

    /// Variables the kubelet injects for every Service of a namespace ("service links"), recognised by name and
    /// value together: `<NAME>_SERVICE_HOST` (an address), `<NAME>_SERVICE_PORT[_<PORT NAME>]` (a number),
    /// `<NAME>_PORT` and `<NAME>_PORT_<N>_<PROTOCOL>` (`tcp://…`), and `…_PROTO` (`tcp`), `…_PORT` (a number),
    /// `…_ADDR` (an address) after those. A Service called `leaderboard-auth` yields `LEADERBOARD_AUTH_SERVICE_HOST`:
    /// not a typo of ours, so it is ignored; `LEADERBOARD_HTTP_PORT=8080` (a guess at a setting) is not the kubelet's
    /// shape and is still refused. No setting of ours ends like these.
    public static func isKubernetesServiceLink(_ variable: String, value: String) -> Bool {
        let parts = variable.split(separator: "_", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 2 else { return false }
        let isNumber = !value.isEmpty && value.allSatisfy(\.isASCII) && value.allSatisfy(\.isNumber)
        let isAddress = !value.isEmpty && value.allSatisfy { $0.isHexDigit || $0 == "." || $0 == ":" }
        let protocols = ["tcp", "udp", "sctp"]
        let isURL = protocols.contains { value.hasPrefix("\($0)://") }
        if let service = parts.lastIndex(of: "SERVICE"), service > 0, service + 1 < parts.count {
            if parts[service + 1] == "HOST", parts.count == service + 2 { return isAddress }
            if parts[service + 1] == "PORT" { return isNumber }
        }
        if parts.last == "PORT", isURL { return true }
        // <NAME>_PORT_<N>_<PROTOCOL>[_PROTO|_PORT|_ADDR]
        for index in parts.indices.dropLast(2) where parts[index] == "PORT" {
            let number = parts[index + 1]
            guard !number.isEmpty, number.allSatisfy(\.isNumber), protocols.contains(parts[index + 2].lowercased())
            else { continue }
            switch Array(parts[(index + 3)...]) {
            case []: return isURL
            case ["PROTO"]: return protocols.contains(value)
            case ["PORT"]: return isNumber
            case ["ADDR"]: return isAddress
            default: continue
            }
        }
        return false
    }
}

/// Where a configuration value came from; errors name the setting the way the operator wrote it.
public enum SettingSource: Sendable, Hashable {
    case flag
    case environment
    case defaultValue
    /// Read from a file; the associated value names the flag or variable that named the file.
    case file(origin: String)
}

/// A value together with the name under which the operator supplied it.
public struct SettingValue: Sendable, Hashable {
    public let setting: Setting
    public let value: String
    public let source: SettingSource

    /// `--database-url` or `LEADERBOARD_DATABASE_URL`, whichever the value came from.
    public var origin: String {
        switch source {
        case .flag: setting.flag
        case .environment, .defaultValue: setting.environmentVariable
        case .file(let origin): origin
        }
    }

    public var isSet: Bool { !value.isEmpty }
}

/// One thing wrong with the configuration.
public struct ConfigurationProblem: Sendable, Hashable, CustomStringConvertible {
    public let origin: String
    public let message: String

    public init(origin: String, message: String) {
        self.origin = origin
        self.message = message
    }

    public var description: String { "CONFIG ERROR: \(origin): \(message)" }
}

/// Every problem found in the configuration, reported together so an operator fixes them in one go.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public let problems: [ConfigurationProblem]

    public init(problems: [ConfigurationProblem]) {
        self.problems = problems
    }

    public var description: String { problems.map(\.description).joined(separator: "\n") }
}

/// Raw values of every setting after applying flags over environment over defaults.
public struct RawConfiguration: Sendable {
    public let values: [String: SettingValue]

    public subscript(setting: Setting) -> SettingValue {
        values[setting.name] ?? SettingValue(setting: setting, value: setting.defaultValue, source: .defaultValue)
    }

    /// Parses `--name value` / `--name=value` arguments and `LEADERBOARD_*` variables, and reads the files named by
    /// the `-file` variants of secrets (a value and a file for one setting is a problem; flags win over variables).
    ///
    /// Unknown flags, flags without a value and unknown `LEADERBOARD_*` variables are problems: a typo must not
    /// silently fall back to a default. Kubernetes service-link variables (``Setting/isKubernetesServiceLink(_:value:)``)
    /// are not ours and are ignored.
    public static func parse(
        arguments: [String],
        environment: [String: String],
        settings: [Setting]
    ) -> (RawConfiguration, [ConfigurationProblem]) {
        var problems: [ConfigurationProblem] = []
        var values: [String: SettingValue] = [:]
        var byName = Dictionary(uniqueKeysWithValues: settings.map { ($0.name, ($0, false)) })
        var byVariable = Dictionary(uniqueKeysWithValues: settings.map { ($0.environmentVariable, ($0, false)) })
        for setting in settings where setting.acceptsFile {
            byName["\(setting.name)-file"] = (setting, true)
            byVariable[Setting.variable("\(setting.name)-file")] = (setting, true)
        }
        // Which of a setting's two forms (value, file) each source named, to refuse both at once.
        var named: [String: [String]] = [:]
        func refuseBoth() {
            for (name, origins) in named where origins.count > 1 {
                problems.append(
                    ConfigurationProblem(
                        origin: origins.joined(separator: ", "), message: "set \(name) or its file, not both"))
            }
            named = [:]
        }

        for setting in settings {
            values[setting.name] = SettingValue(setting: setting, value: setting.defaultValue, source: .defaultValue)
        }
        func assign(_ setting: Setting, _ value: String, fromFile: Bool, origin: String, source: SettingSource) {
            // An empty file setting is an unset one (e.g. a compose service clearing what a shared block sets).
            if fromFile, value.isEmpty { return }
            named[setting.name, default: []].append(origin)
            guard fromFile else {
                values[setting.name] = SettingValue(setting: setting, value: value, source: source)
                return
            }
            guard let contents = FileSystem.readText(value) else {
                problems.append(ConfigurationProblem(origin: origin, message: "cannot read file '\(value)'"))
                return
            }
            values[setting.name] = SettingValue(
                setting: setting, value: contents.trimmingASCIIWhitespace(), source: .file(origin: origin))
        }
        for (variable, value) in environment.sorted(by: { $0.key < $1.key }) where variable.hasPrefix("LEADERBOARD_") {
            guard let (setting, fromFile) = byVariable[variable] else {
                if !Setting.isKubernetesServiceLink(variable, value: value) {
                    problems.append(ConfigurationProblem(origin: variable, message: "unknown setting"))
                }
                continue
            }
            assign(setting, value, fromFile: fromFile, origin: variable, source: .environment)
        }
        refuseBoth()  // the environment, read in sorted order

        var index = arguments.startIndex
        while index < arguments.endIndex {
            let argument = arguments[index]
            index += 1
            guard argument.hasPrefix("--"), argument.count > 2 else {
                problems.append(ConfigurationProblem(origin: argument, message: "unexpected argument"))
                continue
            }
            var name = String(argument.dropFirst(2))
            var value: String?
            if let equals = name.firstIndex(of: "=") {
                value = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            guard let (setting, fromFile) = byName[name] else {
                problems.append(ConfigurationProblem(origin: "--\(name)", message: "unknown flag"))
                // Skip its value too, so one typo is reported once.
                if value == nil, index < arguments.endIndex, !arguments[index].hasPrefix("--") { index += 1 }
                continue
            }
            if value == nil {
                if index < arguments.endIndex, !arguments[index].hasPrefix("--") {
                    value = arguments[index]
                    index += 1
                } else {
                    problems.append(ConfigurationProblem(origin: "--\(name)", message: "missing value"))
                    continue
                }
            }
            assign(setting, value ?? "", fromFile: fromFile, origin: "--\(name)", source: .flag)
        }
        refuseBoth()  // the flags, in the order given
        return (RawConfiguration(values: values), problems)
    }
}
