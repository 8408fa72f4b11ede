import Crypto
import Foundation
import ServiceKit

/// The server master key: seals device secrets at rest and derives the other server keys.
///
/// Sealed format: `0x01 ‖ nonce (12) ‖ ciphertext ‖ tag (16)`, AES-256-GCM, with the purpose (e.g.
/// `device-secret:<machine_id>`) as associated data so a sealed value cannot be moved to another row.
struct MasterKey: Sendable {
    /// Raw bytes: `SymmetricKey` is not `Sendable`.
    private let bytes: [UInt8]
    private var key: SymmetricKey { SymmetricKey(data: bytes) }

    init(bytes: [UInt8]) {
        precondition(bytes.count == 32, "the master key is 32 bytes")
        self.bytes = bytes
    }

    /// Identifies the key without revealing it; stored so a start with another key is refused.
    var fingerprint: String {
        Array(SHA256.hash(data: Array("leaderboard.master-key.fingerprint\n".utf8) + bytes)).prefix(8).hexEncoded
    }

    func seal(_ plaintext: [UInt8], purpose: String) throws -> [UInt8] {
        let box = try AES.GCM.seal(plaintext, using: key, authenticating: Array(purpose.utf8))
        return [1] + Array(box.nonce) + Array(box.ciphertext) + Array(box.tag)
    }

    func open(_ sealed: [UInt8], purpose: String) throws -> [UInt8] {
        guard sealed.count >= 29, sealed[0] == 1 else { throw StorageError("sealed value has an unknown format") }
        let box = try AES.GCM.SealedBox(
            nonce: AES.GCM.Nonce(data: sealed[1..<13]), ciphertext: sealed[13..<(sealed.count - 16)],
            tag: sealed.suffix(16))
        return Array(try AES.GCM.open(box, using: key, authenticating: Array(purpose.utf8)))
    }

    /// A key for one purpose, derived with HKDF-SHA256 (info `leaderboard.<purpose>.v1`).
    func derive(_ purpose: String) -> [UInt8] {
        HKDF<SHA256>.deriveKey(
            inputKeyMaterial: key, info: Array("leaderboard.\(purpose).v1".utf8), outputByteCount: 32
        )
        .withUnsafeBytes { Array($0) }
    }
}

/// Device secrets and operator API keys: a recognisable prefix and 32 random bytes in URL-safe base64.
enum SecretToken {
    static let devicePrefix = "lbd_"
    static let apiKeyPrefix = "lbk_"

    static func generate(prefix: String, using random: any RandomSource) -> String {
        prefix + random.bytes(32).base64URLEncoded
    }

    /// How a secret is looked up without being stored: lowercase hex SHA-256 of its UTF-8 bytes.
    static func lookupHash(_ secret: String) -> String {
        Array(SHA256.hash(data: Array(secret.utf8))).hexEncoded
    }
}

/// Key material wrapped for one device (docs/AUTH.md): HKDF-SHA256(ikm: the device secret's UTF-8 bytes,
/// salt: 32 random bytes, info: `leaderboard.key-wrap.v1\n<context>`) → a 256-bit key; AES-256-GCM over the key
/// material with the context as associated data.
struct KeyWrap: Sendable {
    var nonce: [UInt8]
    var ciphertext: [UInt8]
    var tag: [UInt8]
    var salt: [UInt8]
    var context: String

    static func derivedKey(secret: String, salt: [UInt8], context: String) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: Array(secret.utf8)), salt: salt,
            info: Array("leaderboard.key-wrap.v1\n\(context)".utf8), outputByteCount: 32)
    }

    static func wrap(_ material: [UInt8], secret: String, context: String, random: any RandomSource) throws -> KeyWrap {
        let salt = random.bytes(32)
        let box = try AES.GCM.seal(
            material, using: derivedKey(secret: secret, salt: salt, context: context),
            nonce: AES.GCM.Nonce(data: random.bytes(12)), authenticating: Array(context.utf8))
        return KeyWrap(
            nonce: Array(box.nonce), ciphertext: Array(box.ciphertext), tag: Array(box.tag), salt: salt,
            context: context)
    }

    func unwrap(secret: String) throws -> [UInt8] {
        let box = try AES.GCM.SealedBox(nonce: AES.GCM.Nonce(data: nonce), ciphertext: ciphertext, tag: tag)
        return Array(
            try AES.GCM.open(
                box, using: Self.derivedKey(secret: secret, salt: salt, context: context),
                authenticating: Array(context.utf8)))
    }
}
