import Crypto
import ServiceKit

/// A signed device request as the gateway received it (docs/SIGNING.md).
struct SignedRequest: Sendable {
    enum Version: Int, Sendable {
        /// HMAC-SHA256(secret, device_id + request_time + nonce + raw body).
        case v1 = 1
        /// HMAC-SHA256(secret, METHOD \n PATH \n QUERY \n request_time \n nonce \n hex(SHA-256(body))).
        case v2 = 2
    }

    var version: Version
    var machineID: String
    /// `X-Request-Time` exactly as sent.
    var requestTime: String
    var nonce: String
    /// `X-Signature`, hex.
    var signature: String
    var method: String
    var path: String
    var query: String
    /// v1 only: the raw body.
    var body: [UInt8]
    /// v2 only: SHA-256 of the raw body.
    var bodySHA256: [UInt8]

    /// The bytes the client signed.
    var message: [UInt8] {
        switch version {
        case .v1:
            return Array((machineID + requestTime + nonce).utf8) + body
        case .v2:
            let lines = [method.uppercased(), path, query, requestTime, nonce, bodySHA256.hexEncoded]
            return Array(lines.joined(separator: "\n").utf8)
        }
    }

    /// The signature a holder of `secret` computes: lowercase hex HMAC-SHA256 keyed with the secret's UTF-8 bytes.
    static func sign(_ message: [UInt8], secret: String) -> String {
        Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: Array(secret.utf8)))).hexEncoded
    }
}

/// The checks on a signed request that need no storage: formats and the time window. Order and codes are part of
/// the contract (docs/SIGNING.md).
struct SignaturePolicy: Sendable {
    /// Accepted distance between `X-Request-Time` and the server clock.
    var window: Duration = .seconds(300)

    /// How long a nonce is remembered: a request is acceptable for `2 × window` after the earliest moment it could be.
    var nonceLifetime: Duration { window * 2 }

    func checkFormat(_ request: SignedRequest, now: Int64) throws(AuthError) -> [UInt8] {
        guard request.requestTime.utf8.count <= 12, let seconds = Int64(request.requestTime),
            request.requestTime.utf8.allSatisfy({ (0x30...0x39).contains($0) })
        else { throw .invalid("invalid_request_time", "X-Request-Time must be unix seconds (decimal digits).") }
        let nowSeconds = now / 1_000_000
        if seconds < nowSeconds - window.seconds {
            throw .unauthenticated(
                "request_time_stale", "X-Request-Time is more than \(window.seconds) s in the past; check the clock.")
        }
        if seconds > nowSeconds + window.seconds {
            throw .unauthenticated(
                "request_time_future", "X-Request-Time is more than \(window.seconds) s in the future; check the clock."
            )
        }
        guard (8...128).contains(request.nonce.utf8.count),
            request.nonce.utf8.allSatisfy({ (0x21...0x7e).contains($0) })
        else { throw .invalid("invalid_nonce", "X-Nonce must be 8 to 128 printable ASCII characters.") }
        guard request.signature.utf8.count == 64, let signature = [UInt8](hexEncoded: request.signature) else {
            throw .invalid("invalid_signature_format", "X-Signature must be 64 hexadecimal digits (HMAC-SHA256).")
        }
        if request.version == .v2, request.bodySHA256.count != 32 {
            throw .invalid("invalid_body_hash", "The body hash of a v2 request must be 32 bytes.")
        }
        return signature
    }

    /// Whether any of the secrets produced `signature` over the request, compared in constant time.
    func matches(_ request: SignedRequest, signature: [UInt8], secrets: [String]) -> Bool {
        let message = request.message
        var matched = false
        for secret in secrets {
            let key = SymmetricKey(data: Array(secret.utf8))
            // No early exit: the time taken does not reveal which secret matched.
            matched = HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: message, using: key) || matched
        }
        return matched
    }
}
