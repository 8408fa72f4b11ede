import Foundation

/// Small file-system helpers so configuration code does not import Foundation everywhere.
public enum FileSystem {
    public static func isReadableFile(_ path: String) -> Bool {
        FileManager.default.isReadableFile(atPath: path)
    }

    /// Creates the directory (and parents) if it does not exist.
    public static func createDirectory(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
}
