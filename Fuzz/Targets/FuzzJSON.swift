import UntrustedInput

/// JSON bodies: the parser never traps, is linear, and what it accepts survives a round trip through its canonical
/// text; typed field access never traps either.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let input = bytes(data, count)
    guard let value = try? JSONValue.parse(input) else { return 0 }
    let again = try? JSONValue.parse(Array(value.canonicalText.utf8))
    require(again == value, "canonical text does not parse back to the same value")
    if case .object(let fields) = value {
        let object = JSONObject(fields: fields)
        for name in fields.keys {
            _ = try? object.optionalString(name)
            _ = try? object.optionalDouble(name)
            _ = try? object.optionalInt64(name)
            _ = try? object.optionalInt32(name)
            _ = try? object.optionalBool(name)
            _ = try? object.optionalObject(name)
            _ = try? object.optionalObjects(name)
            _ = try? object.optionalStrings(name)
            _ = try? object.jsonText(name)
            _ = try? object.optionalDate(name)
        }
        _ = object.remainder(excluding: [])
    }
    _ = try? JSONObject.parse(input)
    return 0
}
