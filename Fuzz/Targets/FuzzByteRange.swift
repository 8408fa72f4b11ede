import UntrustedInput

/// `Range` headers: never traps; an accepted range is non-empty and inside the representation.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzByteRange(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let input = bytes(data, count)
    guard input.count >= 8 else { return 0 }
    // The first eight bytes choose the size, sometimes small, sometimes near the Int64 limit.
    let raw = input.prefix(8).reduce(Int64(0)) { $0 << 8 | Int64($1) }
    let size = input[0] & 1 == 0 ? raw & 0xFFFF : raw
    guard let range = try? ByteRange.parse(text(input.dropFirst(8)), size: size) else { return 0 }
    require(!range.isEmpty && range.lowerBound >= 0 && range.upperBound <= size, "\(range) outside 0..<\(size)")
    return 0
}
