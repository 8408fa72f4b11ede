import Crypto
import ServiceKit
import UntrustedInput

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

/// The checks on a signed request that need no storage: formats and the time window (the shared rules of
/// ``SignatureHeaders``, which the gateway also applies before reading a body). Order and codes are part of the
/// contract (docs/SIGNING.md).
struct SignaturePolicy: Sendable {
    /// Accepted distance between `X-Request-Time` and the server clock.
    var window: Duration { .seconds(SignatureHeaders.window) }

    /// How long a nonce is remembered: a request is acceptable for `2 × window` after the earliest moment it could be.
    var nonceLifetime: Duration { window * 2 }

    func checkFormat(_ request: SignedRequest, now: Int64) throws(AuthError) -> [UInt8] {
        do throws(InputError) {
            let headers = try SignatureHeaders.parse(
                deviceID: request.machineID, requestTime: request.requestTime, nonce: request.nonce,
                signature: request.signature, versionHeader: String(request.version.rawValue), now: now / 1_000_000)
            if request.version == .v2, request.bodySHA256.count != 32 {
                throw InputError("invalid_body_hash", "The body hash of a v2 request must be 32 bytes.")
            }
            return headers.signature
        } catch {
            switch error.code {
            case "request_time_stale", "request_time_future": throw .unauthenticated(error.code, error.detail)
            default: throw .invalid(error.code, error.detail)
            }
        }
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
