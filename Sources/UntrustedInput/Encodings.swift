/// Hexadecimal digits.
public enum HexDigits {
    /// The value of one ASCII hex digit (either case), or nil.
    public static func value(of byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// Decodes hexadecimal (either case); nil unless every character is a hex digit and the length is even.
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count / 2)
        var index = 0
        while index + 1 < utf8.count {
            guard let high = value(of: utf8[index]), let low = value(of: utf8[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    /// Whether `text` is exactly `count` lowercase hex digits (ids such as a machine id).
    public static func isLowercase(_ text: some StringProtocol, count: Int) -> Bool {
        text.utf8.count == count
            && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }
}

/// URL-safe base64 without padding (RFC 4648 §5), the one form our tokens and cursors travel in.
public enum Base64URL {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        let input = Array(bytes)
        var output: [UInt8] = []
        output.reserveCapacity((input.count + 2) / 3 * 4)
        var index = 0
        while index < input.count {
            let first = input[index]
            let second = index + 1 < input.count ? input[index + 1] : 0
            let third = index + 2 < input.count ? input[index + 2] : 0
            output.append(alphabet[Int(first >> 2)])
            output.append(alphabet[Int((first & 0x03) << 4 | second >> 4)])
            if index + 1 < input.count { output.append(alphabet[Int((second & 0x0F) << 2 | third >> 6)]) }
            if index + 2 < input.count { output.append(alphabet[Int(third & 0x3F)]) }
            index += 3
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Decodes the canonical form only: URL-safe alphabet, no padding, no whitespace, and zero bits where the last
    /// character has bits to spare. So each byte string has exactly one accepted spelling, and a token used once
    /// cannot be presented again in another spelling (standard alphabet, padding, different spare bits).
    public static func decodeCanonical(_ text: some StringProtocol) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 4 != 1 else { return nil }
        var values: [UInt8] = []
        values.reserveCapacity(utf8.count)
        for character in utf8 {
            guard let value = sextet(character) else { return nil }
            values.append(value)
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count * 3 / 4)
        var index = 0
        while index < values.count {
            let remaining = values.count - index
            let a = values[index]
            let b = values[index + 1]
            bytes.append(a << 2 | b >> 4)
            if remaining == 2 {
                guard b & 0x0F == 0 else { return nil }
                break
            }
            let c = values[index + 2]
            bytes.append((b & 0x0F) << 4 | c >> 2)
            if remaining == 3 {
                guard c & 0x03 == 0 else { return nil }
                break
            }
            let d = values[index + 3]
            bytes.append((c & 0x03) << 6 | d)
            index += 4
        }
        return bytes
    }

    private static func sextet(_ character: UInt8) -> UInt8? {
        switch character {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): character - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): character - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): character - UInt8(ascii: "0") + 52
        case UInt8(ascii: "-"): 62
        case UInt8(ascii: "_"): 63
        default: nil
        }
    }
}
