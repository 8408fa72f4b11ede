import UntrustedInput

/// Base64url, hex and page cursors: never trap; the canonical base64url decoder accepts exactly one spelling of
/// each byte string; cursors round-trip.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEncodings(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let input = bytes(data, count)
    let string = text(input)
    if let decoded = Base64URL.decodeCanonical(string) {
        require(Base64URL.encode(decoded) == string, "a second spelling of the same bytes was accepted")
    }
    require(Base64URL.decodeCanonical(Base64URL.encode(input)) == input, "encode then decode changed the bytes")
    if let decoded = HexDigits.decode(string) {
        require(decoded.count * 2 == string.utf8.count, "hex length")
    }
    if let parts = PageCursor.parts(of: string) {
        require(PageCursor.encode(parts) == string, "a cursor does not round-trip")
    }
    return 0
}
