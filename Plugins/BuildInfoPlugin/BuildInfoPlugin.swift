import Foundation
import PackagePlugin

/// Bakes the version (the VERSION file) and the git commit into the target it is applied to, as `BuildInfo`, by
/// running `scripts/build-info`.
///
/// A build command, not a prebuild one: it runs only when its inputs change (VERSION, and the git files that say
/// which commit is checked out). A prebuild command runs on every build and made SwiftPM recompile unrelated
/// packages each time.
@main
struct BuildInfoPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: any Target) throws -> [Command] {
        let package = context.package.directoryURL
        let output = context.pluginWorkDirectoryURL.appending(path: "BuildInfo.swift")
        // What the script reads from the environment: PATH to find git, and the two overrides.
        let passed = ["PATH", "HOME", "BUILD_VERSION", "BUILD_COMMIT"]
        let environment = ProcessInfo.processInfo.environment.filter { passed.contains($0.key) }
        return [
            .buildCommand(
                displayName: "Writing BuildInfo.swift (version and commit)",
                executable: URL(fileURLWithPath: "/bin/sh"),
                arguments: [package.appending(path: "scripts/build-info").path, package.path, output.path],
                environment: environment,
                inputFiles: [package.appending(path: "VERSION"), package.appending(path: "scripts/build-info")]
                    + Self.checkoutFiles(package),
                outputFiles: [output])
        ]
    }

    /// The git files whose change means another commit is checked out: HEAD, the branch it names, packed refs.
    static func checkoutFiles(_ package: URL) -> [URL] {
        var gitDirectory = package.appending(path: ".git")
        // A worktree's .git is a file naming its directory.
        if let text = try? String(contentsOf: gitDirectory, encoding: .utf8), text.hasPrefix("gitdir: ") {
            let path = text.dropFirst("gitdir: ".count).trimmingCharacters(in: .whitespacesAndNewlines)
            gitDirectory = path.hasPrefix("/") ? URL(fileURLWithPath: path) : package.appending(path: path)
        }
        let head = gitDirectory.appending(path: "HEAD")
        guard let text = try? String(contentsOf: head, encoding: .utf8) else { return [] }
        var files = [head]
        if text.hasPrefix("ref: ") {
            let reference = text.dropFirst("ref: ".count).trimmingCharacters(in: .whitespacesAndNewlines)
            let path = gitDirectory.appending(path: reference)
            if FileManager.default.fileExists(atPath: path.path) { files.append(path) }
        }
        let packed = gitDirectory.appending(path: "packed-refs")
        if FileManager.default.fileExists(atPath: packed.path) { files.append(packed) }
        return files
    }
}
