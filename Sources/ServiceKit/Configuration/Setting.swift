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

    public init(_ name: String, default defaultValue: String = "", secret: Bool = false, help: String) {
        self.name = name
        self.defaultValue = defaultValue
        self.help = help
        self.isSecret = secret
    }

    public var flag: String { "--\(name)" }

    public var environmentVariable: String {
        "LEADERBOARD_" + name.uppercased().replacing("-", with: "_")
    }
}

/// Where a configuration value came from; errors name the setting the way the operator wrote it.
public enum SettingSource: Sendable, Hashable {
    case flag
    case environment
    case defaultValue
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

    /// Parses `--name value` / `--name=value` arguments and `LEADERBOARD_*` variables.
    ///
    /// Unknown flags, flags without a value and unknown `LEADERBOARD_*` variables are problems: a typo must not
    /// silently fall back to a default.
    public static func parse(
        arguments: [String],
        environment: [String: String],
        settings: [Setting]
    ) -> (RawConfiguration, [ConfigurationProblem]) {
        var problems: [ConfigurationProblem] = []
        var values: [String: SettingValue] = [:]
        let byName = Dictionary(uniqueKeysWithValues: settings.map { ($0.name, $0) })
        let byVariable = Dictionary(uniqueKeysWithValues: settings.map { ($0.environmentVariable, $0) })

        for setting in settings {
            values[setting.name] = SettingValue(setting: setting, value: setting.defaultValue, source: .defaultValue)
        }
        for (variable, value) in environment.sorted(by: { $0.key < $1.key }) where variable.hasPrefix("LEADERBOARD_") {
            guard let setting = byVariable[variable] else {
                problems.append(ConfigurationProblem(origin: variable, message: "unknown setting"))
                continue
            }
            values[setting.name] = SettingValue(setting: setting, value: value, source: .environment)
        }

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
            guard let setting = byName[name] else {
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
                    problems.append(ConfigurationProblem(origin: setting.flag, message: "missing value"))
                    continue
                }
            }
            values[setting.name] = SettingValue(setting: setting, value: value ?? "", source: .flag)
        }
        return (RawConfiguration(values: values), problems)
    }
}
