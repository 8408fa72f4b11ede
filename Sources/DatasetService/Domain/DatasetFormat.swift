import Crypto
import Foundation
import GRPCCore
import ServiceKit

/// Dataset version names: what operators type and what appears in URLs and file names, so deliberately narrow.
enum DatasetVersionName {
    /// 1–64 characters of `A–Z a–z 0–9 . _ -`, starting with a letter or digit; no `..`.
    static func validate(_ text: String) throws(DatasetError) -> String {
        let utf8 = Array(text.utf8)
        guard (1...64).contains(utf8.count), let first = utf8.first, isAlphanumeric(first),
            utf8.allSatisfy({
                isAlphanumeric($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-")
            }),
            !text.contains(".."), text != "latest"
        else {
            throw .invalid(
                "invalid_version",
                "A dataset version is 1–64 characters of letters, digits, '.', '_' and '-', starting with a letter or digit."
            )
        }
        return text
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (0x30...0x39).contains(byte) || (0x41...0x5a).contains(byte) || (0x61...0x7a).contains(byte)
    }
}

/// How chunks are encrypted (docs/DATASET-FORMAT.md): AES-256-GCM under the version's content key, each chunk once.
///
/// The nonce is 4 zero bytes and the chunk index as 8 bytes big-endian: unique per key, since every version has its
/// own random key and every chunk is encrypted exactly once. The associated data
/// `leaderboard.dataset.v1\n<version>\n<index>\n<final>` (final is `1` for the last chunk, else `0`) binds each
/// chunk to its version and place, so chunks cannot be swapped, reordered, moved between versions or cut off.
/// A stored chunk is the ciphertext followed by the 16-byte tag.
enum ChunkCipher {
    static let tagSize = 16
    static let name = "AES-256-GCM"

    static func nonce(index: Int) -> [UInt8] {
        [0, 0, 0, 0] + withUnsafeBytes(of: UInt64(index).bigEndian) { Array($0) }
    }

    static func associatedData(version: String, index: Int, final: Bool) -> [UInt8] {
        Array("leaderboard.dataset.v1\n\(version)\n\(index)\n\(final ? 1 : 0)".utf8)
    }

    static func seal(_ plaintext: [UInt8], key: [UInt8], version: String, index: Int, final: Bool) throws -> [UInt8] {
        let box = try AES.GCM.seal(
            plaintext, using: SymmetricKey(data: key), nonce: try AES.GCM.Nonce(data: nonce(index: index)),
            authenticating: associatedData(version: version, index: index, final: final))
        return Array(box.ciphertext) + Array(box.tag)
    }

    static func open(_ stored: [UInt8], key: [UInt8], version: String, index: Int, final: Bool) throws -> [UInt8] {
        guard stored.count >= tagSize else { throw DatasetError.corruptChunk }
        let box = try AES.GCM.SealedBox(
            nonce: try AES.GCM.Nonce(data: nonce(index: index)), ciphertext: stored.dropLast(tagSize),
            tag: stored.suffix(tagSize))
        return Array(
            try AES.GCM.open(
                box, using: SymmetricKey(data: key),
                authenticating: associatedData(version: version, index: index, final: final)))
    }
}

/// One stored chunk as the manifest describes it.
struct ChunkEntry: Codable, Sendable, Equatable {
    var index: Int
    var plaintextSize: Int64
    var ciphertextSize: Int64
    /// Where the chunk starts in the concatenated ciphertext (`/download`).
    var ciphertextOffset: Int64
    var plaintextSHA256: String
    var ciphertextSHA256: String

    enum CodingKeys: String, CodingKey {
        case index
        case plaintextSize = "plaintext_size"
        case ciphertextSize = "ciphertext_size"
        case ciphertextOffset = "ciphertext_offset"
        case plaintextSHA256 = "plaintext_sha256"
        case ciphertextSHA256 = "ciphertext_sha256"
    }
}

/// Everything a client needs to fetch, check and decrypt a version (docs/DATASET-FORMAT.md).
struct Manifest: Codable, Sendable, Equatable {
    static let formatVersion = 1

    var formatVersion = Manifest.formatVersion
    var version: String
    var cipher = ChunkCipher.name
    var chunkSize: Int64
    var plaintextSize: Int64
    var ciphertextSize: Int64
    var plaintextSHA256: String
    var chunks: [ChunkEntry]

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version"
        case version, cipher, chunks
        case chunkSize = "chunk_size"
        case plaintextSize = "plaintext_size"
        case ciphertextSize = "ciphertext_size"
        case plaintextSHA256 = "plaintext_sha256"
    }

    func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array(try encoder.encode(self))
    }

    static func decode(_ bytes: [UInt8]) throws -> Manifest {
        try JSONDecoder().decode(Manifest.self, from: Data(bytes))
    }

    /// The chunks overlapping ciphertext bytes `range` of the concatenated stream, with the part of each to send.
    func pieces(of range: Range<Int64>) -> [(chunk: ChunkEntry, within: Range<Int64>)] {
        chunks.compactMap { chunk in
            let start = max(range.lowerBound, chunk.ciphertextOffset)
            let end = min(range.upperBound, chunk.ciphertextOffset + chunk.ciphertextSize)
            guard start < end else { return nil }
            return (chunk, (start - chunk.ciphertextOffset)..<(end - chunk.ciphertextOffset))
        }
    }
}

/// Builds the encrypted chunks of an upload as the bytes stream in: holds at most the chunk being filled and the
/// one before it (which is sealed once the next byte shows it was not the last).
struct ChunkAssembler {
    let version: String
    let chunkSize: Int
    let key: [UInt8]
    private(set) var whole = SHA256()
    private(set) var plaintextSize: Int64 = 0
    private(set) var entries: [ChunkEntry] = []
    private var filling: [UInt8] = []
    private var pending: [UInt8]?
    private var ciphertextOffset: Int64 = 0

    init(version: String, chunkSize: Int, key: [UInt8]) {
        self.version = version
        self.chunkSize = chunkSize
        self.key = key
        filling.reserveCapacity(chunkSize)
    }

    /// Adds bytes; returns the chunks now ready to store (index and sealed bytes).
    mutating func append(_ bytes: some DataProtocol) throws -> [(index: Int, sealed: [UInt8])] {
        var ready: [(Int, [UInt8])] = []
        whole.update(data: bytes)
        plaintextSize += Int64(bytes.count)
        var rest = bytes[...]
        while !rest.isEmpty {
            let take = min(chunkSize - filling.count, rest.count)
            filling.append(contentsOf: rest.prefix(take))
            rest = rest.dropFirst(take)
            if filling.count == chunkSize {
                if let previous = pending { ready.append(try seal(previous, final: false)) }
                pending = filling
                filling = []
                filling.reserveCapacity(chunkSize)
            }
        }
        return ready
    }

    /// The stream ended: seals what is left, the last chunk marked final. An empty dataset is refused.
    mutating func finish() throws -> [(index: Int, sealed: [UInt8])] {
        var ready: [(Int, [UInt8])] = []
        if filling.isEmpty {
            guard let last = pending else { throw DatasetError.invalid("empty_dataset", "The dataset is empty.") }
            ready.append(try seal(last, final: true))
        } else {
            if let previous = pending { ready.append(try seal(previous, final: false)) }
            ready.append(try seal(filling, final: true))
        }
        pending = nil
        filling = []
        return ready
    }

    private mutating func seal(_ plaintext: [UInt8], final: Bool) throws -> (index: Int, sealed: [UInt8]) {
        let index = entries.count
        let sealed = try ChunkCipher.seal(plaintext, key: key, version: version, index: index, final: final)
        entries.append(
            ChunkEntry(
                index: index, plaintextSize: Int64(plaintext.count), ciphertextSize: Int64(sealed.count),
                ciphertextOffset: ciphertextOffset, plaintextSHA256: Array(SHA256.hash(data: plaintext)).hexEncoded,
                ciphertextSHA256: Array(SHA256.hash(data: sealed)).hexEncoded))
        ciphertextOffset += Int64(sealed.count)
        return (index, sealed)
    }

    /// Plaintext bytes in the chunks sealed so far.
    var storedPlaintext: Int64 { entries.reduce(0) { $0 + $1.plaintextSize } }

    func manifest() -> Manifest {
        Manifest(
            version: version, chunkSize: Int64(chunkSize), plaintextSize: plaintextSize,
            ciphertextSize: ciphertextOffset, plaintextSHA256: Array(whole.finalize()).hexEncoded, chunks: entries)
    }
}

/// Proof of the dataset (docs/DATASET-FORMAT.md, "Proof of the dataset"): spans of a version's plaintext chosen at
/// random for one benchmark session, and the answer only a holder of those bytes can compute —
/// HMAC-SHA256(key = nonce, message = the spans' bytes in order), as lowercase hex.
enum DatasetProof {
    static let spanCount = 8
    static let spanLength: Int64 = 64
    static let nonceSize = 32

    /// `spanCount` spans spread over the plaintext (one drawn in each equal slice, so a device must hold all of it);
    /// a plaintext shorter than the spans together is one span of all of it.
    static func spans(plaintextSize: Int64, random: any RandomSource) -> [Range<Int64>] {
        guard plaintextSize > spanLength * Int64(spanCount) else { return plaintextSize > 0 ? [0..<plaintextSize] : [] }
        let slice = plaintextSize / Int64(spanCount)
        return (0..<Int64(spanCount)).map { index in
            let room = UInt64(slice - spanLength)
            let draw = random.bytes(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let start = index * slice + Int64(draw % (room + 1))
            return start..<(start + spanLength)
        }
    }

    static func answer(nonce: [UInt8], pieces: [[UInt8]]) -> String {
        var mac = HMAC<SHA256>(key: SymmetricKey(data: nonce))
        for piece in pieces { mac.update(data: piece) }
        return Array(mac.finalize()).hexEncoded
    }
}
