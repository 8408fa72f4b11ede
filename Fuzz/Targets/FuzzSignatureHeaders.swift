import UntrustedInput

/// Signature headers: never traps; accepted headers have the documented forms (v1 nonces of fixed shape).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSignatureHeaders(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    // Five newline-separated fields: device id, time, nonce, signature, version ("-" for absent).
    let fields = text(bytes(data, count)).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    guard fields.count == 5 else { return 0 }
    guard
        let parsed = try? SignatureHeaders.parse(
            deviceID: fields[0], requestTime: fields[1], nonce: fields[2], signature: fields[3],
            versionHeader: fields[4] == "-" ? nil : fields[4])
    else { return 0 }
    require(parsed.signature.count == 32, "a signature of \(parsed.signature.count) bytes")
    require(parsed.seconds >= 0 && parsed.seconds < 1_000_000_000_000, "time \(parsed.seconds)")
    if parsed.version == .v1 { require([32, 36].contains(parsed.nonce.utf8.count), "a v1 nonce of free length") }
    return 0
}
