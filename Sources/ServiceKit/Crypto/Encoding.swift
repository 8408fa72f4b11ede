import Foundation
import UntrustedInput

extension Sequence<UInt8> {
    /// Lowercase hexadecimal, two digits per byte.
    public var hexEncoded: String {
        let digits = Array("0123456789abcdef".utf8)
        var output: [UInt8] = []
        output.reserveCapacity(underestimatedCount * 2)
        for byte in self {
            output.append(digits[Int(byte >> 4)])
            output.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// URL-safe base64 without padding (RFC 4648 §5), for tokens that travel in URLs and headers.
    public var base64URLEncoded: String { Base64URL.encode(self) }
}

extension Array where Element == UInt8 {
    /// Decodes hexadecimal (either case); nil unless every character is a hex digit and the length is even.
    public init?(hexEncoded text: some StringProtocol) {
        guard let bytes = HexDigits.decode(text) else { return nil }
        self = bytes
    }

    /// Decodes URL-safe or standard base64, with or without padding: lenient, for what operators paste into
    /// configuration (a master key). Input from requests goes through `Base64URL.decodeCanonical` instead, which
    /// accepts one spelling per byte string.
    public init?(lenientBase64 text: some StringProtocol) {
        var standard = String(text).replacing("-", with: "+").replacing("_", with: "/")
        while standard.count % 4 != 0 { standard += "=" }
        guard let data = Data(base64Encoded: standard) else { return nil }
        self = Array(data)
    }
}

/// Compares two byte strings in time independent of where they differ.
public func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
    guard lhs.count == rhs.count else { return false }
    var difference: UInt8 = 0
    for index in lhs.indices { difference |= lhs[index] ^ rhs[index] }
    return difference == 0
}
