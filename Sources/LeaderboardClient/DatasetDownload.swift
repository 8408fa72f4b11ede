import Crypto
public import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A dataset version's manifest as the server publishes it (docs/DATASET-FORMAT.md).
public struct DatasetManifest: Sendable, Equatable {
    public struct Chunk: Sendable, Equatable {
        public let index: Int
        public let plaintextSize: Int64
        public let ciphertextSize: Int64
        public let ciphertextOffset: Int64
        public let plaintextSHA256: String
        public let ciphertextSHA256: String
    }

    public let version: String
    public let chunkSize: Int64
    public let plaintextSize: Int64
    public let ciphertextSize: Int64
    public let plaintextSHA256: String
    public let chunks: [Chunk]

    public init(json: [String: Any]) throws {
        func string(_ object: [String: Any], _ key: String) throws -> String {
            guard let value = object[key] as? String else { throw Self.bad(key) }
            return value
        }
        func integer(_ object: [String: Any], _ key: String) throws -> Int64 {
            guard let value = (object[key] as? NSNumber).flatMap({ Int64(exactly: $0.doubleValue) }) else {
                throw Self.bad(key)
            }
            return value
        }
        guard (json["format_version"] as? NSNumber)?.intValue == 1, json["cipher"] as? String == "AES-256-GCM" else {
            throw LeaderboardClientError.local(
                "unsupported_manifest", "This client reads manifest format 1 with AES-256-GCM.")
        }
        version = try string(json, "version")
        chunkSize = try integer(json, "chunk_size")
        plaintextSize = try integer(json, "plaintext_size")
        ciphertextSize = try integer(json, "ciphertext_size")
        plaintextSHA256 = try string(json, "plaintext_sha256")
        guard let entries = json["chunks"] as? [[String: Any]] else { throw Self.bad("chunks") }
        chunks = try entries.map { entry in
            Chunk(
                index: Int(try integer(entry, "index")), plaintextSize: try integer(entry, "plaintext_size"),
                ciphertextSize: try integer(entry, "ciphertext_size"),
                ciphertextOffset: try integer(entry, "ciphertext_offset"),
                plaintextSHA256: try string(entry, "plaintext_sha256"),
                ciphertextSHA256: try string(entry, "ciphertext_sha256"))
        }
        guard chunks.enumerated().allSatisfy({ $0.offset == $0.element.index }) else { throw Self.bad("chunks") }
    }

    static func bad(_ field: String) -> LeaderboardClientError {
        .local("bad_manifest", "The manifest's \(field) is missing or malformed.")
    }
}

/// Chunk decryption exactly as the server encrypts (docs/DATASET-FORMAT.md).
public enum DatasetCrypto {
    public static func nonce(index: Int) -> [UInt8] {
        [0, 0, 0, 0] + withUnsafeBytes(of: UInt64(index).bigEndian) { Array($0) }
    }

    public static func associatedData(version: String, index: Int, final: Bool) -> [UInt8] {
        Array("leaderboard.dataset.v1\n\(version)\n\(index)\n\(final ? 1 : 0)".utf8)
    }

    public static func decrypt(chunk: [UInt8], key: [UInt8], version: String, index: Int, final: Bool) throws -> [UInt8]
    {
        Array(try open(chunk: chunk, key: key, version: version, index: index, final: final))
    }

    /// ``decrypt(chunk:key:version:index:final:)`` for any bytes, answering `Data` as swift-crypto does: no copy of
    /// the chunk into an array before, nor of the plaintext after (the downloader's path).
    public static func open<Chunk: DataProtocol>(chunk: Chunk, key: [UInt8], version: String, index: Int, final: Bool)
        throws -> Data
    {
        guard chunk.count >= 16 else {
            throw LeaderboardClientError.local("corrupt_chunk", "Chunk \(index) is too short.")
        }
        let box = try AES.GCM.SealedBox(
            nonce: try AES.GCM.Nonce(data: nonce(index: index)), ciphertext: chunk.dropLast(16), tag: chunk.suffix(16))
        return try AES.GCM.open(
            box, using: SymmetricKey(data: key),
            authenticating: associatedData(version: version, index: index, final: final))
    }

    /// The content key from the server's key response, unwrapped with the device secret.
    public static func unwrapKey(_ json: [String: Any], secret: String) throws -> [UInt8] {
        guard let context = json["context"] as? String,
            let salt = (json["hkdf_salt"] as? String).flatMap({ Data(base64Encoded: $0) }),
            let nonce = (json["nonce"] as? String).flatMap({ Data(base64Encoded: $0) }),
            let ciphertext = (json["ciphertext"] as? String).flatMap({ Data(base64Encoded: $0) }),
            let tag = (json["tag"] as? String).flatMap({ Data(base64Encoded: $0) })
        else { throw LeaderboardClientError.local("bad_key", "The key response is malformed.") }
        let wrapping = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: Array(secret.utf8)), salt: salt,
            info: Array("leaderboard.key-wrap.v1\n\(context)".utf8), outputByteCount: 32)
        let box = try AES.GCM.SealedBox(nonce: try AES.GCM.Nonce(data: nonce), ciphertext: ciphertext, tag: tag)
        return Array(try AES.GCM.open(box, using: wrapping, authenticating: Array(context.utf8)))
    }
}

/// Downloads, checks and decrypts a dataset version into a file: chunks in parallel, each checked against the
/// manifest (ciphertext hash, GCM tag, plaintext hash), resumable after an interruption, and the whole file checked
/// against the published SHA-256 before it gets its final name.
public struct DatasetDownloader: Sendable {
    public struct Progress: Sendable {
        public let chunksDone: Int
        public let chunksTotal: Int
        public let bytesDone: Int64
        public let bytesTotal: Int64
    }

    public struct Result: Sendable {
        public let version: String
        public let plaintextSHA256: String
        public let bytes: Int64
        /// Chunks already present from an earlier, interrupted run.
        public let resumedChunks: Int
    }

    public let http: LeaderboardHTTP
    public let credentials: DeviceCredentials
    public var parallelism = 4
    public var attempts = 3

    public init(http: LeaderboardHTTP, credentials: DeviceCredentials) {
        self.http = http
        self.credentials = credentials
    }

    /// `version` nil: the latest active one. Partial state lives next to `output` (`.part`, `.part.json`).
    public func download(
        version: String?, to output: String, progress: @escaping @Sendable (Progress) -> Void = { _ in }
    ) async throws -> Result {
        let metadata = try await http.json("GET", "/api/v1/datasets/\(version ?? "latest")")
        guard let manifestJSON = metadata["manifest"] as? [String: Any] else { throw DatasetManifest.bad("manifest") }
        let manifest = try DatasetManifest(json: manifestJSON)
        let keyJSON = try await http.json("GET", "/api/v1/datasets/\(manifest.version)/key", signedBy: credentials)
        let key = try DatasetCrypto.unwrapKey(keyJSON, secret: credentials.secret)

        let part = output + ".part"
        let statePath = output + ".part.json"
        let state = ResumeState.load(statePath, part: part, manifest: manifest)
        let file = try PartFile(path: part, size: manifest.plaintextSize, keep: !state.done.isEmpty)
        defer { file.close() }
        let resumed = state.done.count
        let done = Locked(state)
        let remaining = manifest.chunks.filter { !state.done.contains($0.index) }
        let total = manifest.chunks.count

        try await withThrowingTaskGroup(of: Void.self) { group in
            var pending = remaining[...]
            func startNext() {
                guard let chunk = pending.popFirst() else { return }
                group.addTask {
                    let plaintext = try await fetch(chunk, manifest: manifest, key: key)
                    try file.write(plaintext, at: Int64(chunk.index) * manifest.chunkSize)
                    let snapshot = try done.value.withLock { state -> Progress in
                        state.done.insert(chunk.index)
                        try state.save(statePath)
                        let bytes = state.done.reduce(Int64(0)) { $0 + manifest.chunks[$1].plaintextSize }
                        return Progress(
                            chunksDone: state.done.count, chunksTotal: total, bytesDone: bytes,
                            bytesTotal: manifest.plaintextSize)
                    }
                    progress(snapshot)
                }
            }
            for _ in 0..<max(1, parallelism) { startNext() }
            while try await group.next() != nil { startNext() }
        }

        let digest = try file.sha256()
        guard digest == manifest.plaintextSHA256 else {
            try? FileManager.default.removeItem(atPath: statePath)
            throw LeaderboardClientError.local(
                "checksum_mismatch",
                "The assembled file's SHA-256 is \(digest), not the published \(manifest.plaintextSHA256).")
        }
        file.close()
        if FileManager.default.fileExists(atPath: output) { try FileManager.default.removeItem(atPath: output) }
        try FileManager.default.moveItem(atPath: part, toPath: output)
        try? FileManager.default.removeItem(atPath: statePath)
        return Result(
            version: manifest.version, plaintextSHA256: digest, bytes: manifest.plaintextSize, resumedChunks: resumed)
    }

    /// One chunk: fetched (retried on network errors and 5xx), hash-checked, decrypted, hash-checked again.
    func fetch(_ chunk: DatasetManifest.Chunk, manifest: DatasetManifest, key: [UInt8]) async throws -> Data {
        var lastError: any Error = LeaderboardClientError.local("no_attempt", "")
        for attempt in 0..<max(1, attempts) {
            if attempt > 0 { try await Task.sleep(for: .milliseconds(200 << attempt)) }
            do {
                let (data, _) = try await http.send("GET", "/api/v1/datasets/\(manifest.version)/chunks/\(chunk.index)")
                guard data.count == chunk.ciphertextSize, hex(SHA256.hash(data: data)) == chunk.ciphertextSHA256
                else {
                    throw LeaderboardClientError.local("corrupt_chunk", "Chunk \(chunk.index) does not match its hash.")
                }
                let plaintext = try DatasetCrypto.open(
                    chunk: data, key: key, version: manifest.version, index: chunk.index,
                    final: chunk.index == manifest.chunks.count - 1)
                guard hex(SHA256.hash(data: plaintext)) == chunk.plaintextSHA256 else {
                    throw LeaderboardClientError.local(
                        "corrupt_chunk", "Chunk \(chunk.index) decrypted to unexpected bytes.")
                }
                return plaintext
            } catch let error as LeaderboardClientError where error.status != 0 && error.status < 500 {
                throw error  // the server refused; retrying will not help
            } catch {
                lastError = error
            }
        }
        throw lastError
    }
}

func hex(_ digest: some Sequence<UInt8>) -> String { digest.map { String(format: "%02x", $0) }.joined() }

/// Which chunks of a version are already in the `.part` file.
struct ResumeState: Codable, Sendable {
    var version: String
    var plaintextSHA256: String
    var chunkSize: Int64
    var done: Set<Int>

    /// The saved state if it describes this manifest and its part file is still there; else a fresh one.
    static func load(_ path: String, part: String, manifest: DatasetManifest) -> ResumeState {
        let fresh = ResumeState(
            version: manifest.version, plaintextSHA256: manifest.plaintextSHA256, chunkSize: manifest.chunkSize,
            done: [])
        guard let data = FileManager.default.contents(atPath: path),
            let state = try? JSONDecoder().decode(ResumeState.self, from: data),
            state.version == fresh.version, state.plaintextSHA256 == fresh.plaintextSHA256,
            state.chunkSize == fresh.chunkSize,
            FileManager.default.fileExists(atPath: part)
        else { return fresh }
        return state
    }

    func save(_ path: String) throws {
        try JSONEncoder().encode(self).write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}

/// The output being assembled: written at offsets from several tasks (pwrite), then hashed as a whole.
final class PartFile: Sendable {
    private let descriptor: Mutex<Int32>

    init(path: String, size: Int64, keep: Bool) throws {
        let flags = O_RDWR | O_CREAT | (keep ? 0 : O_TRUNC)
        let fd = open(path, flags, 0o644)
        guard fd >= 0 else { throw LeaderboardClientError.local("cannot_write", "Cannot open \(path) for writing.") }
        guard ftruncate(fd, off_t(size)) == 0 else {
            Glibc.close(fd)
            throw LeaderboardClientError.local("cannot_write", "Cannot size \(path) to \(size) bytes.")
        }
        descriptor = Mutex(fd)
    }

    func write(_ bytes: Data, at offset: Int64) throws {
        let fd = descriptor.withLock { $0 }
        var written = 0
        while written < bytes.count {
            let result = bytes.withUnsafeBytes {
                pwrite(fd, $0.baseAddress! + written, bytes.count - written, off_t(offset) + off_t(written))
            }
            guard result > 0 else {
                throw LeaderboardClientError.local("cannot_write", "Writing the output failed (errno \(errno)).")
            }
            written += result
        }
    }

    func sha256() throws -> String {
        let fd = descriptor.withLock { $0 }
        var hash = SHA256()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var offset: off_t = 0
        while true {
            let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, $0.count, offset) }
            guard count >= 0 else {
                throw LeaderboardClientError.local("cannot_read", "Reading the output back failed.")
            }
            if count == 0 { break }
            hash.update(data: buffer[0..<count])
            offset += off_t(count)
        }
        return hex(hash.finalize())
    }

    func close() {
        descriptor.withLock { fd in
            if fd >= 0 { Glibc.close(fd) }
            fd = -1
        }
    }
}

/// A mutex-guarded value that closures can share.
final class Locked<Value: Sendable>: Sendable {
    let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
}
