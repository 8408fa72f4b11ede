import Crypto
import Foundation
import ServiceKit

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
