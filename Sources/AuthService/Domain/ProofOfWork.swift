import Crypto
import GRPCCore
import ServiceKit
import UntrustedInput

/// The self-hosted human check: a stateless, signed challenge whose solution costs about 2^difficulty hashes.
///
/// The challenge bytes are 16 random bytes, the expiry (unix seconds, 8 bytes big-endian) and the difficulty
/// (1 byte). The id carries those bytes and a 16-byte HMAC under a key derived from the master key, so any replica
/// can check a solution without storing the challenge; the nonce store makes each id usable once.
/// A solution is a string (1–64 printable ASCII characters) such that SHA-256(challenge bytes ‖ UTF-8(solution))
/// starts with `difficulty` zero bits.
struct ProofOfWork: Sendable {
    struct Challenge: Sendable, Equatable {
        var id: String
        var bytes: [UInt8]
        var difficulty: Int
        var expiresAt: Int64
    }

    /// Raw bytes: `SymmetricKey` is not `Sendable`.
    let keyBytes: [UInt8]
    let difficulty: Int
    let lifetime: Duration

    func issue(now: Int64, random: any RandomSource) -> Challenge {
        let expiresAt = now / 1_000_000 + lifetime.seconds
        var bytes = random.bytes(16)
        withUnsafeBytes(of: UInt64(expiresAt).bigEndian) { bytes.append(contentsOf: $0) }
        bytes.append(UInt8(difficulty))
        let id = (bytes + mac(bytes)).base64URLEncoded
        return Challenge(id: id, bytes: bytes, difficulty: difficulty, expiresAt: expiresAt * 1_000_000)
    }

    /// Checks the id is ours and unexpired and the solution meets its difficulty. Claiming it once is the caller's.
    func check(id: String, solution: String, now: Int64) throws(AuthError) -> Challenge {
        guard let decoded = Base64URL.decodeCanonical(id), decoded.count == 25 + 16 else { throw Self.invalidChallenge }
        let bytes = Array(decoded.prefix(25))
        guard constantTimeEqual(mac(bytes), Array(decoded.suffix(16))) else { throw Self.invalidChallenge }
        let expiresAt = bytes[16..<24].reduce(Int64(0)) { $0 << 8 | Int64($1) } * 1_000_000
        guard now < expiresAt else {
            throw AuthError(
                code: "challenge_expired", detail: "The challenge has expired; fetch a new one.",
                status: .failedPrecondition)
        }
        let difficulty = Int(bytes[24])
        guard (1...64).contains(solution.utf8.count), solution.utf8.allSatisfy({ (0x21...0x7e).contains($0) }),
            Self.leadingZeroBits(SHA256.hash(data: bytes + Array(solution.utf8))) >= difficulty
        else {
            throw AuthError.invalid(
                "invalid_pow_solution", "The proof-of-work solution is not valid for the challenge.")
        }
        return Challenge(id: id, bytes: bytes, difficulty: difficulty, expiresAt: expiresAt)
    }

    private func mac(_ bytes: [UInt8]) -> [UInt8] {
        Array(Array(HMAC<SHA256>.authenticationCode(for: bytes, using: SymmetricKey(data: keyBytes))).prefix(16))
    }

    static let invalidChallenge = AuthError.invalid(
        "invalid_challenge", "The challenge id is not one this server issued.")

    static func leadingZeroBits(_ digest: some Sequence<UInt8>) -> Int {
        var count = 0
        for byte in digest {
            if byte == 0 {
                count += 8
                continue
            }
            return count + byte.leadingZeroBitCount
        }
        return count
    }

    /// Finds a solution by counting up (what the verify page's script does); for tests (clients solve with the SDK's
    /// own `ProofOfWork`, which cannot depend on this module).
    static func solve(bytes: [UInt8], difficulty: Int) -> String {
        var counter = 0
        while true {
            let candidate = String(counter, radix: 36)
            if leadingZeroBits(SHA256.hash(data: bytes + Array(candidate.utf8))) >= difficulty { return candidate }
            counter += 1
        }
    }
}

extension Duration {
    /// Whole seconds.
    var seconds: Int64 { components.seconds }
}
