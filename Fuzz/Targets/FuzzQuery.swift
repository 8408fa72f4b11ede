import UntrustedInput

/// Query strings and declared parameters: never trap; a parsed query's canonical form parses back to the same
/// values.
let spec = QuerySpec([
    .init("limit", .integer(1...200), code: "invalid_limit"), .init("cursor", .cursor),
    .init("framework", .text(maximumLength: 64)), .init("model_params_min", .number(0...100_000)),
    .init("include_decided", .flag), .init("sort", .choice(["score", "tps", "latency"])),
])

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzQuery(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let string = text(bytes(data, count))
    _ = try? QueryParameters.parse(string)
    guard let parsed = try? spec.parse(string) else { return 0 }
    let again = try? spec.parse(parsed.canonical)
    require(again == parsed, "the canonical query parses to other values")
    _ = parsed.integer("limit")
    _ = parsed.number("model_params_min")
    _ = parsed.flag("include_decided")
    return 0
}
