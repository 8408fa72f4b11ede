/// The headers of a signed device request (docs/SIGNING.md), checked for form: everything that can be judged
/// without the device's secret, the nonce store or the body. The gateway checks them before it reads a body, and
/// AuthService checks them again as the authority.
public struct SignatureHeaders: Sendable, Equatable {
    public enum Version: Int, Sendable {
        /// HMAC-SHA256(secret, device_id ‖ request_time ‖ nonce ‖ raw body).
        case v1 = 1
        /// HMAC-SHA256(secret, METHOD \n PATH \n QUERY \n request_time \n nonce \n hex(SHA-256(body))).
        case v2 = 2
    }

    public var version: Version
    /// `X-Device-ID`: 32 lowercase hex digits.
    public var deviceID: String
    /// `X-Request-Time` exactly as sent (it is part of the signed message) and its value.
    public var requestTime: String
    public var seconds: Int64
    /// `X-Nonce`.
    public var nonce: String
    /// `X-Signature`, decoded: 32 bytes.
    public var signature: [UInt8]

    /// Reads the five headers (`versionHeader` nil means v1) and, given `now` (unix seconds), checks the request time
    /// is within ``window`` of it. Order of checks and codes are part of the contract (docs/SIGNING.md).
    public static func parse(
        deviceID: String?, requestTime: String?, nonce: String?, signature: String?, versionHeader: String?,
        now: Int64? = nil
    ) throws(InputError) -> SignatureHeaders {
        guard let deviceID, let requestTime, let nonce, let signature else {
            throw InputError(
                "missing_signature",
                "This needs a signed request: X-Device-ID, X-Request-Time, X-Nonce and X-Signature.")
        }
        let version: Version
        switch versionHeader {
        case nil, "1": version = .v1
        case "2": version = .v2
        default: throw InputError("unsupported_signature_version", "X-Signature-Version must be 1 or 2.")
        }
        guard let seconds = parseTime(requestTime) else {
            throw InputError("invalid_request_time", "X-Request-Time must be unix seconds (decimal digits).")
        }
        if let now { try checkTime(seconds, now: now) }
        try checkNonce(nonce, version: version)
        guard signature.utf8.count == 64, let decoded = HexDigits.decode(signature) else {
            throw InputError("invalid_signature_format", "X-Signature must be 64 hexadecimal digits (HMAC-SHA256).")
        }
        return SignatureHeaders(
            version: version, deviceID: deviceID, requestTime: requestTime, seconds: seconds, nonce: nonce,
            signature: decoded)
    }

    /// Accepted distance, in seconds, between `X-Request-Time` and the server clock.
    public static let window: Int64 = 300

    /// Whether a request time is within ``window`` of `now` (unix seconds): `request_time_stale` or
    /// `request_time_future` (401 at the gateway) when it is not.
    public static func checkTime(_ seconds: Int64, now: Int64) throws(InputError) {
        if seconds < now - window {
            throw InputError(
                "request_time_stale", "X-Request-Time is more than \(window) s in the past; check the clock.")
        }
        if seconds > now + window {
            throw InputError(
                "request_time_future", "X-Request-Time is more than \(window) s in the future; check the clock.")
        }
    }

    /// Unix seconds: 1 to 12 ASCII digits.
    public static func parseTime(_ text: String) -> Int64? {
        let utf8 = text.utf8
        guard (1...12).contains(utf8.count), utf8.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
        return utf8.reduce(Int64(0)) { $0 * 10 + Int64($1 - 0x30) }
    }

    /// A v2 nonce is 8–128 printable ASCII characters. A v1 nonce must have a fixed shape — 32 hex digits, or a UUID
    /// (8-4-4-4-12 hex digits) — because the v1 message joins nonce and body without a separator: with a free-form
    /// nonce, characters could be moved between the two to make a different request with the same signature.
    public static func checkNonce(_ nonce: String, version: Version) throws(InputError) {
        let utf8 = Array(nonce.utf8)
        switch version {
        case .v2:
            guard (8...128).contains(utf8.count), utf8.allSatisfy({ (0x21...0x7e).contains($0) }) else {
                throw InputError("invalid_nonce", "X-Nonce must be 8 to 128 printable ASCII characters.")
            }
        case .v1:
            guard isHexNonce(utf8) || isUUID(utf8) else {
                throw InputError(
                    "invalid_nonce",
                    "A version 1 X-Nonce must be 32 hexadecimal digits or a UUID (8-4-4-4-12 hexadecimal digits).")
            }
        }
    }

    static func isHexNonce(_ utf8: [UInt8]) -> Bool {
        utf8.count == 32 && utf8.allSatisfy { HexDigits.value(of: $0) != nil }
    }

    static func isUUID(_ utf8: [UInt8]) -> Bool {
        guard utf8.count == 36 else { return false }
        for (position, byte) in utf8.enumerated() {
            if [8, 13, 18, 23].contains(position) {
                guard byte == UInt8(ascii: "-") else { return false }
            } else {
                guard HexDigits.value(of: byte) != nil else { return false }
            }
        }
        return true
    }
}
