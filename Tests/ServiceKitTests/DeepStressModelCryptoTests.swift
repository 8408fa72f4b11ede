import Crypto
import Foundation
import ServiceKit
import TestSupport
import Testing

/// The DeepStressModel client's cryptography against the vectors made with the real client
/// (Tests/Fixtures/deepstressmodel/README.md).
@Suite("DeepStressModel cryptography, byte for byte with the real client")
struct DeepStressModelCryptoTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/deepstressmodel")
    static let apiKey = "test-api-key-0123456789abcdefghijklmnop"

    static func bytes(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: fixtures.appendingPathComponent(name)))
    }

    static func text(_ name: String) throws -> String { String(decoding: try bytes(name), as: UTF8.self) }

    static func intermediates(_ section: String) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(try bytes("intermediates.json"))) as? [String: Any]
        return try #require(object?[section] as? [String: Any])
    }

    static func hex(_ text: Any?) throws -> [UInt8] {
        try #require((text as? String).flatMap { [UInt8](hexEncoded: $0) })
    }

    @Test("the real client's upload opens to exactly the bytes it encrypted")
    func openUpload() throws {
        let key = try DeepStressModelCrypto.ResultKey(pem: try Self.text("server_rsa_private.pem"))
        let opened = try DeepStressModelCrypto.openResult(
            try Self.bytes("result_upload.dat"), apiKey: Self.apiKey, key: key)
        #expect(opened.plaintext == (try Self.bytes("result_plain.json")))
        #expect(opened.timestamp == 1_795_394_408 && opened.nonce == "cf062e542a9aa29d727c8d7ca824f315")
        #expect(
            key.publicKeyPEM.trimmingCharacters(in: .whitespacesAndNewlines)
                == (try Self.text("server_rsa_public.pem")).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// The upload with one field changed (through a JSON round trip, as an attacker would edit it).
    static func tampered(_ change: (inout [String: Any]) -> Void) throws -> [UInt8] {
        var object = try #require(
            try JSONSerialization.jsonObject(with: Data(try bytes("result_upload.dat"))) as? [String: Any])
        change(&object)
        return Array(try JSONSerialization.data(withJSONObject: object))
    }

    static func signed(_ object: inout [String: Any], _ field: String, _ value: Any) {
        var signed = object["signature_data"] as? [String: Any] ?? [:]
        signed[field] = value
        object["signature_data"] = signed
    }

    @Test("a changed field, key or signature is refused with its reason")
    func tampering() throws {
        let key = try DeepStressModelCrypto.ResultKey(pem: try Self.text("server_rsa_private.pem"))
        let cases: [(String, [UInt8], String, Set<String>)] = [
            ("format", try Self.tampered { $0["format_version"] = "2.0" }, Self.apiKey, ["invalid_result_file"]),
            ("not JSON", Array("garbage".utf8), Self.apiKey, ["invalid_result_file"]),
            ("no signature", try Self.tampered { $0["signature"] = nil }, Self.apiKey, ["invalid_result_file"]),
            (
                "signature", try Self.tampered { $0["signature"] = "YYRSZDq/OdF8mlWX76IGYUrgXk1tvQzJYYXiBQWOCN0=" },
                Self.apiKey, ["signature_mismatch"]
            ),
            (
                "timestamp", try Self.tampered { Self.signed(&$0, "timestamp", 1_795_394_409) }, Self.apiKey,
                ["signature_mismatch"]
            ),
            (
                "nonce", try Self.tampered { Self.signed(&$0, "nonce", "cf062e542a9aa29d727c8d7ca824f316") },
                Self.apiKey, ["signature_mismatch"]
            ),
            ("nonce shape", try Self.tampered { Self.signed(&$0, "nonce", "x") }, Self.apiKey, ["invalid_result_file"]),
            (
                "log hash",
                try Self.tampered { Self.signed(&$0, "log_hash", "AAAAVLmyY62VrsOQ41EcsXbefNCgSwdOsgjkEJDS+mY=") },
                Self.apiKey, ["log_hash_mismatch"]
            ),
            (
                "payload",
                try Self.tampered {
                    var data = $0["encrypted_data"] as? [String: Any] ?? [:]
                    var bytes = Array(Data(base64Encoded: data["data"] as? String ?? "") ?? Data())
                    bytes[100] ^= 1
                    data["data"] = Data(bytes).base64EncodedString()
                    $0["encrypted_data"] = data
                }, Self.apiKey, ["log_hash_mismatch", "decryption_failed"]
            ),
            (
                "session key",
                try Self.tampered {
                    $0["encrypted_session_key"] = Data(repeating: 7, count: 256).base64EncodedString()
                },
                Self.apiKey, ["wrong_result_key"]
            ),
            (
                "API key", try Self.bytes("result_upload.dat"), "another-api-key-0123456789abcdefghijkl",
                ["api_key_mismatch"]
            ),
        ]
        for (name, file, apiKey, codes) in cases {
            do {
                _ = try DeepStressModelCrypto.openResult(file, apiKey: apiKey, key: key)
                Issue.record("\(name): opened")
            } catch let failure as DeepStressModelCrypto.Failure {
                #expect(codes.contains(failure.code), "\(name): \(failure)")
            }
        }
        let otherKey = try DeepStressModelCrypto.ResultKey.generate()
        do {
            _ = try DeepStressModelCrypto.openResult(
                try Self.bytes("result_upload.dat"), apiKey: Self.apiKey, key: otherKey)
            Issue.record("opened with another server's key")
        } catch let failure as DeepStressModelCrypto.Failure {
            #expect(failure.code == "wrong_result_key")
        }
    }

    @Test("the package's key derivations and ciphers match the vector's intermediate values")
    func packageSteps() throws {
        let values = try Self.intermediates("offline_package")
        let package = try #require(
            try JSONSerialization.jsonObject(with: Data(try Self.bytes("offline_package.json"))) as? [String: Any])
        let wrapped = try #require(package["encrypted_private_key"] as? [String: String])
        let key1 = try DeepStressModelCrypto.pbkdf2(
            Array(Self.apiKey.utf8), salt: Array(try #require(Data(base64Encoded: wrapped["salt"] ?? ""))),
            rounds: 100_000, length: 32)
        #expect(key1 == (try Self.hex(values["pbkdf2_derived_key_hex"])))
        let pem = try DeepStressModelCrypto.cbcDecrypt(
            Array(try #require(Data(base64Encoded: wrapped["data"] ?? ""))), key: key1,
            iv: Array(try #require(Data(base64Encoded: wrapped["iv"] ?? ""))))
        #expect(String(decoding: pem, as: UTF8.self) == values["package_private_key_pem"] as? String)

        let dataset = try #require(package["dataset"] as? [String: Any])
        let encrypted = try #require(dataset["encrypted_data"] as? [String: Any])
        let derivation = try #require(encrypted["key_derivation"] as? [String: String])
        let key2 = DeepStressModelCrypto.hkdf(
            try Self.hex(values["session_key_hex"]),
            salt: Array(try #require(Data(base64Encoded: derivation["salt"] ?? ""))),
            info: Array("dataset_encryption".utf8), length: 32)
        #expect(key2 == (try Self.hex(values["hkdf_derived_aes_key_hex"])))
        let plaintext = try DeepStressModelCrypto.cbcDecrypt(
            Array(try #require(Data(base64Encoded: encrypted["data"] as? String ?? ""))), key: key2,
            iv: Array(try #require(Data(base64Encoded: encrypted["iv"] as? String ?? ""))))
        #expect(plaintext == (try Self.bytes("offline_package_plain.json")))

        // The legacy check value: Python's json.dumps(sort_keys, ensure_ascii) of the dataset + timestamp + API key.
        let object = try JSONSerialization.jsonObject(with: Data(plaintext))
        let canonical = PythonJSON.encode(Self.sorted(object), ensureASCII: true)
        let signature = Array(
            SHA256.hash(
                data: Array(canonical.utf8) + Array((dataset["timestamp"] as? String ?? "").utf8)
                    + Array(Self.apiKey.utf8))
        ).hexEncoded
        #expect(signature == dataset["user_signature"] as? String)
        #expect(canonical.hasPrefix(try #require(values["user_signature_input_prefix"] as? String)))
    }

    /// A JSONSerialization value with every object's keys sorted, as ordered pairs for ``PythonJSON`` (the dataset
    /// holds strings, integers, objects and arrays only).
    static func sorted(_ value: Any) -> Any {
        switch value {
        case let object as [String: Any]:
            return PythonJSON.Object(object.keys.sorted().map { ($0, sorted(object[$0] as Any)) })
        case let array as [Any]: return array.map(sorted)
        case let text as String: return text
        case let number as NSNumber:
            return "\(number)".contains(".") ? number.doubleValue as Any : number.int64Value as Any
        default: return value
        }
    }

    @Test(
        "a package this server builds opens with an independent client implementation",
        .enabled(if: ExternalTools.hasPythonPackages))
    func packageOpensInPython() async throws {
        let plaintext = Array(
            #"{"name": "n", "version": "v1", "description": "d", "data": [{"id": 1, "text": "你好", "label": 0, "metadata": {}}]}"#
                .utf8)
        let secrets = try DeepStressModelCrypto.PackageSecrets.generate(random: SystemRandomSource())
        let package = try DeepStressModelCrypto.package(
            dataset: plaintext, userSignatureInput: plaintext, apiKey: Self.apiKey,
            metadata: .init(
                datasetID: 1, datasetName: "n", datasetVersion: "v1", createdAt: 1_795_394_432,
                expiresAt: 1_797_986_432),
            secrets: secrets, timestampMilliseconds: 1_795_394_432_847)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(package)) as? [String: Any])
        let metadata = try #require(object["metadata"] as? [String: Any])
        #expect(
            metadata["package_format"] as? String == "4.0"
                && metadata["created_at"] as? String == "2026-11-23T00:40:32Z")
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("package-\(UUID().uuidString).json")
        try Data(package).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let opened = try await ExternalTools.run(
            ExternalTools.python,
            [ExternalTools.pythonScripts.appendingPathComponent("dsm_package.py").path, "open", file.path, Self.apiKey])
        #expect(opened == String(decoding: plaintext, as: UTF8.self))
        await #expect(throws: ExternalTools.ToolFailure.self) {
            try await ExternalTools.run(
                ExternalTools.python,
                [
                    ExternalTools.pythonScripts.appendingPathComponent("dsm_package.py").path, "open", file.path,
                    "another-api-key-0123456789abcdefghijkl",
                ])
        }
    }

    @Test("PythonJSON writes what json.dumps writes")
    func pythonJSON() {
        let value = PythonJSON.Object([
            ("b", [1, 2.5, "x/y", true] as [Any]), ("a", PythonJSON.Object([("é", "\"q\"\n")])), ("c", [] as [Any]),
        ])
        #expect(PythonJSON.encode(value) == #"{"b": [1, 2.5, "x/y", true], "a": {"é": "\"q\"\n"}, "c": []}"#)
        #expect(PythonJSON.encode(value, ensureASCII: true).contains(#"{"\u00e9": "#))
        #expect(
            PythonJSON.encode(PythonJSON.Object([("k", [1] as [Any])]), indent: 2) == "{\n  \"k\": [\n    1\n  ]\n}")
    }
}
