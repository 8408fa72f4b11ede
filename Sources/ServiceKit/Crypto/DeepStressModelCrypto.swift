import COpenSSL
public import Crypto
import Foundation
import UntrustedInput
import _CryptoExtras

/// The cryptography of the published DeepStressModel client (docs/DEEPSTRESSMODEL.md), byte for byte: the offline
/// dataset package (format 4.0) the server builds for an API key, and the encrypted result file the client uploads.
/// Pure functions of their inputs (randomness and keys are passed in), so the shared test vectors replay exactly.
public enum DeepStressModelCrypto {
    /// Why a package could not be built or an upload not opened: a stable code and a sentence for the client's user.
    public struct Failure: Error, Equatable, Sendable, CustomStringConvertible {
        public let code: String
        public let detail: String

        public init(_ code: String, _ detail: String) {
            self.code = code
            self.detail = detail
        }

        public var description: String { "\(code): \(detail)" }
    }

    // MARK: primitives

    /// RSA PKCS#1 v1.5 encryption under a public key (DER SubjectPublicKeyInfo), through libcrypto: swift-crypto has
    /// OAEP only, and the client's offline-package path decrypts PKCS#1 v1.5 first.
    public static func rsaPKCS1v15Encrypt(_ plaintext: [UInt8], publicKeyDER: [UInt8]) throws -> [UInt8] {
        let failure = Failure("rsa_failed", "The RSA encryption failed.")
        let key: OpaquePointer? = publicKeyDER.withUnsafeBufferPointer { buffer in
            var cursor = buffer.baseAddress
            return d2i_PUBKEY(nil, &cursor, buffer.count)
        }
        guard let key else { throw failure }
        defer { EVP_PKEY_free(key) }
        guard let context = EVP_PKEY_CTX_new(key, nil) else { throw failure }
        defer { EVP_PKEY_CTX_free(context) }
        guard EVP_PKEY_encrypt_init(context) == 1, EVP_PKEY_CTX_set_rsa_padding(context, RSA_PKCS1_PADDING) == 1
        else { throw failure }
        var length = 0
        guard EVP_PKEY_encrypt(context, nil, &length, plaintext, plaintext.count) == 1, length > 0 else {
            throw failure
        }
        var output = [UInt8](repeating: 0, count: length)
        guard EVP_PKEY_encrypt(context, &output, &length, plaintext, plaintext.count) == 1 else { throw failure }
        return Array(output.prefix(length))
    }

    /// AES-256-CBC with PKCS#7 padding.
    public static func cbcEncrypt(_ plaintext: [UInt8], key: [UInt8], iv: [UInt8]) throws -> [UInt8] {
        Array(try AES._CBC.encrypt(plaintext, using: SymmetricKey(data: key), iv: try AES._CBC.IV(ivBytes: iv)))
    }

    public static func cbcDecrypt(_ ciphertext: [UInt8], key: [UInt8], iv: [UInt8]) throws -> [UInt8] {
        do {
            return Array(
                try AES._CBC.decrypt(ciphertext, using: SymmetricKey(data: key), iv: try AES._CBC.IV(ivBytes: iv)))
        } catch {
            throw Failure("decryption_failed", "The encrypted data does not decrypt with this key.")
        }
    }

    /// PBKDF2-HMAC-SHA256, as the client derives the package's private-key key from the API key.
    public static func pbkdf2(_ password: [UInt8], salt: [UInt8], rounds: Int, length: Int) throws -> [UInt8] {
        // The client's format fixes 100,000 rounds, below swift-crypto's checked minimum.
        try KDF.Insecure.PBKDF2.deriveKey(
            from: password, salt: salt, using: .sha256, outputByteCount: length, unsafeUncheckedRounds: rounds
        ).withUnsafeBytes { Array($0) }
    }

    public static func hkdf(_ material: [UInt8], salt: [UInt8], info: [UInt8], length: Int) -> [UInt8] {
        HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: material), salt: salt, info: info, outputByteCount: length
        ).withUnsafeBytes { Array($0) }
    }

    static func base64(_ bytes: some Sequence<UInt8>) -> String { Data(bytes).base64EncodedString() }

    static func unbase64(_ value: Any?, _ field: String) throws -> [UInt8] {
        guard let text = value as? String, let data = Data(base64Encoded: text) else {
            throw Failure("invalid_result_file", "\(field) is not base64.")
        }
        return Array(data)
    }

    // MARK: offline package (format 4.0)

    /// The package's `metadata` object.
    public struct PackageMetadata: Sendable, Equatable {
        public var datasetID: Int
        public var datasetName: String
        public var datasetVersion: String
        /// Unix seconds.
        public var createdAt: Int64
        public var expiresAt: Int64

        public init(datasetID: Int, datasetName: String, datasetVersion: String, createdAt: Int64, expiresAt: Int64) {
            self.datasetID = datasetID
            self.datasetName = datasetName
            self.datasetVersion = datasetVersion
            self.createdAt = createdAt
            self.expiresAt = expiresAt
        }
    }

    /// The random inputs of one package, drawn by the caller (a test passes fixed ones).
    public struct PackageSecrets: Sendable {
        public var privateKeyPEM: String
        public var publicKeyDER: [UInt8]
        public var sessionKey: [UInt8]
        public var pbkdf2Salt: [UInt8]
        public var privateKeyIV: [UInt8]
        public var hkdfSalt: [UInt8]
        public var dataIV: [UInt8]

        public init(
            privateKeyPEM: String, publicKeyDER: [UInt8], sessionKey: [UInt8], pbkdf2Salt: [UInt8],
            privateKeyIV: [UInt8], hkdfSalt: [UInt8], dataIV: [UInt8]
        ) {
            self.privateKeyPEM = privateKeyPEM
            self.publicKeyDER = publicKeyDER
            self.sessionKey = sessionKey
            self.pbkdf2Salt = pbkdf2Salt
            self.privateKeyIV = privateKeyIV
            self.hkdfSalt = hkdfSalt
            self.dataIV = dataIV
        }

        /// A fresh RSA-2048 key pair for the package and fresh keys, salts and IVs.
        public static func generate(random: any RandomSource) throws -> PackageSecrets {
            let key = try _RSA.Encryption.PrivateKey(keySize: .bits2048)
            return PackageSecrets(
                privateKeyPEM: key.pemRepresentation, publicKeyDER: Array(key.publicKey.derRepresentation),
                sessionKey: random.bytes(32), pbkdf2Salt: random.bytes(32), privateKeyIV: random.bytes(16),
                hkdfSalt: random.bytes(16), dataIV: random.bytes(16))
        }
    }

    static let pbkdf2Rounds = 100_000
    static let datasetInfo = "dataset_encryption"

    /// The package JSON for one API key: the dataset's plaintext bytes (`dataset`) encrypted under a session key
    /// that only the package's RSA key opens, whose private key only the API key opens. `userSignature` is the
    /// client's legacy check value (docs/DEEPSTRESSMODEL.md), computed by the caller from the dataset object.
    public static func package(
        dataset: [UInt8], userSignatureInput: [UInt8], apiKey: String, metadata: PackageMetadata,
        secrets: PackageSecrets, timestampMilliseconds: Int64
    ) throws -> [UInt8] {
        let privateKeyKey = try pbkdf2(
            Array(apiKey.utf8), salt: secrets.pbkdf2Salt, rounds: pbkdf2Rounds, length: 32)
        let encryptedPrivateKey = try cbcEncrypt(
            Array(secrets.privateKeyPEM.utf8), key: privateKeyKey, iv: secrets.privateKeyIV)
        let encryptedSessionKey = try rsaPKCS1v15Encrypt(secrets.sessionKey, publicKeyDER: secrets.publicKeyDER)
        let dataKey = hkdf(secrets.sessionKey, salt: secrets.hkdfSalt, info: Array(datasetInfo.utf8), length: 32)
        let encryptedData = try cbcEncrypt(dataset, key: dataKey, iv: secrets.dataIV)
        let timestamp = String(timestampMilliseconds)
        let signature = Array(
            SHA256.hash(data: userSignatureInput + Array(timestamp.utf8) + Array(apiKey.utf8))
        ).hexEncoded
        let object = PythonJSON.Object([
            (
                "metadata",
                PythonJSON.Object([
                    ("package_format", "4.0"), ("dataset_id", metadata.datasetID),
                    ("dataset_name", metadata.datasetName), ("dataset_version", metadata.datasetVersion),
                    ("created_at", isoSeconds(metadata.createdAt)), ("expires_at", isoSeconds(metadata.expiresAt)),
                ])
            ),
            (
                "encrypted_private_key",
                PythonJSON.Object([
                    ("salt", base64(secrets.pbkdf2Salt)), ("iv", base64(secrets.privateKeyIV)),
                    ("data", base64(encryptedPrivateKey)),
                ])
            ),
            (
                "dataset",
                PythonJSON.Object([
                    ("encrypted_session_key", base64(encryptedSessionKey)),
                    (
                        "encrypted_data",
                        PythonJSON.Object([
                            ("algorithm", "AES-256-CBC-PKCS7"),
                            (
                                "key_derivation",
                                PythonJSON.Object([
                                    ("method", "HKDF-SHA256"), ("salt", base64(secrets.hkdfSalt)),
                                    ("info", datasetInfo),
                                ])
                            ),
                            ("iv", base64(secrets.dataIV)), ("data", base64(encryptedData)),
                        ])
                    ),
                    ("timestamp", timestamp), ("user_signature", signature),
                ])
            ),
        ])
        return Array(PythonJSON.encode(object, indent: 2).utf8)
    }

    /// "2026-11-23T00:40:32Z".
    static func isoSeconds(_ seconds: Int64) -> String {
        Date(timeIntervalSince1970: TimeInterval(seconds)).ISO8601Format(
            .iso8601.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: false)
                .timeSeparator(.colon).timeZone(separator: .omitted))
    }

    // MARK: result upload

    /// The server's RSA-2048 key pair for result uploads (the client encrypts each result's session key to it).
    public struct ResultKey: Sendable {
        /// The private key's DER (swift-crypto's key type is not Sendable; parsing it again is cheap).
        let der: [UInt8]
        public let privateKeyPEM: String
        /// SubjectPublicKeyInfo PEM (`BEGIN PUBLIC KEY`), what the client loads.
        public let publicKeyPEM: String
        /// Lowercase hex SHA-256 of the public key's DER, to compare keys by.
        public let fingerprint: String

        /// From a PEM private key (PKCS#8 or PKCS#1); at least 2048 bits.
        public init(pem: String) throws {
            let key: _RSA.Encryption.PrivateKey
            do {
                key = try _RSA.Encryption.PrivateKey(pemRepresentation: pem)
            } catch {
                throw Failure("invalid_result_key", "The result key is not an RSA private key in PEM.")
            }
            guard key.keySizeInBits >= 2048 else {
                throw Failure("invalid_result_key", "The result key has fewer than 2048 bits.")
            }
            self.init(key)
        }

        init(_ key: _RSA.Encryption.PrivateKey) {
            der = Array(key.derRepresentation)
            privateKeyPEM = key.pemRepresentation
            publicKeyPEM = key.publicKey.pemRepresentation
            fingerprint = Array(SHA256.hash(data: key.publicKey.derRepresentation)).hexEncoded
        }

        public static func generate() throws -> ResultKey {
            ResultKey(try _RSA.Encryption.PrivateKey(keySize: .bits2048))
        }

        var privateKey: _RSA.Encryption.PrivateKey {
            get throws { try _RSA.Encryption.PrivateKey(derRepresentation: der) }
        }
    }

    /// A result file as the client makes one (`BenchmarkEncryption.encrypt_and_save`), for tests and tools: the
    /// plaintext under a fresh session key sealed to `publicKeyPEM` with RSA-OAEP-SHA256, signed for `apiKey`.
    public static func sealResult(
        _ plaintext: [UInt8], apiKey: String, publicKeyPEM: String, timestamp: Int64, nonce: String,
        random: any RandomSource
    ) throws -> [UInt8] {
        let sessionKey = random.bytes(32)
        let iv = random.bytes(16)
        let publicKey = try _RSA.Encryption.PublicKey(pemRepresentation: publicKeyPEM)
        let sealedKey = Array(try publicKey.encrypt(sessionKey, padding: .PKCS1_OAEP_SHA256))
        let logHash = base64(SHA256.hash(data: plaintext))
        let binding = hkdf(
            Array(apiKey.utf8) + sessionKey, salt: Array("deepstress_api_binding".utf8),
            info: Array("api_key_binding".utf8), length: 32)
        let apiKeyHash = base64(SHA256.hash(data: binding))
        let message =
            #"{"api_key_hash": "\#(apiKeyHash)", "log_hash": "\#(logHash)", "nonce": "\#(nonce)", "timestamp": \#(timestamp)}"#
        let macKey = SymmetricKey(data: Array(SHA256.hash(data: sessionKey + Array(apiKey.utf8))))
        let signature = base64(HMAC<SHA256>.authenticationCode(for: Array(message.utf8), using: macKey))
        let object = PythonJSON.Object([
            ("format_version", "1.0"), ("encrypted_session_key", base64(sealedKey)),
            (
                "encrypted_data",
                PythonJSON.Object([
                    ("iv", base64(iv)), ("data", base64(try cbcEncrypt(plaintext, key: sessionKey, iv: iv))),
                ])
            ),
            (
                "signature_data",
                PythonJSON.Object([
                    ("log_hash", logHash), ("timestamp", Int(timestamp)), ("nonce", nonce),
                    ("api_key_hash", apiKeyHash),
                ])
            ),
            ("signature", signature), ("timestamp", isoSeconds(timestamp)),
        ])
        return Array(PythonJSON.encode(object, indent: 2).utf8)
    }

    /// What an opened upload carries: the client's result JSON and the signed fields.
    public struct OpenedResult: Sendable, Equatable {
        public var plaintext: [UInt8]
        /// Unix seconds the client signed.
        public var timestamp: Int64
        public var nonce: String
    }

    /// Opens and verifies a `.dat` result file for the API key it was uploaded with: the RSA-OAEP-SHA256 session key,
    /// the AES-256-CBC payload, the log hash, the API-key binding and the HMAC over the canonical signed fields.
    /// Freshness and nonce reuse are the caller's (they need a clock and a store).
    public static func openResult(_ file: [UInt8], apiKey: String, key: ResultKey) throws -> OpenedResult {
        // Our own parser: the file is untrusted (bounded nesting, linear time), whatever its size.
        guard case .object(let object)? = try? JSONValue.parse(file) else {
            throw Failure("invalid_result_file", "The result file is not JSON.")
        }
        guard case .string("1.0")? = object["format_version"] else {
            throw Failure("invalid_result_file", "The result file's format_version is not 1.0.")
        }
        guard case .object(let data)? = object["encrypted_data"], case .object(let signed)? = object["signature_data"],
            case .string(let signature)? = object["signature"], case .string(let logHash)? = signed["log_hash"],
            case .string(let nonce)? = signed["nonce"], case .string(let apiKeyHash)? = signed["api_key_hash"],
            case .number(let seconds)? = signed["timestamp"], let timestamp = Int64(exactly: seconds),
            timestamp.magnitude < 1 << 40
        else { throw Failure("invalid_result_file", "The result file lacks a field it needs.") }
        guard nonce.utf8.count == 32,
            nonce.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) })
        else { throw Failure("invalid_result_file", "The nonce is not 32 lowercase hex characters.") }
        func text(_ value: JSONValue?) -> String? {
            guard case .string(let text)? = value else { return nil }
            return text
        }
        let sealedKey = try unbase64(text(object["encrypted_session_key"]), "encrypted_session_key")
        let sessionKey: [UInt8]
        do {
            sessionKey = Array(try key.privateKey.decrypt(sealedKey, padding: .PKCS1_OAEP_SHA256))
        } catch {
            throw Failure(
                "wrong_result_key",
                "The result was not encrypted to this server's result key: install the key from /api/v1/keys/result-encryption.pem."
            )
        }
        guard sessionKey.count == 32 else { throw Failure("invalid_result_file", "The session key is not 32 bytes.") }
        let plaintext = try cbcDecrypt(
            try unbase64(text(data["data"]), "encrypted_data.data"), key: sessionKey,
            iv: try unbase64(text(data["iv"]), "encrypted_data.iv"))
        guard base64(SHA256.hash(data: plaintext)) == logHash else {
            throw Failure("log_hash_mismatch", "The result does not match its log hash: it was altered.")
        }
        let binding = hkdf(
            Array(apiKey.utf8) + sessionKey, salt: Array("deepstress_api_binding".utf8),
            info: Array("api_key_binding".utf8), length: 32)
        guard base64(SHA256.hash(data: binding)) == apiKeyHash else {
            throw Failure("api_key_mismatch", "The result was encrypted for another API key.")
        }
        // The client signs a canonical text of the four fields, not the bytes in the file.
        let message =
            #"{"api_key_hash": "\#(apiKeyHash)", "log_hash": "\#(logHash)", "nonce": "\#(nonce)", "timestamp": \#(timestamp)}"#
        let macKey = SymmetricKey(data: Array(SHA256.hash(data: sessionKey + Array(apiKey.utf8))))
        guard let given = Data(base64Encoded: signature),
            HMAC<SHA256>.isValidAuthenticationCode(given, authenticating: Array(message.utf8), using: macKey)
        else { throw Failure("signature_mismatch", "The result's signature does not verify: it was altered.") }
        return OpenedResult(plaintext: plaintext, timestamp: timestamp, nonce: nonce)
    }
}

/// JSON as Python's `json.dumps` writes it (`", "` and `": "` separators, or an indent; keys in the given order;
/// `ensure_ascii` escaping on request), for byte-exact compatibility with the client's checks.
public enum PythonJSON {
    /// An object: its members in the order written.
    public struct Object {
        public var members: [(String, Any)]

        public init(_ members: [(String, Any)]) { self.members = members }
    }

    public static func encode(_ value: Any, indent: Int? = nil, ensureASCII: Bool = false) -> String {
        var output = ""
        write(value, into: &output, indent: indent, level: 0, ensureASCII: ensureASCII)
        return output
    }

    static func write(_ value: Any, into output: inout String, indent: Int?, level: Int, ensureASCII: Bool) {
        let newline = indent.map { "\n" + String(repeating: " ", count: $0 * (level + 1)) }
        let closing = indent.map { "\n" + String(repeating: " ", count: $0 * level) } ?? ""
        let itemSeparator = indent == nil ? ", " : ","
        switch value {
        case let object as Object:
            let pairs = object.members
            guard !pairs.isEmpty else {
                output += "{}"
                return
            }
            output += "{"
            for (index, (key, item)) in pairs.enumerated() {
                if index > 0 { output += itemSeparator }
                output += newline ?? ""
                output += quoted(key, ensureASCII: ensureASCII) + ": "
                write(item, into: &output, indent: indent, level: level + 1, ensureASCII: ensureASCII)
            }
            output += closing + "}"
        case let items as [Any]:
            guard !items.isEmpty else {
                output += "[]"
                return
            }
            output += "["
            for (index, item) in items.enumerated() {
                if index > 0 { output += itemSeparator }
                output += newline ?? ""
                write(item, into: &output, indent: indent, level: level + 1, ensureASCII: ensureASCII)
            }
            output += closing + "]"
        case let text as String: output += quoted(text, ensureASCII: ensureASCII)
        case let flag as Bool: output += flag ? "true" : "false"
        case let number as Int: output += String(number)
        case let number as Int64: output += String(number)
        case let number as Double: output += number.isFinite ? "\(number)" : "null"
        default: output += "null"
        }
    }

    static func quoted(_ text: String, ensureASCII: Bool) -> String {
        var output = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case "\u{08}": output += "\\b"
            case "\u{0C}": output += "\\f"
            default:
                if scalar.value < 0x20 || (ensureASCII && scalar.value > 0x7e) {
                    for unit in String(scalar).utf16 { output += String(format: "\\u%04x", unit) }
                } else {
                    output.unicodeScalars.append(scalar)
                }
            }
        }
        return output + "\""
    }
}
