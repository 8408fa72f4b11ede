import Crypto
import Foundation
import ServiceKit
import TestSupport
import Testing
import UntrustedInput

@testable import AuthService

@Suite("Auth domain rules")
struct DomainTests {
    let hardware = String(repeating: "ab", count: 32)
    let gpu = String(repeating: "CD", count: 32)

    @Test("machine ids derive from both hashes: same hardware, same id; any change, a new id")
    func machineIDs() throws {
        let first = DeviceIdentity.machineID(
            hardwareHash: try DeviceIdentity.hardwareHash(hardware, field: "h"),
            gpuHash: try DeviceIdentity.hardwareHash(gpu, field: "g"))
        let again = DeviceIdentity.machineID(
            hardwareHash: try DeviceIdentity.hardwareHash(hardware.uppercased(), field: "h"),
            gpuHash: try DeviceIdentity.hardwareHash(gpu, field: "g"))
        let otherGPU = DeviceIdentity.machineID(
            hardwareHash: try DeviceIdentity.hardwareHash(hardware, field: "h"),
            gpuHash: String(repeating: "ef", count: 32))
        #expect(first == again)
        #expect(first != otherGPU)
        #expect(first.count == 32 && first.allSatisfy(\.isHexDigit))
        // Independently: first 16 bytes of SHA-256 over the documented input.
        let expected = Array(
            SHA256.hash(data: Array("leaderboard.machine-id.v1\n\(hardware)\n\(gpu.lowercased())".utf8)).prefix(16)
        ).hexEncoded
        #expect(first == expected)
    }

    @Test(
        "malformed hashes are refused with the field's own code",
        arguments: ["", "abc", String(repeating: "g", count: 64), String(repeating: "a", count: 200)])
    func malformedHashes(_ text: String) {
        #expect(throws: AuthError.self) { try DeviceIdentity.hardwareHash(text, field: "hardware_hash") }
        do {
            _ = try DeviceIdentity.hardwareHash(text, field: "gpu_hash")
        } catch {
            #expect(error.code == "invalid_gpu_hash")
        }
    }

    @Test("registration codes: 12 characters of the unambiguous alphabet, typed in any case with dashes")
    func registrationCodes() throws {
        let random = SystemRandomSource()
        for _ in 0..<200 {
            let code = RegistrationCode.generate(using: random)
            #expect(code.count == 12)
            #expect(code.allSatisfy { !"01OILU".contains($0) })
            #expect(try RegistrationCode.normalize(RegistrationCode.display(code).lowercased()) == code)
        }
        for bad in ["", "ABCD", "ABCD-EFGH-JKM0", "ABCD-EFGH-JKMNP", "ABCD EFGH JKM!"] {
            #expect(throws: AuthError.invalidRegistrationCode) { try RegistrationCode.normalize(bad) }
        }
    }

    @Test("email addresses: plain checks, domain lowercased, hostile text refused")
    func emails() throws {
        #expect(try EmailAddress.normalize(" Person@Example.ORG ") == "Person@example.org")
        for bad in ["", "a", "a@b", "@b.c", "a@.b", "a@b.", "a b@c.d", "a@b.c\r\nBcc: x@y.z", "<a@b.c>", "a@@b.c"] {
            #expect(throws: AuthError.self) { try EmailAddress.normalize(bad) }
        }
    }

    @Test("proof of work: only a real solution to our own unexpired challenge passes")
    func proofOfWork() throws {
        let pow = ProofOfWork(keyBytes: Array(repeating: 7, count: 32), difficulty: 10, lifetime: .seconds(600))
        let now: Int64 = 1_800_000_000_000_000
        let challenge = pow.issue(now: now, random: SystemRandomSource())
        let solution = ProofOfWork.solve(bytes: challenge.bytes, difficulty: challenge.difficulty)
        let checked = try pow.check(id: challenge.id, solution: solution, now: now)
        #expect(checked.bytes == challenge.bytes)

        var wrong = 0
        while ProofOfWork.leadingZeroBits(SHA256.hash(data: challenge.bytes + Array("x\(wrong)".utf8))) >= 10 {
            wrong += 1
        }
        #expect(throws: AuthError.self) { try pow.check(id: challenge.id, solution: "x\(wrong)", now: now) }
        #expect(throws: ProofOfWork.invalidChallenge) { try pow.check(id: "nonsense", solution: solution, now: now) }
        // A challenge with the difficulty byte lowered to 0 no longer carries our MAC.
        var bytes = Base64URL.decodeCanonical(challenge.id)!
        bytes[24] = 0
        #expect(throws: ProofOfWork.invalidChallenge) {
            try pow.check(id: bytes.base64URLEncoded, solution: solution, now: now)
        }
        // Other spellings of the same id (padding, the standard alphabet, different spare bits) are not ours: an id
        // used once cannot be spent again under another spelling.
        let canonical = challenge.id
        let last = canonical.last!
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        let spare = alphabet[(alphabet.firstIndex(of: last)! + 1) % 64]
        for respelled in [
            canonical + "=", canonical.replacing("-", with: "+").replacing("_", with: "/") + "+",
            String(canonical.dropLast()) + String(spare), " " + canonical,
        ] where respelled != canonical {
            #expect(throws: ProofOfWork.invalidChallenge) { try pow.check(id: respelled, solution: solution, now: now) }
        }
        // Another server's key does not validate ours.
        let other = ProofOfWork(keyBytes: Array(repeating: 8, count: 32), difficulty: 10, lifetime: .seconds(600))
        #expect(throws: ProofOfWork.invalidChallenge) {
            try other.check(id: challenge.id, solution: solution, now: now)
        }
        do {
            _ = try pow.check(id: challenge.id, solution: solution, now: now + 601_000_000)
            Issue.record("an expired challenge passed")
        } catch {
            #expect(error.code == "challenge_expired")
        }
    }

    @Test("signatures v1 and v2 match an independent implementation (Python hmac)")
    func signatureVectors() async throws {
        let secret = "lbd_QmFzZTY0VXJsU2VjcmV0S2V5Rm9yVGVzdHMxMjM0NTY3OA"
        let body = Array(#"{"framework":"vllm","tps":123.5}"#.utf8)
        for version in [SignedRequest.Version.v1, .v2] {
            let request = SignedRequest(
                version: version, machineID: "0123456789abcdef0123456789abcdef", requestTime: "1767225600",
                nonce: "7f3a9c1e7f3a9c1e7f3a9c1e7f3a9c1e", signature: "", method: "POST",
                path: "/api/v1/benchmarks/start",
                query: "b=2&a=1", body: body, bodySHA256: Array(SHA256.hash(data: body)))
            let ours = SignedRequest.sign(request.message, secret: secret)
            let python = try await ExternalTools.run(
                ExternalTools.python,
                [
                    ExternalTools.pythonScripts.appendingPathComponent("sign.py").path, secret, "\(version.rawValue)",
                    request.machineID, request.method, request.path, request.query, request.requestTime, request.nonce,
                ], input: Data(body))
            #expect(ours == python)
        }
    }

    @Test("the signature checks before storage: time window, nonce and signature formats")
    func signatureFormats() throws {
        let policy = SignaturePolicy()
        let now: Int64 = 1_767_225_600_000_000
        func request(
            time: String = "1767225600", nonce: String = "5f2b8c1e9d4a4c3b8e7f1a2b3c4d5e6f",
            signature: String = String(repeating: "0", count: 64), version: SignedRequest.Version = .v1
        ) -> SignedRequest {
            SignedRequest(
                version: version, machineID: "0123456789abcdef0123456789abcdef", requestTime: time, nonce: nonce,
                signature: signature, method: "GET", path: "/", query: "", body: [],
                bodySHA256: Array(repeating: 0, count: 32))
        }
        func code(_ request: SignedRequest) -> String? {
            do {
                _ = try policy.checkFormat(request, now: now)
                return nil
            } catch {
                return error.code
            }
        }
        #expect(code(request()) == nil)
        #expect(code(request(time: "1767225300")) == nil)  // exactly 300 s old: inside
        #expect(code(request(time: "1767225299")) == "request_time_stale")
        #expect(code(request(time: "1767225901")) == "request_time_future")
        #expect(code(request(time: "1767225600.5")) == "invalid_request_time")
        #expect(code(request(time: "-1")) == "invalid_request_time")
        #expect(code(request(nonce: "short")) == "invalid_nonce")
        #expect(code(request(nonce: "has space 123")) == "invalid_nonce")
        // v1 joins nonce and body without a separator, so its nonce has a fixed shape; v2 takes free text.
        #expect(code(request(nonce: "5F2B8C1E-9D4A-4C3B-8E7F-1A2B3C4D5E6F")) == nil)
        #expect(code(request(nonce: "abcdefgh1234")) == "invalid_nonce")
        #expect(code(request(nonce: "abcdefgh1234", version: .v2)) == nil)
        #expect(code(request(nonce: "has space 123", version: .v2)) == "invalid_nonce")
        #expect(code(request(signature: "xyz")) == "invalid_signature_format")
        #expect(code(request(signature: String(repeating: "g", count: 64))) == "invalid_signature_format")
    }

    @Test("secrets at rest: sealed under the master key, bound to their purpose")
    func masterKey() throws {
        let key = MasterKey(bytes: Array(repeating: 1, count: 32))
        let sealed = try key.seal(Array("lbd_secret".utf8), purpose: "device-secret:a")
        #expect(try key.open(sealed, purpose: "device-secret:a") == Array("lbd_secret".utf8))
        #expect(!sealed.hexEncoded.contains(Array("lbd_secret".utf8).hexEncoded))
        #expect(throws: (any Error).self) { try key.open(sealed, purpose: "device-secret:b") }
        #expect(throws: (any Error).self) {
            try MasterKey(bytes: Array(repeating: 2, count: 32)).open(sealed, purpose: "device-secret:a")
        }
        #expect(key.fingerprint != MasterKey(bytes: Array(repeating: 2, count: 32)).fingerprint)
    }

    @Test("a key wrapped for a device opens only with that device's secret and context")
    func keyWrap() throws {
        let material = Array(repeating: UInt8(9), count: 32)
        let wrapped = try KeyWrap.wrap(material, secret: "lbd_one", context: "dataset:v1", random: SystemRandomSource())
        #expect(try wrapped.unwrap(secret: "lbd_one") == material)
        #expect(throws: (any Error).self) { try wrapped.unwrap(secret: "lbd_two") }
    }

    @Test("permissions: admin implies write implies read")
    func permissions() {
        let key = APIKeyRecord(
            id: "key_1", name: "n", prefix: "p", secretHash: "h", permissions: [.write], rateLimitPerMinute: 1,
            createdAt: 0)
        #expect(key.grants(.read) && key.grants(.write) && !key.grants(.admin))
    }
}

@Suite("docs/SIGNING.md")
struct SigningDocumentTests {
    @Test("the worked example's signatures are what the server computes")
    func workedExample() throws {
        let document = try TestEnvironment.repositoryFile("docs/SIGNING.md")
        var values: [String: String] = [:]
        for line in document.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":"), !line.hasPrefix(" "), !line.hasPrefix("|") else { continue }
            values[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let secret = try #require(values["secret"])
        let body = Array(try #require(values["body"]).utf8)
        #expect(Array(SHA256.hash(data: body)).hexEncoded == values["body_sha256"])
        func request(_ version: SignedRequest.Version, method: String, path: String, query: String, body: [UInt8])
            throws -> SignedRequest
        {
            SignedRequest(
                version: version, machineID: try #require(values["device_id"]),
                requestTime: try #require(values["request_time"]),
                nonce: try #require(values["nonce"]), signature: "", method: method, path: path, query: query,
                body: body,
                bodySHA256: Array(SHA256.hash(data: body)))
        }
        let path = try #require(values["path"])
        let query = try #require(values["query"])
        let method = try #require(values["method"])
        #expect(
            SignedRequest.sign(
                try request(.v1, method: method, path: path, query: query, body: body).message, secret: secret)
                == values["v1 signature"])
        #expect(
            SignedRequest.sign(
                try request(.v2, method: method, path: path, query: query, body: body).message, secret: secret)
                == values["v2 signature"])
        #expect(
            SignedRequest.sign(
                try request(.v2, method: "GET", path: "/api/v1/devices/status", query: "", body: []).message,
                secret: secret) == values["v2 empty GET"])
    }
}
