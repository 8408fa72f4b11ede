import UntrustedInput

/// Addresses, networks and forwarding headers: never trap; an address prints as text that parses back to itself;
/// an untrusted peer is always its own client.
let resolverXFF = ClientAddressResolver(
    trustedProxies: ["10.0.0.0/8", "fd00::/8", "127.0.0.1"].compactMap(IPNetwork.parse), header: .xForwardedFor)
let resolverForwarded = ClientAddressResolver(trustedProxies: resolverXFF.trustedProxies, header: .forwarded)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzClientAddress(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let string = text(bytes(data, count))
    if let address = IPAddress.parse(string) {
        require(IPAddress.parse(address.description) == address, "\(address) does not parse back")
        _ = address.limitKey
    }
    if let network = IPNetwork.parse(string) { _ = network.contains(network.address) }
    // First line: the peer; the rest: header values.
    let lines = string.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    guard let peer = lines.first else { return 0 }
    let values = Array(lines.dropFirst())
    for resolver in [resolverXFF, resolverForwarded] {
        let client = resolver.resolve(peer: peer, headerValues: values)
        if let peerAddress = IPAddress.parse(peer),
            !resolver.trustedProxies.contains(where: { $0.contains(peerAddress) })
        {
            require(client == peerAddress, "an untrusted peer's header was believed")
        }
    }
    return 0
}
