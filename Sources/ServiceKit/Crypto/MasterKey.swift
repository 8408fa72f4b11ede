import Crypto
import Foundation
public import Logging

/// The server master key: seals secrets at rest (device secrets, dataset content keys) and derives other server keys.
/// Every service that seals something uses the same key (`--master-key` / `--master-key-file`).
///
/// Sealed format: `0x01 ‖ nonce (12) ‖ ciphertext ‖ tag (16)`, AES-256-GCM, with the purpose (e.g.
/// `device-secret:<machine_id>`) as associated data so a sealed value cannot be moved to another row.
public struct MasterKey: Sendable {
    /// Raw bytes: `SymmetricKey` is not `Sendable`.
    private let bytes: [UInt8]
    private var key: SymmetricKey { SymmetricKey(data: bytes) }

    public init(bytes: [UInt8]) {
        precondition(bytes.count == 32, "the master key is 32 bytes")
        self.bytes = bytes
    }

    /// Identifies the key without revealing it; stored so a start with another key is refused.
    public var fingerprint: String {
        Array(SHA256.hash(data: Array("leaderboard.master-key.fingerprint\n".utf8) + bytes)).prefix(8).hexEncoded
    }

    public func seal(_ plaintext: [UInt8], purpose: String) throws -> [UInt8] {
        let box = try AES.GCM.seal(plaintext, using: key, authenticating: Array(purpose.utf8))
        return [1] + Array(box.nonce) + Array(box.ciphertext) + Array(box.tag)
    }

    public func open(_ sealed: [UInt8], purpose: String) throws -> [UInt8] {
        guard sealed.count >= 29, sealed[0] == 1 else { throw StorageError("sealed value has an unknown format") }
        let box = try AES.GCM.SealedBox(
            nonce: AES.GCM.Nonce(data: sealed[1..<13]), ciphertext: sealed[13..<(sealed.count - 16)],
            tag: sealed.suffix(16))
        return Array(try AES.GCM.open(box, using: key, authenticating: Array(purpose.utf8)))
    }

    /// A key for one purpose, derived with HKDF-SHA256 (info `leaderboard.<purpose>.v1`).
    public func derive(_ purpose: String) -> [UInt8] {
        HKDF<SHA256>.deriveKey(
            inputKeyMaterial: key, info: Array("leaderboard.\(purpose).v1".utf8), outputByteCount: 32
        )
        .withUnsafeBytes { Array($0) }
    }
}

/// The master key settings, shared by every module that seals data (auth, dataset).
public enum MasterKeySettings {
    public static let key = Setting(
        "master-key", secret: true, fromFile: false,
        help: "Base64 of 32 random bytes sealing secrets at rest (device secrets, dataset keys). Takes precedence "
            + "over master-key-file.")
    public static let file = Setting(
        "master-key-file",
        help: "File holding the master key (base64). Empty: <data-dir>/master.key, created on first start when "
            + "storage is embedded; required (or master-key) with a database URL.")

    public static let all: [Setting] = [key, file]
}

/// Where the master key comes from, validated.
public enum MasterKeySource: Sendable, Equatable {
    case value([UInt8])
    /// A file; created with a fresh key when `create` and missing.
    case file(path: String, create: Bool)

    /// Reads the settings, adding every problem to `reader`.
    public static func read(_ reader: inout ConfigurationReader, core: LeaderboardConfiguration) -> MasterKeySource {
        let keyText = reader.string(MasterKeySettings.key)
        let keyFile = reader.string(MasterKeySettings.file)
        if !keyText.isEmpty {
            if let bytes = [UInt8](lenientBase64: keyText), bytes.count == 32 { return .value(bytes) }
            reader.fail(MasterKeySettings.key, "must be base64 of exactly 32 bytes (e.g. openssl rand -base64 32)")
        } else if !keyFile.isEmpty {
            if !FileSystem.isReadableFile(keyFile) {
                reader.fail(MasterKeySettings.file, "cannot read file '\(keyFile)'")
            }
            return .file(path: keyFile, create: false)
        } else if !core.isEmbeddedStorage {
            // Replicas sharing a database must share the key; a key generated per machine would lock them out.
            reader.fail(MasterKeySettings.key, "required with a database URL (set master-key or master-key-file)")
        }
        return .file(path: "\(core.dataDirectory)/master.key", create: true)
    }

    /// Loads (or, for an embedded start, creates with mode 0600) the key.
    public func load(random: any RandomSource) throws -> MasterKey {
        switch self {
        case .value(let bytes):
            return MasterKey(bytes: bytes)
        case .file(let path, let create):
            if !FileManager.default.fileExists(atPath: path), create {
                try FileSystem.createDirectory((path as NSString).deletingLastPathComponent)
                let text = Data(random.bytes(32)).base64EncodedString() + "\n"
                guard
                    FileManager.default.createFile(
                        atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600])
                else {
                    throw StartupError(
                        origin: MasterKeySettings.file.environmentVariable, message: "cannot create '\(path)'")
                }
            }
            guard let text = try? String(contentsOfFile: path, encoding: .utf8),
                let bytes = [UInt8](lenientBase64: text.trimmingCharacters(in: .whitespacesAndNewlines)),
                bytes.count == 32
            else {
                throw StartupError(
                    origin: MasterKeySettings.file.environmentVariable,
                    message: "'\(path)' does not hold base64 of 32 bytes")
            }
            return MasterKey(bytes: bytes)
        }
    }
}

extension MasterKey {
    /// Refuses to start with a key other than the one that sealed what a service stored: the fingerprint is kept in
    /// the service's own metadata table (`table` is a constant of the caller, never input).
    public func checkFingerprint(in database: ServiceDatabase, table: String, logger: Logger) async throws {
        let fingerprint = fingerprint
        let stored = try await database.transaction(logger: logger) { sql in
            _ = try await sql.execute(
                "INSERT INTO \(table) (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                [.text("master_key_fingerprint"), .text(fingerprint)])
            return try await sql.first("SELECT value FROM \(table) WHERE name = $1", [.text("master_key_fingerprint")])?
                .string("value") ?? fingerprint
        }
        guard stored == fingerprint else {
            throw StartupError(
                origin: MasterKeySettings.key.environmentVariable,
                message: "this master key (fingerprint \(fingerprint)) is not the one that sealed the stored data "
                    + "(fingerprint \(stored))")
        }
    }
}
