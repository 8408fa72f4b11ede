#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// An IPv4 or IPv6 address (IPv4-mapped IPv6 addresses are read as IPv4).
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    /// 4 bytes (IPv4) or 16 (IPv6).
    public let bytes: [UInt8]

    public var isIPv4: Bool { bytes.count == 4 }

    /// Parses a literal: `192.0.2.1`, `2001:db8::1`, optionally in brackets (`[2001:db8::1]`). Zone ids, ports and
    /// anything else are refused.
    public static func parse(_ text: some StringProtocol) -> IPAddress? {
        var literal = String(text)
        if literal.hasPrefix("["), literal.hasSuffix("]"), literal.utf8.count > 2 {
            literal = String(literal.dropFirst().dropLast())
        }
        guard (2...45).contains(literal.utf8.count),
            literal.utf8.allSatisfy({
                HexDigits.value(of: $0) != nil || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: ":")
            })
        else { return nil }
        var v4 = in_addr()
        if inet_pton(AF_INET, literal, &v4) == 1 {
            return IPAddress(bytes: withUnsafeBytes(of: &v4) { Array($0) })
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, literal, &v6) == 1 else { return nil }
        let bytes = withUnsafeBytes(of: &v6) { Array($0) }
        if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF {
            return IPAddress(bytes: Array(bytes[12..<16]))
        }
        return IPAddress(bytes: bytes)
    }

    public var description: String {
        if isIPv4 { return bytes.map(String.init).joined(separator: ".") }
        var groups: [String] = []
        for index in stride(from: 0, to: 16, by: 2) {
            groups.append(String(UInt16(bytes[index]) << 8 | UInt16(bytes[index + 1]), radix: 16))
        }
        return groups.joined(separator: ":")
    }

    /// The key rate limits count this address under: an IPv4 address as itself, an IPv6 address by its /64 (what a
    /// single subscriber is usually given, so a client cannot take a fresh address for each request).
    public var limitKey: String {
        if isIPv4 { return "ip:\(description)" }
        let network = IPAddress(bytes: Array(bytes[0..<8]) + Array(repeating: 0, count: 8))
        return "ip6:\(network.description)/64"
    }
}

/// A network in CIDR form (`10.0.0.0/8`, `fd00::/8`, or a single address).
public struct IPNetwork: Sendable, Hashable, CustomStringConvertible {
    public let address: IPAddress
    public let prefixLength: Int

    public static func parse(_ text: some StringProtocol) -> IPNetwork? {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress.parse(parts[0]) else { return nil }
        let width = address.bytes.count * 8
        guard parts.count == 2 else { return IPNetwork(address: address, prefixLength: width) }
        let digits = parts[1]
        guard (1...3).contains(digits.utf8.count), digits.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
            let length = Int(digits), length <= width
        else { return nil }
        return IPNetwork(address: address, prefixLength: length)
    }

    public func contains(_ candidate: IPAddress) -> Bool {
        guard candidate.bytes.count == address.bytes.count else { return false }
        var remaining = prefixLength
        for index in address.bytes.indices where remaining > 0 {
            let bits = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
            guard address.bytes[index] & mask == candidate.bytes[index] & mask else { return false }
            remaining -= bits
        }
        return true
    }

    public var description: String { "\(address)/\(prefixLength)" }
}

/// Which client a request comes from, when proxies stand in front of the gateway.
///
/// Forwarding headers are believed only from a trusted proxy, and only the one header the operator's proxies set:
/// the chain (header entries, then the peer) is walked from the right past trusted proxies, and the first address
/// that is not one is the client. An address a client wrote into the header itself is left of what its proxy
/// appended, so it is never reached while an untrusted hop stands between.
public struct ClientAddressResolver: Sendable {
    public enum Header: String, Sendable, CaseIterable {
        /// `X-Forwarded-For: client, proxy1, proxy2`.
        case xForwardedFor = "x-forwarded-for"
        /// `Forwarded: for=client, for="[2001:db8::1]:4711"` (RFC 7239).
        case forwarded = "forwarded"
    }

    public let trustedProxies: [IPNetwork]
    public let header: Header
    /// Most entries read from the header; longer chains are cut on the left.
    public static let maximumHops = 32

    public init(trustedProxies: [IPNetwork], header: Header = .xForwardedFor) {
        self.trustedProxies = trustedProxies
        self.header = header
    }

    /// The client's address: `peer` itself unless it is a trusted proxy; nil only when the peer is not an address
    /// (in-process tests).
    public func resolve(peer: String, headerValues: [String]) -> IPAddress? {
        guard let peerAddress = IPAddress.parse(peer) else { return nil }
        guard isTrusted(peerAddress) else { return peerAddress }
        var chain = entries(of: headerValues)
        if chain.count > Self.maximumHops { chain = Array(chain.suffix(Self.maximumHops)) }
        var client = peerAddress
        for entry in chain.reversed() {
            // An entry that is no address (`unknown`, an obfuscated name) ends the walk: nothing left of it can be
            // trusted.
            guard let address = entry else { break }
            client = address
            if !isTrusted(address) { break }
        }
        return client
    }

    func isTrusted(_ address: IPAddress) -> Bool { trustedProxies.contains { $0.contains(address) } }

    /// The client of every request `peer` sends, when no forwarding header can change who it is (the peer is no
    /// trusted proxy): a connection's early answers work it out once. Nil when headers decide, or when `peer` is not
    /// an address.
    public func fixedClient(peer: String) -> IPAddress? {
        guard let address = IPAddress.parse(peer), !isTrusted(address) else { return nil }
        return address
    }

    /// The addresses listed, left to right; nil for an entry that is not an address.
    func entries(of values: [String]) -> [IPAddress?] {
        let joined = values.joined(separator: ",")
        guard joined.utf8.count <= 8192 else { return [nil] }
        switch header {
        case .xForwardedFor:
            return joined.split(separator: ",").map { Self.address(in: $0.trimmingASCIISpaces()) }
        case .forwarded:
            return joined.split(separator: ",").map { element in
                for pair in element.split(separator: ";") {
                    let parts = pair.split(separator: "=", maxSplits: 1)
                    guard parts.count == 2, parts[0].trimmingASCIISpaces().lowercased() == "for" else { continue }
                    var value = parts[1].trimmingASCIISpaces()
                    if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 {
                        value = value.dropFirst().dropLast()
                    }
                    return Self.address(in: value)
                }
                return nil
            }
        }
    }

    /// An address, with an optional port (`192.0.2.1:443`, `[2001:db8::1]:443`).
    static func address(in text: Substring) -> IPAddress? {
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            return IPAddress.parse(text[text.startIndex...close])
        }
        if text.filter({ $0 == ":" }).count == 1, let colon = text.firstIndex(of: ":") {
            return IPAddress.parse(text[..<colon])
        }
        return IPAddress.parse(text)
    }
}

extension Substring {
    func trimmingASCIISpaces() -> Substring {
        var text = self
        while let first = text.first, first == " " || first == "\t" { text = text.dropFirst() }
        while let last = text.last, last == " " || last == "\t" { text = text.dropLast() }
        return text
    }
}
