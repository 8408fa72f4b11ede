import Crypto
import Foundation
import LeaderboardClient
import ServiceKit
import TestSupport
import Testing

@testable import DatasetService

@Suite("Dataset format")
struct DatasetDomainTests {
    @Test(
        "version names: letters, digits and . _ - only; nothing that walks paths",
        arguments: ["v1", "2026.11", "llm_bench-3.2", String(repeating: "a", count: 64)])
    func validVersions(_ name: String) throws {
        #expect(try DatasetVersionName.validate(name) == name)
    }

    @Test(
        "version names with path characters or reserved words are refused",
        arguments: [
            "", "../etc", "a/b", "a\\b", ".hidden", "-x", "a..b", "latest", "with space", "ünïcode", "a%2Fb",
            String(repeating: "a", count: 65),
        ])
    func invalidVersions(_ name: String) {
        #expect(throws: DatasetError.self) { try DatasetVersionName.validate(name) }
    }

    @Test("a chunk opens only with its key, version, index and end marker")
    func chunkBinding() throws {
        let key = Array(repeating: UInt8(1), count: 32)
        let plaintext = Array("benchmark prompts".utf8)
        let sealed = try ChunkCipher.seal(plaintext, key: key, version: "v1", index: 3, final: false)
        #expect(sealed.count == plaintext.count + 16)
        #expect(try ChunkCipher.open(sealed, key: key, version: "v1", index: 3, final: false) == plaintext)
        #expect(throws: (any Error).self) {
            try ChunkCipher.open(sealed, key: key, version: "v1", index: 4, final: false)
        }
        #expect(throws: (any Error).self) {
            try ChunkCipher.open(sealed, key: key, version: "v2", index: 3, final: false)
        }
        #expect(throws: (any Error).self) {
            try ChunkCipher.open(sealed, key: key, version: "v1", index: 3, final: true)
        }
        #expect(throws: (any Error).self) {
            try ChunkCipher.open(sealed, key: Array(repeating: 2, count: 32), version: "v1", index: 3, final: false)
        }
        var flipped = sealed
        flipped[0] ^= 1
        #expect(throws: (any Error).self) {
            try ChunkCipher.open(flipped, key: key, version: "v1", index: 3, final: false)
        }
    }

    @Test(
        "the assembler splits any stream into chunks whose manifest describes them exactly",
        arguments: [1, 1000, 4096, 4097, 12_288, 20_000])
    func assembler(_ size: Int) throws {
        let key = Array(repeating: UInt8(7), count: 32)
        let data = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        var assembler = ChunkAssembler(version: "v1", chunkSize: 4096, key: key)
        var stored: [Int: [UInt8]] = [:]
        var offset = 0
        for pieceSize in [1, 700, 3000, 5000].cycled(until: size) {
            let end = min(size, offset + pieceSize)
            for chunk in try assembler.append(data[offset..<end]) { stored[chunk.index] = chunk.sealed }
            offset = end
        }
        for chunk in try assembler.finish() { stored[chunk.index] = chunk.sealed }
        let manifest = assembler.manifest()
        #expect(manifest.chunks.count == (size + 4095) / 4096)
        #expect(manifest.plaintextSize == Int64(size))
        #expect(manifest.plaintextSHA256 == Array(SHA256.hash(data: data)).hexEncoded)
        var reassembled: [UInt8] = []
        var expectedOffset: Int64 = 0
        for entry in manifest.chunks {
            let sealed = try #require(stored[entry.index])
            #expect(entry.ciphertextOffset == expectedOffset)
            #expect(Array(SHA256.hash(data: sealed)).hexEncoded == entry.ciphertextSHA256)
            let final = entry.index == manifest.chunks.count - 1
            reassembled += try ChunkCipher.open(sealed, key: key, version: "v1", index: entry.index, final: final)
            expectedOffset += entry.ciphertextSize
        }
        #expect(reassembled == data)
        #expect(manifest.ciphertextSize == expectedOffset)
    }

    @Test("an empty upload is refused")
    func empty() throws {
        var assembler = ChunkAssembler(version: "v1", chunkSize: 4096, key: Array(repeating: 0, count: 32))
        #expect(throws: DatasetError.self) { _ = try assembler.finish() }
    }

    @Test("a ciphertext range maps onto the chunks it covers")
    func pieces() {
        let chunks = (0..<3).map {
            ChunkEntry(
                index: $0, plaintextSize: 84, ciphertextSize: 100, ciphertextOffset: Int64($0 * 100),
                plaintextSHA256: "", ciphertextSHA256: "")
        }
        let manifest = Manifest(
            version: "v", chunkSize: 84, plaintextSize: 252, ciphertextSize: 300, plaintextSHA256: "", chunks: chunks)
        let pieces = manifest.pieces(of: 50..<250).map {
            "\($0.chunk.index):\($0.within.lowerBound)-\($0.within.upperBound)"
        }
        #expect(pieces == ["0:50-100", "1:0-100", "2:0-50"])
        #expect(manifest.pieces(of: 100..<101).map(\.chunk.index) == [1])
    }
}

extension Array {
    /// Repeats the elements until their sum reaches `total` (for varied piece sizes).
    func cycled(until total: Int) -> [Element] where Element == Int {
        var result: [Int] = []
        var sum = 0
        var index = 0
        while sum < total {
            result.append(self[index % count])
            sum += self[index % count]
            index += 1
        }
        return result
    }
}

@Suite("Filesystem blob store")
struct BlobStoreTests {
    func withStore(_ body: (FileSystemBlobStore, String) async throws -> Void) async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("blobs-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try await body(try FileSystemBlobStore(root: root), root)
    }

    @Test("staged blobs are invisible until committed, readable in ranges after, removable")
    func lifeCycle() async throws {
        try await withStore { store, _ in
            let staging = try await store.stage()
            try await staging.write(name: "chunk-00000000", bytes: Array(0..<100))
            #expect(try await store.prefixes().isEmpty)
            try await staging.commit(as: "v1.abc")
            #expect(try await store.prefixes() == ["v1.abc"])
            let read = try await store.read(prefix: "v1.abc", name: "chunk-00000000")
            #expect(read.bytes == Array(0..<100))
            #expect(read.identity?.size == 100)
            #expect(try await store.file(prefix: "v1.abc", name: "chunk-00000000")?.identity == read.identity)
            try await store.remove(prefix: "v1.abc")
            #expect(try await store.prefixes().isEmpty)
        }
    }

    @Test("an aborted staging leaves nothing; names that could walk the tree are refused")
    func abortAndNames() async throws {
        try await withStore { store, root in
            let staging = try await store.stage()
            try await staging.write(name: "chunk-00000000", bytes: [1, 2, 3])
            await staging.abort()
            #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/.staging").isEmpty)
            for bad in ["../x", "a/b", ".hidden", "", "x y"] {
                await #expect(throws: StorageError.self) { try await staging.write(name: bad, bytes: []) }
                await #expect(throws: StorageError.self) {
                    _ = try await store.read(prefix: bad, name: "a")
                }
            }
        }
    }

    @Test("the sweep removes only old, unreferenced blob sets")
    func sweep() async throws {
        try await withStore { store, _ in
            for prefix in ["kept.1", "orphan.2"] {
                let staging = try await store.stage()
                try await staging.write(name: "a", bytes: [1])
                try await staging.commit(as: prefix)
            }
            let leftover = try await store.stage()
            try await leftover.write(name: "a", bytes: [1])
            #expect(try await store.sweep(keeping: ["kept.1"], olderThan: .seconds(3600)) == 0)  // all too young
            #expect(try await store.sweep(keeping: ["kept.1"], olderThan: .seconds(-1)) == 2)
            #expect(try await store.prefixes() == ["kept.1"])
        }
    }
}

@Suite("docs/DATASET-FORMAT.md")
struct DatasetFormatDocumentTests {
    @Test("the worked example's chunks are what the service stores")
    func workedExample() throws {
        let document = try TestEnvironment.repositoryFile("docs/DATASET-FORMAT.md")
        var values: [String: String] = [:]
        for line in document.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":"), !line.hasPrefix(" "), !line.hasPrefix("|") else { continue }
            values[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let keyText = try #require(values["content key"])
        let key = try #require([UInt8](hexEncoded: keyText))
        let version = try #require(values["version"])
        let plaintext = Array("hello, leaderboard\n".utf8)
        let first = try ChunkCipher.seal(plaintext, key: key, version: version, index: 0, final: false)
        let last = try ChunkCipher.seal(plaintext, key: key, version: version, index: 1, final: true)
        #expect(first.hexEncoded == values["chunk 0 stored"])
        #expect(last.hexEncoded == values["chunk 1 stored"])
        #expect(ChunkCipher.nonce(index: 1).hexEncoded == values["chunk 1 nonce"])
        // The key wrap example opens to the content key with the client library.
        let wrapped: [String: Any] = [
            "context": "dataset:\(version)", "hkdf_salt": values["hkdf_salt"] ?? "", "nonce": values["nonce"] ?? "",
            "ciphertext": values["ciphertext"] ?? "", "tag": values["tag"] ?? "",
        ]
        #expect(try DatasetCrypto.unwrapKey(wrapped, secret: "lbd_Tq3vX9kLm2Pz8RwY4sN7bC1dF6gH0jK5eA2uV8xZ3Qa") == key)
        #expect(try DatasetCrypto.decrypt(chunk: last, key: key, version: version, index: 1, final: true) == plaintext)
    }
}

@Suite("Dataset documentation")
struct DatasetDocumentationTests {
    @Test("the README lists every DatasetService setting with its flag and default")
    func readmeListsDatasetSettings() throws {
        try TestEnvironment.expectREADMEListsSettings(DatasetSettings.all)
    }
}
