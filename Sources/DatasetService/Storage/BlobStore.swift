import Foundation
import NIOPosix
import ServiceKit

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Reads from `descriptor` until `buffer` is full or the file ends; returns the bytes read.
private func readFully(_ descriptor: CInt, into buffer: UnsafeMutableRawBufferPointer) -> Int {
    guard let base = buffer.baseAddress else { return 0 }
    var count = 0
    while count < buffer.count {
        let got = read(descriptor, base + count, buffer.count - count)
        if got < 0, errno == EINTR { continue }
        guard got > 0 else { break }
        count += got
    }
    return count
}

/// Where dataset ciphertext lives. A set of blobs is written into a staging area and becomes visible under its
/// prefix only by ``BlobStaging/commit(as:)``, so an interrupted upload leaves nothing readable.
///
/// Names and prefixes are checked by ``BlobName`` before they reach an implementation: never built from unchecked
/// input.
protocol BlobStore: Sendable {
    func stage() async throws -> any BlobStaging
    /// Reads a whole blob through one open file, with the identity of the file the bytes came from.
    func read(prefix: String, name: String) async throws -> (bytes: [UInt8], identity: FileIdentity?)
    /// The file a blob is stored in, as it is now; nil when the store keeps no plain files.
    /// A `stat`: cheap enough to ask on an event loop.
    func file(prefix: String, name: String) throws -> ChunkFile?
    func remove(prefix: String) async throws
    /// Every committed prefix (for sweeping ones no database row refers to).
    func prefixes() async throws -> [String]
}

protocol BlobStaging: Sendable {
    func write(name: String, bytes: [UInt8]) async throws
    func commit(as prefix: String) async throws
    /// Drops everything written; safe to call after a failed commit.
    func abort() async
}

/// The only names the blob stores accept: 1–100 characters of `a–z A–Z 0–9 . _ -`, not starting with a dot.
enum BlobName {
    static func check(_ name: String) throws -> String {
        let utf8 = Array(name.utf8)
        guard (1...100).contains(utf8.count), utf8.first != UInt8(ascii: "."),
            utf8.allSatisfy({
                (0x30...0x39).contains($0) || (0x41...0x5a).contains($0) || (0x61...0x7a).contains($0)
                    || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-")
            })
        else { throw StorageError("refusing blob name '\(name)'") }
        return name
    }
}

/// Blobs as files: `<root>/<prefix>/<name>`, staged in `<root>/.staging/<random>/` and committed by one rename.
/// File work runs on NIO's blocking-IO thread pool, never on the concurrency pool.
struct FileSystemBlobStore: BlobStore {
    let root: String

    init(root: String) throws {
        self.root = root
        try FileSystem.createDirectory(root + "/.staging")
    }

    func stage() async throws -> any BlobStaging {
        let directory = "\(root)/.staging/\(UUID().uuidString.lowercased())"
        try await Self.blocking {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        }
        return FileSystemStaging(root: root, directory: directory)
    }

    func read(prefix: String, name: String) async throws -> (bytes: [UInt8], identity: FileIdentity?) {
        let path = "\(root)/\(try BlobName.check(prefix))/\(try BlobName.check(name))"
        return try await Self.blocking {
            let descriptor = open(path, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { throw StorageError("blob \(prefix)/\(name) is missing") }
            defer { close(descriptor) }
            guard let identity = FileIdentity.of(descriptor: descriptor), identity.size >= 0 else {
                throw StorageError("cannot stat blob \(prefix)/\(name)")
            }
            // Straight into the array: no intermediate Data.
            let bytes = try [UInt8](unsafeUninitializedCapacity: Int(identity.size)) { buffer, count in
                count = readFully(descriptor, into: UnsafeMutableRawBufferPointer(buffer))
                guard count == buffer.count else { throw StorageError("blob \(prefix)/\(name) ended early") }
            }
            return (bytes, identity)
        }
    }

    /// A `stat`: cheap enough to ask on an event loop.
    func file(prefix: String, name: String) throws -> ChunkFile? {
        let path = "\(root)/\(try BlobName.check(prefix))/\(try BlobName.check(name))"
        guard let identity = FileIdentity.of(path: path) else {
            throw StorageError("blob \(prefix)/\(name) is missing")
        }
        return ChunkFile(path: path, identity: identity)
    }

    func remove(prefix: String) async throws {
        let path = "\(root)/\(try BlobName.check(prefix))"
        try await Self.blocking {
            if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
        }
    }

    func prefixes() async throws -> [String] {
        try await Self.blocking {
            try FileManager.default.contentsOfDirectory(atPath: root).filter { !$0.hasPrefix(".") }.sorted()
        }
    }

    /// Removes staging directories and committed prefixes not in `known`, when last modified before `age` ago.
    /// Returns how many it removed.
    func sweep(keeping known: Set<String>, olderThan age: Duration) async throws -> Int {
        let root = root
        let cutoff = Date().addingTimeInterval(-Double(age.components.seconds))
        return try await Self.blocking {
            let manager = FileManager.default
            var candidates = try manager.contentsOfDirectory(atPath: root + "/.staging").map {
                "\(root)/.staging/\($0)"
            }
            candidates += try manager.contentsOfDirectory(atPath: root)
                .filter { !$0.hasPrefix(".") && !known.contains($0) }.map { "\(root)/\($0)" }
            var removed = 0
            for path in candidates {
                let modified = (try? manager.attributesOfItem(atPath: path)[.modificationDate] as? Date) ?? Date()
                if modified < cutoff {
                    try manager.removeItem(atPath: path)
                    removed += 1
                }
            }
            return removed
        }
    }

    static func blocking<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await NIOThreadPool.singleton.runIfActive(work)
    }
}

struct FileSystemStaging: BlobStaging {
    let root: String
    let directory: String

    func write(name: String, bytes: [UInt8]) async throws {
        let path = "\(directory)/\(try BlobName.check(name))"
        try await FileSystemBlobStore.blocking {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw StorageError("cannot create \(path)")
            }
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            defer { try? handle.close() }
            try handle.write(contentsOf: bytes)
            try handle.synchronize()
        }
    }

    func commit(as prefix: String) async throws {
        let target = "\(root)/\(try BlobName.check(prefix))"
        try await FileSystemBlobStore.blocking { try FileManager.default.moveItem(atPath: directory, toPath: target) }
    }

    func abort() async {
        _ = try? await FileSystemBlobStore.blocking {
            if FileManager.default.fileExists(atPath: directory) {
                try FileManager.default.removeItem(atPath: directory)
            }
        }
    }
}
