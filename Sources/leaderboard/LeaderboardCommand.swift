import ArgumentParser
import AuthService
import DatasetService
import Foundation
import Gateway
import InteractionService
import Logging
import RankingService
import ServiceKit
import ServiceLifecycle

/// The one executable: `serve`, `migrate` (and, as their issues land, `admin`, `client`, `bench`).
@main
struct LeaderboardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "leaderboard",
        abstract: "Global leaderboard for LLM-inference benchmarks.",
        version: buildDescription,
        subcommands: [
            ServeCommand.self, MigrateCommand.self, HealthcheckCommand.self, AdminCommand.self, BackupCommand.self,
            ClientCommand.self, BenchCommand.self,
        ],
        defaultSubcommand: ServeCommand.self
    )
}

/// What `leaderboard --version` prints and a server logs at start: the version and the commit it was built from.
let buildDescription = "\(BuildInfo.version) (commit \(BuildInfo.commit))"

/// The module of each target: a typed switch, so a new target cannot be forgotten.
func moduleDefinition(for target: Target) -> ModuleDefinition {
    switch target {
    case .auth: AuthModule.definition
    case .dataset: DatasetModule.definition
    case .ranking: RankingModule.definition
    case .interaction: InteractionModule.definition
    case .gateway: GatewayModule.definition
    }
}

/// Help text for the settings, generated from the one settings table.
let settingsHelp: String = {
    var lines = ["Settings (flag, or environment variable; flags win):"]
    func describe(_ settings: [Setting]) {
        for setting in settings {
            let defaultText = setting.defaultValue.isEmpty ? "" : " [default: \(setting.defaultValue)]"
            lines.append("  \(setting.flag) / \(setting.environmentVariable)\(defaultText)")
            lines.append("      \(setting.help)")
            if let flag = setting.fileFlag, let variable = setting.fileEnvironmentVariable {
                lines.append("      Or from a file: \(flag) / \(variable) (e.g. a mounted secret).")
            }
        }
    }
    describe(CoreSettings.all)
    for definition in allModules where !definition.settings.isEmpty {
        lines.append("")
        lines.append("\(definition.target) settings:")
        describe(definition.settings)
    }
    return lines.joined(separator: "\n")
}()

/// Every module, for the settings they add.
let allModules = Target.allCases.map(moduleDefinition(for:))

/// Reads and validates configuration, printing every problem and exiting 1 when there are any.
/// `checkModules: false` parses the modules' settings without requiring what only starting them needs.
func loadConfiguration(_ arguments: [String], checkModules: Bool = true) throws -> LeaderboardConfiguration {
    do {
        return try LeaderboardConfiguration(
            arguments: arguments, environment: ProcessInfo.processInfo.environment,
            modules: checkModules ? allModules : allModules.map(\.parsingOnly), serving: checkModules)
    } catch {
        printError(error.description)
        throw ExitCode.failure
    }
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run some or all modules (default: everything, embedded).",
        discussion: settingsHelp
    )

    @Flag(name: .customLong("list-targets"), help: "List the targets and their dependencies, then exit.")
    var listTargets = false

    @Argument(parsing: .allUnrecognized, help: "Settings as --name value (see below).")
    var settings: [String] = []

    func run() async throws {
        if listTargets {
            for target in Target.allCases {
                let dependencies = target.dependencies.map(\.rawValue).joined(separator: ",")
                let padded = target.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0)
                print("\(padded) \(target.summary)\(dependencies.isEmpty ? "" : " (calls: \(dependencies))")")
            }
            return
        }
        let configuration = try loadConfiguration(settings)
        LoggingSetup.bootstrap(level: configuration.logLevel, format: configuration.logFormat)
        MetricsSetup.bootstrap(
            version: BuildInfo.version,
            targets: configuration.targets.startOrder.map(\.rawValue).joined(separator: ","))
        let logger = Logger(label: "leaderboard")
        logger.info(
            "starting",
            metadata: [
                "version": "\(BuildInfo.version)", "commit": "\(BuildInfo.commit)",
                "targets": "\(configuration.targets.startOrder.map(\.rawValue).joined(separator: ","))",
                "storage": "\(configuration.postgres.map { "\($0)" } ?? "sqlite:\(configuration.dataDirectory)")",
                "shared_state": "\(configuration.redis.map { "\($0)" } ?? "in-process")",
            ])
        do {
            let runsGateway = configuration.targets.contains(.gateway)
            let telemetry: (any Service)?
            do {
                telemetry = try TracingSetup.bootstrap(configuration, version: BuildInfo.version, logger: logger)
            } catch {
                throw StartupError(origin: TracingSettings.endpoint.environmentVariable, message: "\(error)")
            }
            if let endpoint = configuration.otlpEndpoint {
                logger.info(
                    "tracing",
                    metadata: ["otlp_endpoint": "\(endpoint)", "service": "\(configuration.traceServiceName)"])
            }
            try await ServiceHost(configuration: configuration, logger: logger).run(
                definitions: moduleDefinition(for:),
                operatorVerifier: { channels in AuthOperatorKeyVerifier(channel: channels[.auth]) },
                extras: { context in
                    (runsGateway ? [] : [buildOperationsService(context: context)]) + [
                        BackupAgeMonitor(
                            directory: BackupDirectory(path: configuration.backupDirectory), logger: context.logger)
                    ]
                }, telemetry: telemetry)
        } catch let error as StartupError {
            printError(error.description)
            throw ExitCode.failure
        }
    }
}

struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply pending schema migrations of the selected targets, then exit.",
        discussion: settingsHelp
    )

    @Argument(parsing: .allUnrecognized, help: "Settings as --name value (same as serve).")
    var settings: [String] = []

    func run() async throws {
        let configuration = try loadConfiguration(settings, checkModules: false)
        LoggingSetup.bootstrap(level: configuration.logLevel, format: configuration.logFormat)
        let logger = Logger(label: "leaderboard")
        do {
            let applied = try await ServiceHost(configuration: configuration, logger: logger).migrate(
                definitions: moduleDefinition(for:))
            for (target, versions) in applied.sorted(by: { $0.key < $1.key }) {
                print(
                    "\(target): \(versions.isEmpty ? "up to date" : "applied \(versions.map(String.init).joined(separator: ", "))")"
                )
            }
        } catch let error as StartupError {
            printError(error.description)
            throw ExitCode.failure
        }
    }
}
