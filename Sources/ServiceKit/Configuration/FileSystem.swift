import Foundation

/// Small file-system helpers so configuration code does not import Foundation everywhere.
public enum FileSystem {
    public static func isReadableFile(_ path: String) -> Bool {
        FileManager.default.isReadableFile(atPath: path)
    }

    /// The whole file as UTF-8 text; nil when it cannot be read.
    public static func readText(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }

    /// Creates the directory (and parents) if it does not exist.
    public static func createDirectory(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
}

extension String {
    /// Without leading and trailing spaces, tabs and line breaks.
    public func trimmingASCIIWhitespace() -> String {
        trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
