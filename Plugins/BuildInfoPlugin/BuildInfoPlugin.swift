import Foundation
import PackagePlugin

/// Bakes the version (the VERSION file) and the git commit into the target it is applied to, as `BuildInfo`, by
/// running `scripts/build-info` before every build. The script rewrites its output only when the text changes.
@main
struct BuildInfoPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: any Target) throws -> [Command] {
        let outputDirectory = context.pluginWorkDirectoryURL.appending(path: "BuildInfo")
        let script = context.package.directoryURL.appending(path: "scripts/build-info")
        // What the script reads from the environment: PATH to find git, and the two overrides.
        let passed = ["PATH", "HOME", "BUILD_VERSION", "BUILD_COMMIT"]
        let environment = ProcessInfo.processInfo.environment.filter { passed.contains($0.key) }
        return [
            .prebuildCommand(
                displayName: "Writing BuildInfo.swift (version and commit)",
                executable: URL(fileURLWithPath: "/bin/sh"),
                arguments: [
                    script.path, context.package.directoryURL.path,
                    outputDirectory.appending(path: "BuildInfo.swift").path,
                ],
                environment: environment,
                outputFilesDirectory: outputDirectory)
        ]
    }
}
