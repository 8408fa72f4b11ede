import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
// `stat`'s fields: which module a build sees the C struct through depends on which imported the header first
// (Glibc, CoreFoundation or CDispatch); with member import visibility on, each must be imported here.
#if canImport(CoreFoundation)
    import CoreFoundation
#endif
#if canImport(CDispatch)
    import CDispatch
#endif

/// A stored dataset chunk file and its identity when it was looked at. What ``LocalChunkSource`` hands out has been
/// checked against the manifest in that state, for a gateway in the same process to send straight from the file
/// (docs/DATASET-FORMAT.md "Serving chunks").
public struct ChunkFile: Sendable, Equatable {
    /// The file's path.
    public let path: String
    /// Which file, in which state: a file replaced or written since has another identity.
    public let identity: FileIdentity

    public init(path: String, identity: FileIdentity) {
        self.path = path
        self.identity = identity
    }
}

/// What tells one state of a file from another without reading it: device, inode, size and modification time.
/// A chunk checked once is not hashed again while its identity is unchanged.
public struct FileIdentity: Sendable, Hashable {
    public let device: UInt64
    public let inode: UInt64
    public let size: Int64
    public let modifiedSeconds: Int64
    public let modifiedNanoseconds: Int64

    public init(device: UInt64, inode: UInt64, size: Int64, modifiedSeconds: Int64, modifiedNanoseconds: Int64) {
        self.device = device
        self.inode = inode
        self.size = size
        self.modifiedSeconds = modifiedSeconds
        self.modifiedNanoseconds = modifiedNanoseconds
    }
}

extension FileIdentity {
    /// The identity of an open file (nil if `fstat` fails).
    public static func of(descriptor: CInt) -> FileIdentity? {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { return nil }
        return FileIdentity(info)
    }

    /// The identity of the file at `path` now (nil if `stat` fails).
    public static func of(path: String) -> FileIdentity? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return FileIdentity(info)
    }

    private init(_ info: stat) {
        #if canImport(Darwin)
            let modified = info.st_mtimespec
        #else
            let modified = info.st_mtim
        #endif
        self.init(
            device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size),
            modifiedSeconds: Int64(modified.tv_sec), modifiedNanoseconds: Int64(modified.tv_nsec))
    }
}

/// Gives out verified chunk files: DatasetService, when it runs in this process.
public protocol LocalChunkSource: Sendable {
    /// The file of chunk `index` of `version`, checked against the manifest (hashed once per file identity); nil
    /// when the chunk is not a plain local file. Throws what reading the chunk over gRPC would.
    func verifiedChunkFile(version: String, index: Int) async throws -> ChunkFile?

    /// Chunk `index` of `version` without waiting or reading it: its file as it is now, if that state was already
    /// checked against the manifest, with what the manifest says of it; nil for everything else (a version or chunk
    /// not looked at yet, a file not checked in its current state, a missing file). A `stat`, no more: what the
    /// gateway's event loops may ask before sending the file themselves (``CheckedChunkFile``).
    func checkedChunkFile(version: String, index: Int) -> CheckedChunkFile?
}

/// A chunk file already checked in its current state (``LocalChunkSource/checkedChunkFile(version:index:)``), with
/// the manifest's size and SHA-256 of its ciphertext (the size a response announces, the hash its `ETag` carries).
public struct CheckedChunkFile: Sendable, Equatable {
    public let file: ChunkFile
    public let ciphertextSize: Int64
    public let ciphertextSHA256: String

    public init(file: ChunkFile, ciphertextSize: Int64, ciphertextSHA256: String) {
        self.file = file
        self.ciphertextSize = ciphertextSize
        self.ciphertextSHA256 = ciphertextSHA256
    }
}

/// The meeting point of a DatasetService and a gateway that share a process: the service registers itself, the
/// gateway asks it for chunk files. Services apart from the gateway never meet here; the gateway then streams
/// chunks over gRPC as before.
public final class LocalChunkFiles: Sendable {
    private let source = Mutex<(any LocalChunkSource)?>(nil)

    public init() {}

    public func register(_ source: any LocalChunkSource) {
        self.source.withLock { $0 = source }
    }

    /// The registered source, if any.
    public var current: (any LocalChunkSource)? { source.withLock { $0 } }
}
