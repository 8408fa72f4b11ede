import Crypto
import Foundation
import LeaderboardAPI
import Logging
import ServiceKit
import SwiftProtobuf
import TestSupport
import Testing

@testable import DatasetService

/// Bytes as an async stream of pieces, optionally failing after `failAfter` pieces (a dropped upload).
struct Pieces: AsyncSequence, Sendable {
    let data: [UInt8]
    var pieceSize = 1000
    var failAfter: Int?

    struct Dropped: Error {}

    struct AsyncIterator: AsyncIteratorProtocol {
        let pieces: Pieces
        var offset = 0
        var sent = 0

        mutating func next() async throws -> [UInt8]? {
            if let limit = pieces.failAfter, sent == limit { throw Dropped() }
            guard offset < pieces.data.count else { return nil }
            let end = Swift.min(pieces.data.count, offset + pieces.pieceSize)
            defer {
                offset = end
                sent += 1
            }
            return Array(pieces.data[offset..<end])
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(pieces: self) }
}

struct DatasetHarness {
    let authority: DatasetAuthority
    let database: ServiceDatabase
    let store: FileSystemBlobStore
    let root: String
    let clock: ManualWallClock

    /// The wrap seam is AuthService's RPC; here it hands the key back in the clear so tests can decrypt with it.
    static func with(_ backend: StorageBackend, _ body: (DatasetHarness) async throws -> Void) async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("ds-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try await withTestDatabase(backend) { database in
            _ = try await MigrationRunner.apply(DatasetMigrations.all, to: database, logger: TestEnvironment.logger)
            let store = try FileSystemBlobStore(root: root)
            let clock = ManualWallClock()
            let authority = DatasetAuthority(
                database: database, blobs: store, logger: TestEnvironment.logger, clock: clock,
                random: SystemRandomSource(), masterKey: MasterKey(bytes: Array(repeating: 9, count: 32)),
                defaultChunkSize: 64 << 10,
                wrapKey: { machineID, context, key in
                    WrappedContentKey(nonce: [], ciphertext: key, tag: [], salt: [], context: context + "|" + machineID)
                })
            try await body(
                DatasetHarness(authority: authority, database: database, store: store, root: root, clock: clock))
        }
    }

    static func data(_ count: Int, seed: UInt8 = 1) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) ^ seed }
    }

    func upload(_ version: String, _ data: [UInt8], activate: Bool = true, chunkSize: Int = 64 << 10) async throws
        -> DatasetRecord
    {
        try await authority.upload(
            .init(version: version, chunkSize: chunkSize, activate: activate), data: Pieces(data: data, pieceSize: 7000)
        )
    }

    /// Reads every chunk through the authority and decrypts with the key it hands out.
    func decrypt(_ version: String) async throws -> [UInt8] {
        let record = try await authority.get(version)
        let key = try await authority.key(version: version, machineID: "m").ciphertext
        var plaintext: [UInt8] = []
        for entry in record.manifest.chunks {
            let sealed = try await authority.chunk(version: version, index: entry.index)
            plaintext += try ChunkCipher.open(
                sealed, key: key, version: version, index: entry.index,
                final: entry.index == record.manifest.chunks.count - 1)
        }
        return plaintext
    }

    var stagingIsEmpty: Bool {
        ((try? FileManager.default.contentsOfDirectory(atPath: root + "/.staging")) ?? []).isEmpty
    }
}

@Suite("DatasetAuthority on both storage backends", .timeLimit(.minutes(2)))
struct DatasetAuthorityTests {
    @Test(
        "upload → manifest → key → chunks decrypt to the same bytes; the content key is sealed at rest",
        arguments: StorageBackend.available)
    func roundTrip(_ backend: StorageBackend) async throws {
        try await DatasetHarness.with(backend) { h in
            let data = DatasetHarness.data(300_000)
            let record = try await h.upload("v1", data)
            #expect(record.manifest.chunks.count == 5)
            #expect(record.manifest.plaintextSHA256 == Array(SHA256.hash(data: data)).hexEncoded)
            #expect(try await h.decrypt("v1") == data)
            #expect(try await h.authority.latest().version == "v1")
            let key = try await h.authority.key(version: "v1", machineID: "m").ciphertext
            #expect(!record.contentKeySealed.hexEncoded.contains(key.hexEncoded))
            #expect(try await h.authority.key(version: "v1", machineID: "abc").context == "dataset:v1|abc")

            var collected: [UInt8] = []
            try await h.authority.ciphertext(version: "v1", range: 65_000..<200_000) { collected += $0 }
            var whole: [UInt8] = []
            for entry in record.manifest.chunks {
                whole += try await h.authority.chunk(version: "v1", index: entry.index)
            }
            #expect(collected == Array(whole[65_000..<200_000]))
            #expect(
                await serviceErrorCode {
                    try await h.authority.ciphertext(version: "v1", range: 0..<(record.manifest.ciphertextSize + 1)) {
                        _ in
                    }
                } == "range_not_satisfiable")
            #expect(
                await serviceErrorCode { _ = try await h.authority.chunk(version: "v1", index: 5) } == "unknown_chunk")
            #expect(
                await serviceErrorCode { _ = try await h.authority.chunk(version: "nope", index: 0) }
                    == "unknown_dataset_version")
        }
    }

    @Test(
        "a dataset challenge's spans cover the whole plaintext and its answer is the HMAC of exactly those bytes",
        arguments: StorageBackend.available)
    func challenge(_ backend: StorageBackend) async throws {
        try await DatasetHarness.with(backend) { h in
            // 300,000 bytes in 64 KiB chunks: spans fall in every eighth of it, some across a chunk boundary.
            let data = DatasetHarness.data(300_000)
            _ = try await h.upload("v1", data)
            var nonces = Set<[UInt8]>()
            for _ in 0..<20 {
                let made = try await h.authority.challenge(version: "v1")
                #expect(made.spans.count == DatasetProof.spanCount && made.nonce.count == 32)
                for (index, span) in made.spans.enumerated() {
                    let slice = Int64(data.count) / Int64(DatasetProof.spanCount)
                    #expect(span.count == 64 && span.lowerBound >= Int64(index) * slice)
                    #expect(span.upperBound <= Int64(index + 1) * slice)
                }
                var mac = HMAC<SHA256>(key: SymmetricKey(data: made.nonce))
                for span in made.spans { mac.update(data: data[Int(span.lowerBound)..<Int(span.upperBound)]) }
                #expect(made.answer == Array(mac.finalize()).hexEncoded)
                nonces.insert(made.nonce)
            }
            #expect(nonces.count == 20)
            // A dataset smaller than the spans together is challenged whole.
            let tiny = Array("one prompt".utf8)
            _ = try await h.upload("tiny", tiny)
            let whole = try await h.authority.challenge(version: "tiny")
            #expect(whole.spans == [0..<Int64(tiny.count)])
            #expect(
                await serviceErrorCode { _ = try await h.authority.challenge(version: "nope") }
                    == "unknown_dataset_version")
        }
    }

    @Test("an upload that breaks off, or repeats a version, leaves nothing behind", arguments: StorageBackend.available)
    func atomicity(_ backend: StorageBackend) async throws {
        try await DatasetHarness.with(backend) { h in
            let data = DatasetHarness.data(200_000)
            await #expect(throws: Pieces.Dropped.self) {
                _ = try await h.authority.upload(
                    .init(version: "v1", activate: true), data: Pieces(data: data, pieceSize: 10_000, failAfter: 12))
            }
            #expect(await serviceErrorCode { _ = try await h.authority.get("v1") } == "unknown_dataset_version")
            let prefixes = try await h.store.prefixes()
            #expect(prefixes.isEmpty && h.stagingIsEmpty)

            _ = try await h.upload("v1", data)
            #expect(
                await serviceErrorCode { _ = try await h.upload("v1", DatasetHarness.data(10)) }
                    == "dataset_version_exists")
            #expect(try await h.store.prefixes().count == 1)
            #expect(h.stagingIsEmpty)

            // Two uploads of one new version at once: exactly one wins, the other leaves no blobs.
            async let first = try? await h.upload("v2", DatasetHarness.data(100_000, seed: 3))
            async let second = try? await h.upload("v2", DatasetHarness.data(100_000, seed: 5))
            let winners = [await first, await second].compactMap { $0 }
            #expect(winners.count == 1)
            #expect(try await h.store.prefixes().count == 2)
            #expect(h.stagingIsEmpty)
            let stored = try await h.authority.get("v2")
            #expect(stored.manifest == winners[0].manifest)
        }
    }

    @Test("bad upload headers are refused before anything is stored", arguments: StorageBackend.available)
    func badHeaders(_ backend: StorageBackend) async throws {
        try await DatasetHarness.with(backend) { h in
            let data = DatasetHarness.data(10)
            let cases: [(DatasetAuthority.UploadHeader, String)] = [
                (.init(version: "../../etc/passwd"), "invalid_version"),
                (.init(version: "v1", chunkSize: 100), "invalid_chunk_size"),
                (.init(version: "v1", name: String(repeating: "n", count: 201)), "invalid_name"),
                (.init(version: "v1", minDurationSeconds: -1), "invalid_min_duration"),
            ]
            for (header, code) in cases {
                #expect(
                    await serviceErrorCode { _ = try await h.authority.upload(header, data: Pieces(data: data)) }
                        == code)
            }
            #expect(
                await serviceErrorCode {
                    _ = try await h.authority.upload(.init(version: "v1"), data: Pieces(data: []))
                } == "empty_dataset")
            let prefixes = try await h.store.prefixes()
            #expect(prefixes.isEmpty && h.stagingIsEmpty)
        }
    }

    @Test(
        "activation decides the latest version and who gets keys; paging lists newest first",
        arguments: StorageBackend.available)
    func activation(_ backend: StorageBackend) async throws {
        try await DatasetHarness.with(backend) { h in
            #expect(await serviceErrorCode { _ = try await h.authority.latest() } == "no_active_dataset")
            for (index, version) in ["a1", "a2", "a3"].enumerated() {
                _ = try await h.upload(version, DatasetHarness.data(1000), activate: index != 2)
                h.clock.advance(by: .seconds(1))
            }
            #expect(try await h.authority.latest().version == "a2")
            #expect(
                await serviceErrorCode { _ = try await h.authority.key(version: "a3", machineID: "m") }
                    == "dataset_not_active")
            _ = try await h.authority.setActive("a3", active: true)
            #expect(try await h.authority.latest().version == "a3")
            _ = try await h.authority.setActive("a3", active: false)
            #expect(try await h.authority.latest().version == "a2")
            #expect(
                await serviceErrorCode { _ = try await h.authority.setActive("zz", active: true) }
                    == "unknown_dataset_version")

            var seen: [String] = []
            var cursor = ""
            repeat {
                let page = try await h.authority.list(cursor: cursor, limit: 2, includeInactive: true)
                seen += page.versions.map(\.version)
                cursor = page.next
            } while !cursor.isEmpty
            #expect(seen == ["a3", "a2", "a1"])
            #expect(
                try await h.authority.list(cursor: "", limit: 10, includeInactive: false).versions.map(\.version) == [
                    "a2", "a1",
                ])
            #expect(
                await serviceErrorCode { _ = try await h.authority.list(cursor: "!!", limit: 2, includeInactive: true) }
                    == "invalid_cursor")
        }
    }

    @Test(
        "a chunk corrupted on disk is detected before any byte is served, as a clear error",
        arguments: StorageBackend.available)
    func corruption(_ backend: StorageBackend) async throws {
        try await DatasetHarness.with(backend) { h in
            let record = try await h.upload("v1", DatasetHarness.data(150_000))
            let path = "\(h.root)/\(record.blobPrefix)/\(DatasetAuthority.chunkName(1))"
            var bytes = try #require(FileManager.default.contents(atPath: path))
            bytes[5] ^= 0xff
            try bytes.write(to: URL(fileURLWithPath: path))
            #expect(
                await serviceErrorCode { _ = try await h.authority.chunk(version: "v1", index: 1) }
                    == "chunk_unavailable")
            _ = try await h.authority.chunk(version: "v1", index: 0)
            try FileManager.default.removeItem(atPath: path)
            #expect(
                await serviceErrorCode { _ = try await h.authority.chunk(version: "v1", index: 1) }
                    == "chunk_unavailable")
        }
    }
}
