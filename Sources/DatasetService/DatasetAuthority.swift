import Crypto
import Foundation
import GRPCCore
import Logging
import ServiceKit
import Synchronization
import UntrustedInput

/// Dataset versions: atomic encrypted uploads, metadata, activation, per-device keys and verified reads of the stored
/// ciphertext. Both the RPC service and the tests use it.
struct DatasetAuthority: Sendable {
    let database: ServiceDatabase
    let blobs: any BlobStore
    let logger: Logger
    let clock: any WallClock
    let random: any RandomSource
    let masterKey: MasterKey
    let defaultChunkSize: Int
    /// Wraps a content key for one device (AuthService's `WrapKeyForDevice`).
    let wrapKey:
        @Sendable (_ machineID: String, _ context: String, _ key: [UInt8]) async throws ->
            WrappedContentKey
    /// Blob prefix and manifest per version: both immutable once uploaded, so kept after the first read.
    private let layouts = LayoutCache()
    /// DeepStressModel packages per (version, key), so a busy client does not cost an RSA key per request.
    private let packages = PackageCache()
    /// DeepStressModel prompts per version, to check results against.
    private let prompts = PromptCache()
    /// The identity of every chunk file whose bytes matched their manifest, so it is not hashed again unchanged.
    private let verified = VerifiedFiles()

    static let chunkSizes = (64 << 10)...(64 << 20)

    init(
        database: ServiceDatabase, blobs: any BlobStore, logger: Logger, clock: any WallClock, random: any RandomSource,
        masterKey: MasterKey, defaultChunkSize: Int,
        wrapKey: @escaping @Sendable (String, String, [UInt8]) async throws -> WrappedContentKey
    ) {
        self.database = database
        self.blobs = blobs
        self.logger = logger
        self.clock = clock
        self.random = random
        self.masterKey = masterKey
        self.defaultChunkSize = defaultChunkSize
        self.wrapKey = wrapKey
    }

    struct UploadHeader: Sendable {
        var version: String
        var name = ""
        var description = ""
        var chunkSize = 0
        var activate = false
        var minDurationSeconds = 0
    }

    /// Encrypts and stores a streamed upload; the version becomes visible only when everything is stored. Any
    /// failure (bad input, a broken stream, a duplicate) leaves nothing behind.
    /// `progress` hears the window first (``window(chunkSize:)``), then the plaintext bytes stored after each chunk.
    func upload(
        _ header: UploadHeader, data: some AsyncSequence<[UInt8], any Error>,
        progress: @Sendable (_ stored: Int64, _ window: Int64) async throws -> Void = { _, _ in }
    ) async throws -> DatasetRecord {
        let version = try DatasetVersionName.validate(header.version)
        let name = header.name.isEmpty ? version : header.name.trimmingCharacters(in: .whitespaces)
        guard (1...200).contains(name.count),
            name.unicodeScalars.allSatisfy({ $0.properties.generalCategory != .control })
        else {
            throw DatasetError.invalid("invalid_name", "name must be 1 to 200 characters without control characters.")
        }
        guard header.description.count <= 4000 else {
            throw DatasetError.invalid("invalid_description", "description must be at most 4000 characters.")
        }
        let chunkSize = header.chunkSize == 0 ? defaultChunkSize : header.chunkSize
        guard Self.chunkSizes.contains(chunkSize) else {
            throw DatasetError.invalid("invalid_chunk_size", "chunk_size must be 0 (default) or 64 KiB to 64 MiB.")
        }
        guard (0...86_400).contains(header.minDurationSeconds) else {
            throw DatasetError.invalid("invalid_min_duration", "min_duration_seconds must be 0 to 86400.")
        }
        guard try await record(version) == nil else { throw DatasetError.versionExists }

        let key = random.bytes(32)
        let staging = try await blobs.stage()
        let prefix = "\(version).\(random.bytes(6).hexEncoded)"
        var committed = false
        do {
            var assembler = ChunkAssembler(version: version, chunkSize: chunkSize, key: key)
            let window = Self.window(chunkSize: chunkSize)
            try await progress(0, window)
            for try await piece in data {
                for chunk in try assembler.append(piece) {
                    try await staging.write(name: Self.chunkName(chunk.index), bytes: chunk.sealed)
                    try await progress(assembler.storedPlaintext, window)
                }
            }
            for chunk in try assembler.finish() {
                try await staging.write(name: Self.chunkName(chunk.index), bytes: chunk.sealed)
            }
            let manifest = assembler.manifest()
            try await staging.write(name: "manifest.json", bytes: try manifest.encoded())
            try await staging.commit(as: prefix)
            committed = true
            let now = clock.microsecondsSinceEpoch()
            let record = DatasetRecord(
                version: version, name: name, description: header.description, active: header.activate,
                createdAt: now, activatedAt: header.activate ? now : nil, minDurationSeconds: header.minDurationSeconds,
                blobPrefix: prefix,
                contentKeySealed: try masterKey.seal(key, purpose: Self.keyPurpose(version)), manifest: manifest)
            try await database.transaction(logger: logger) { sql in
                let repository = DatasetRepository(sql)
                guard try await repository.version(version) == nil else { throw DatasetError.versionExists }
                try await repository.insert(record)
                try await AuditTrail.append(
                    sql, at: now, action: "dataset.upload", target: version, reason: "",
                    details:
                        "{\"plaintext_sha256\":\"\(manifest.plaintextSHA256)\",\"bytes\":\(manifest.plaintextSize),\"active\":\(header.activate)}"
                )
            }
            // The chunk files hold exactly the bytes sealed and hashed for the manifest here (written and synced by
            // this process): checked as they are now, so the first downloads need not hash them again.
            for entry in manifest.chunks {
                let name = Self.chunkName(entry.index)
                if let file = try? blobs.file(prefix: prefix, name: name),
                    file.identity.size == entry.ciphertextSize
                {
                    verified.insert("\(prefix)/\(name)", file.identity)
                }
            }
            logger.notice(
                "dataset uploaded",
                metadata: [
                    "version": "\(version)", "bytes": "\(manifest.plaintextSize)", "chunks": "\(manifest.chunks.count)",
                    "active": "\(header.activate)",
                ])
            return record
        } catch {
            await staging.abort()
            if committed { try? await blobs.remove(prefix: prefix) }
            throw error
        }
    }

    /// How far a sender may run ahead of what is stored: the chunk being filled, the one held back until the next
    /// byte shows it was not the last, and a megabyte of pieces in flight.
    static func window(chunkSize: Int) -> Int64 { Int64(2 * chunkSize + (1 << 20)) }

    static func chunkName(_ index: Int) -> String { String(format: "chunk-%08d", index) }

    static func keyPurpose(_ version: String) -> String { "dataset-content-key:\(version)" }

    func record(_ version: String) async throws -> DatasetRecord? {
        let version = try DatasetVersionName.validate(version)
        return try await database.withExecutor(logger: logger) { try await DatasetRepository($0).version(version) }
    }

    func get(_ version: String) async throws -> DatasetRecord {
        guard let record = try await record(version) else { throw DatasetError.unknownVersion }
        return record
    }

    func latest() async throws -> DatasetRecord {
        guard
            let record = try await database.withExecutor(
                logger: logger, { try await DatasetRepository($0).latestActive() })
        else { throw DatasetError.noActiveVersion }
        return record
    }

    static let defaultPageSize = 50
    static let maximumPageSize = 200

    /// Newest first. The cursor is opaque to clients: base64url of `<created_at>:<version>`.
    func list(cursor: String, limit: Int, includeInactive: Bool) async throws -> (
        versions: [DatasetRecord], next: String
    ) {
        guard (0...Self.maximumPageSize).contains(limit) else {
            throw DatasetError.invalid("invalid_limit", "limit must be 0 (default) to \(Self.maximumPageSize).")
        }
        var decoded: (Int64, String)?
        if !cursor.isEmpty {
            guard let bytes = Base64URL.decodeCanonical(cursor), let text = String(validating: bytes, as: UTF8.self),
                let colon = text.firstIndex(of: ":"), let time = Int64(text[..<colon]),
                let version = try? DatasetVersionName.validate(String(text[text.index(after: colon)...]))
            else { throw DatasetError.invalid("invalid_cursor", "The cursor is not one this server returned.") }
            decoded = (time, version)
        }
        let after = decoded
        let size = limit == 0 ? Self.defaultPageSize : limit
        let rows = try await database.withExecutor(logger: logger) { sql in
            try await DatasetRepository(sql).list(after: after, limit: size + 1, includeInactive: includeInactive)
        }
        let page = Array(rows.prefix(size))
        let next =
            rows.count > size
            ? page.last.map { Array("\($0.createdAt):\($0.version)".utf8).base64URLEncoded } ?? "" : ""
        return (page, next)
    }

    /// Activates or deactivates a version (again: no change).
    func setActive(_ version: String, active: Bool) async throws -> DatasetRecord {
        let version = try DatasetVersionName.validate(version)
        let now = clock.microsecondsSinceEpoch()
        let record = try await database.transaction(logger: logger) { sql in
            let repository = DatasetRepository(sql)
            guard var record = try await repository.version(version, lock: true) else {
                throw DatasetError.unknownVersion
            }
            if record.active != active {
                try await repository.setActive(version, active: active, at: now)
                record.active = active
                record.activatedAt = active ? now : nil
                try await AuditTrail.append(
                    sql, at: now, action: active ? "dataset.activate" : "dataset.deactivate", target: version,
                    reason: "")
            }
            return record
        }
        logger.notice("dataset \(active ? "activated" : "deactivated")", metadata: ["version": "\(version)"])
        return record
    }

    /// Largest plaintext made into a DeepStressModel package (the client loads it whole into memory).
    static let maximumPackagePlaintext: Int64 = 32 << 20

    /// The DeepStressModel offline package (format 4.0) of a version for one client key (docs/DEEPSTRESSMODEL.md):
    /// `packageID` names a version, or anything else (the GUI sends 1) means the latest active one.
    func offlinePackage(packageID: String, apiKey: String) async throws -> [UInt8] {
        let named = try? DatasetVersionName.validate(packageID)
        let record =
            if let named, let found = try await self.record(named) { found } else { try await latest() }
        guard record.active else { throw DatasetError.notActive }
        let cacheKey = record.version + "\n" + Array(SHA256.hash(data: Array(apiKey.utf8))).hexEncoded
        if let cached = packages.get(cacheKey) { return cached }
        let mapped = try await mapped(record)
        let name = Self.packageName(record)
        let now = clock.microsecondsSinceEpoch() / 1_000_000
        let package = try DeepStressModelCrypto.package(
            dataset: mapped.plaintext, userSignatureInput: mapped.signatureInput, apiKey: apiKey,
            metadata: .init(
                datasetID: Int(packageID) ?? 1, datasetName: name, datasetVersion: record.version, createdAt: now,
                expiresAt: now + 30 * 86_400),
            secrets: try DeepStressModelCrypto.PackageSecrets.generate(random: random),
            timestampMilliseconds: clock.microsecondsSinceEpoch() / 1_000)
        packages.put(cacheKey, package)
        logger.info(
            "offline package built", metadata: ["version": "\(record.version)", "items": "\(mapped.items)"])
        return package
    }

    /// The dataset name a DeepStressModel package gives (the client keys its results' `datasets` by it).
    static func packageName(_ record: DatasetRecord) -> String { record.name.isEmpty ? record.version : record.name }

    /// A version as a DeepStressModel client sees it (decrypted and mapped; ``DeepStressModelDataset``).
    private func mapped(_ record: DatasetRecord) async throws -> DeepStressModelDataset.Mapped {
        let (prefix, manifest) = try await layout(record.version)
        guard manifest.plaintextSize <= Self.maximumPackagePlaintext else {
            throw DatasetError(
                code: "package_too_large",
                detail: "This dataset version is larger than a DeepStressModel package may be (32 MiB).",
                status: .failedPrecondition)
        }
        let key = try masterKey.open(record.contentKeySealed, purpose: Self.keyPurpose(record.version))
        var plaintext: [UInt8] = []
        plaintext.reserveCapacity(Int(manifest.plaintextSize))
        for entry in manifest.chunks {
            plaintext += try await openedChunk(
                entry, prefix: prefix, manifest: manifest, version: record.version, key: key)
        }
        return try DeepStressModelDataset.map(
            plaintext, name: Self.packageName(record), version: record.version,
            description: record.description)
    }

    /// One prompt as a DeepStressModel result records it.
    struct PromptClaim: Sendable, Equatable {
        var id: Int64
        var input: String
        var inputChars: Int64
    }

    struct PromptCheck: Sendable, Equatable {
        var datasetName: String
        var items: Int
        var unknownIDs: [Int64]
        var mismatchedIDs: [Int64]
    }

    /// Whether a DeepStressModel result's prompts are this version's (ids, recorded text, length). The version's
    /// prompts are kept per version after the first check (``PromptCache``).
    func checkPrompts(version: String, claims: [PromptClaim]) async throws -> PromptCheck {
        let record = try await get(version)
        let prompts: PromptCache.Entry
        if let cached = self.prompts.get(record.version) {
            prompts = cached
        } else {
            let mapped = try await mapped(record)
            var byID: [Int64: [(input: String, chars: Int64)]] = [:]
            for prompt in mapped.prompts {
                byID[Int64(prompt.id), default: []].append(
                    (DeepStressModelDataset.recorded(prompt.text), Int64(prompt.text.unicodeScalars.count)))
            }
            prompts = PromptCache.Entry(
                name: Self.packageName(record), items: mapped.items, byID: byID)
            self.prompts.put(record.version, prompts)
        }
        var check = PromptCheck(datasetName: prompts.name, items: prompts.items, unknownIDs: [], mismatchedIDs: [])
        for claim in claims {
            guard let known = prompts.byID[claim.id] else {
                check.unknownIDs.append(claim.id)
                continue
            }
            if !known.contains(where: { $0.input == claim.input && $0.chars == claim.inputChars }) {
                check.mismatchedIDs.append(claim.id)
            }
        }
        return check
    }

    /// The audit log, oldest first, after `sequence`.
    func audit(after sequence: Int64, limit: Int) async throws -> [AuditEntry] {
        try await AuditTrail.read(database, logger: logger, after: sequence, limit: limit)
    }

    /// The version's content key wrapped for one device; only active versions hand out keys.
    func key(version: String, machineID: String) async throws -> WrappedContentKey {
        let record = try await get(version)
        guard record.active else { throw DatasetError.notActive }
        let key = try masterKey.open(record.contentKeySealed, purpose: Self.keyPurpose(record.version))
        return try await wrapKey(machineID, "dataset:\(record.version)", key)
    }

    /// A proof-of-dataset challenge for one benchmark session (``DatasetProof``): random spans of the version's
    /// plaintext and the answer, computed from the stored chunks (each checked, then decrypted).
    func challenge(version: String) async throws -> (nonce: [UInt8], spans: [Range<Int64>], answer: String) {
        let record = try await get(try DatasetVersionName.validate(version))
        let (prefix, manifest) = try await layout(record.version)
        let key = try masterKey.open(record.contentKeySealed, purpose: Self.keyPurpose(record.version))
        let nonce = random.bytes(DatasetProof.nonceSize)
        let spans = DatasetProof.spans(plaintextSize: manifest.plaintextSize, random: random)
        var opened: [Int: [UInt8]] = [:]
        var pieces: [[UInt8]] = []
        for span in spans {
            var piece: [UInt8] = []
            var offset = span.lowerBound
            while offset < span.upperBound {
                let index = Int(offset / manifest.chunkSize)
                guard manifest.chunks.indices.contains(index) else { throw DatasetError.corruptChunk }
                let plaintext: [UInt8]
                if let known = opened[index] {
                    plaintext = known
                } else {
                    plaintext = try await openedChunk(
                        manifest.chunks[index], prefix: prefix, manifest: manifest, version: record.version, key: key)
                    opened[index] = plaintext
                }
                let within = Int(offset - Int64(index) * manifest.chunkSize)
                let end = min(plaintext.count, within + Int(span.upperBound - offset))
                guard within < end else { throw DatasetError.corruptChunk }
                piece += plaintext[within..<end]
                offset += Int64(end - within)
            }
            pieces.append(piece)
        }
        return (nonce, spans, DatasetProof.answer(nonce: nonce, pieces: pieces))
    }

    /// Prefix and manifest of a version, from memory after the first read.
    func layout(_ version: String) async throws -> (prefix: String, manifest: Manifest) {
        if let known = layouts.entries.withLock({ $0[version] }) { return known }
        let record = try await get(version)
        let layout = (record.blobPrefix, record.manifest)
        layouts.entries.withLock { $0[version] = layout }
        return layout
    }

    /// One stored chunk, read whole once and checked against the manifest before any of it is sent.
    func chunk(version: String, index: Int) async throws -> [UInt8] {
        let (prefix, manifest) = try await layout(try DatasetVersionName.validate(version))
        guard manifest.chunks.indices.contains(index) else { throw DatasetError.unknownChunk }
        return try await verifiedChunk(prefix: prefix, entry: manifest.chunks[index], version: version)
    }

    /// One chunk's plaintext: read, checked against the manifest, decrypted with the version's content key.
    private func openedChunk(
        _ entry: ChunkEntry, prefix: String, manifest: Manifest, version: String, key: [UInt8]
    ) async throws -> [UInt8] {
        let stored = try await verifiedChunk(prefix: prefix, entry: entry, version: version)
        return try ChunkCipher.open(
            stored, key: key, version: version, index: entry.index, final: entry.index == manifest.chunks.count - 1)
    }

    /// A chunk's stored bytes, checked against the manifest: the size always, the SHA-256 only the first time a file
    /// identity (device, inode, size, modification time) is read, since a file that changed has another identity.
    private func verifiedChunk(prefix: String, entry: ChunkEntry, version: String) async throws -> [UInt8] {
        try await checkedChunk(prefix: prefix, entry: entry, version: version).bytes
    }

    /// ``verifiedChunk(prefix:entry:version:)`` with the identity of the file the checked bytes came from.
    private func checkedChunk(prefix: String, entry: ChunkEntry, version: String) async throws -> (
        bytes: [UInt8], identity: FileIdentity?
    ) {
        let name = Self.chunkName(entry.index)
        let read: (bytes: [UInt8], identity: FileIdentity?)
        do {
            read = try await blobs.read(prefix: prefix, name: name)
        } catch {
            logger.error(
                "dataset chunk unreadable",
                metadata: ["version": "\(version)", "chunk": "\(entry.index)", "error": "\(error)"])
            throw DatasetError.corruptChunk
        }
        let key = "\(prefix)/\(name)"
        let known = read.identity.map { verified.contains(key, $0) } ?? false
        guard read.bytes.count == entry.ciphertextSize,
            known || Array(SHA256.hash(data: read.bytes)).hexEncoded == entry.ciphertextSHA256
        else {
            logger.error(
                "dataset chunk corrupt: stored bytes do not match the manifest; restore it from a backup or re-upload the version",
                metadata: ["version": "\(version)", "chunk": "\(entry.index)", "blob_prefix": "\(prefix)"])
            throw DatasetError.corruptChunk
        }
        if !known, let identity = read.identity { verified.insert(key, identity) }
        return read
    }

    /// The concatenated ciphertext bytes `range`, chunk by chunk (each checked before use), for `body`.
    func ciphertext(version: String, range: Range<Int64>, _ body: ([UInt8]) async throws -> Void) async throws {
        let (prefix, manifest) = try await layout(try DatasetVersionName.validate(version))
        guard range.lowerBound >= 0, range.upperBound <= manifest.ciphertextSize, !range.isEmpty else {
            throw DatasetError.rangeNotSatisfiable
        }
        for (entry, within) in manifest.pieces(of: range) {
            let bytes = try await verifiedChunk(prefix: prefix, entry: entry, version: version)
            try await body(Array(bytes[Int(within.lowerBound)..<Int(within.upperBound)]))
        }
    }

    /// Removes staging leftovers and blob sets no version refers to (crashed uploads), if older than an hour so an
    /// upload committing right now on another replica is never touched.
    func sweep() async throws {
        guard let store = blobs as? FileSystemBlobStore else { return }
        let known = try await database.withExecutor(logger: logger) { try await DatasetRepository($0).blobPrefixes() }
        let removed = try await store.sweep(keeping: known, olderThan: .seconds(3600))
        if removed > 0 {
            logger.notice("dataset sweep removed unreferenced blob sets", metadata: ["count": "\(removed)"])
        }
    }
}

/// Shared by copies of a ``DatasetAuthority`` (every request handler holds one).
final class LayoutCache: Sendable {
    let entries = Mutex<[String: (prefix: String, manifest: Manifest)]>([:])
}

/// Built DeepStressModel packages by (version, SHA-256 of the key), the oldest dropped beyond ``capacity``.
final class PackageCache: Sendable {
    static let capacity = 64
    private let state = Mutex<(entries: [String: [UInt8]], order: [String])>(([:], []))

    func get(_ key: String) -> [UInt8]? { state.withLock { $0.entries[key] } }

    func put(_ key: String, _ package: [UInt8]) {
        state.withLock { state in
            if state.entries.updateValue(package, forKey: key) == nil { state.order.append(key) }
            while state.order.count > Self.capacity { state.entries[state.order.removeFirst()] = nil }
        }
    }
}

/// The DeepStressModel prompts of the most recently checked versions (a version's content never changes).
final class PromptCache: Sendable {
    struct Entry: Sendable {
        var name: String
        var items: Int
        var byID: [Int64: [(input: String, chars: Int64)]]
    }

    static let capacity = 8
    private let state = Mutex<(entries: [String: Entry], order: [String])>(([:], []))

    func get(_ version: String) -> Entry? { state.withLock { $0.entries[version] } }

    func put(_ version: String, _ entry: Entry) {
        state.withLock { state in
            if state.entries.updateValue(entry, forKey: version) == nil { state.order.append(version) }
            while state.order.count > Self.capacity { state.entries[state.order.removeFirst()] = nil }
        }
    }
}

/// A content key wrapped for one device (AuthService does the wrapping: docs/DATASET-FORMAT.md, "Key wrap").
struct WrappedContentKey: Sendable, Equatable {
    var nonce: [UInt8]
    var ciphertext: [UInt8]
    var tag: [UInt8]
    var salt: [UInt8]
    var context: String
}

/// Chunk files (by `prefix/name`) whose bytes matched their manifest, with the identity they had then.
///
/// A file rewritten within the same tick of the file system's clock as its previous write keeps its modification
/// time (ticks are milliseconds on Linux, a second on some file systems). So, as git does with its index, an identity
/// recorded less than ``settled`` after the file's modification time proves nothing yet: such a file is hashed on its
/// next read again, until a check recorded later than that settles it.
final class VerifiedFiles: Sendable {
    static let capacity = 100_000
    static let settled = 1.0
    private let identities = Mutex<[String: (identity: FileIdentity, recordedAt: Double)]>([:])

    func contains(_ key: String, _ identity: FileIdentity) -> Bool {
        identities.withLock { identities in
            guard let known = identities[key], known.identity == identity else { return false }
            let modified = Double(identity.modifiedSeconds) + Double(identity.modifiedNanoseconds) / 1e9
            return known.recordedAt - modified >= Self.settled
        }
    }

    func insert(_ key: String, _ identity: FileIdentity) {
        let now = Date().timeIntervalSince1970
        identities.withLock { identities in
            if identities.count >= Self.capacity { identities = [:] }
            identities[key] = (identity, now)
        }
    }
}

extension DatasetAuthority: LocalChunkSource {
    /// The chunk's file once its bytes, in the file's current state, matched the manifest (read and hashed here
    /// if that state was not checked before); nil when the file changes while it is being checked. Throws as
    /// ``chunk(version:index:)`` does.
    func verifiedChunkFile(version: String, index: Int) async throws -> ChunkFile? {
        let (prefix, manifest) = try await layout(try DatasetVersionName.validate(version))
        guard manifest.chunks.indices.contains(index) else { throw DatasetError.unknownChunk }
        let name = Self.chunkName(index)
        let key = "\(prefix)/\(name)"
        guard let file = try blobs.file(prefix: prefix, name: name) else { return nil }
        if verified.contains(key, file.identity) { return file }
        // Checked now: the file is sent if it is still the one whose bytes were just hashed.
        let checked = try await checkedChunk(prefix: prefix, entry: manifest.chunks[index], version: version)
        return checked.identity == file.identity ? file : nil
    }

    func checkedChunkFile(version: String, index: Int) -> CheckedChunkFile? {
        // Only a version already looked up here (its layout cached under its checked name) is known.
        guard let (prefix, manifest) = layouts.entries.withLock({ $0[version] }),
            manifest.chunks.indices.contains(index)
        else { return nil }
        let entry = manifest.chunks[index]
        let name = Self.chunkName(index)
        guard let file = try? blobs.file(prefix: prefix, name: name), file.identity.size == entry.ciphertextSize,
            verified.contains("\(prefix)/\(name)", file.identity)
        else { return nil }
        return CheckedChunkFile(
            file: file, ciphertextSize: entry.ciphertextSize, ciphertextSHA256: entry.ciphertextSHA256)
    }
}
