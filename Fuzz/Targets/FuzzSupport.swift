// Shared by every fuzz target (compiled into each, with Sources/UntrustedInput, by scripts/fuzz).

/// The fuzzer's bytes as an array.
func bytes(_ data: UnsafePointer<UInt8>, _ count: Int) -> [UInt8] {
    Array(UnsafeBufferPointer(start: data, count: count))
}

/// Text from the fuzzer's bytes, invalid UTF-8 repaired (headers and queries reach us as text).
func text(_ bytes: some Collection<UInt8>) -> String { String(decoding: bytes, as: UTF8.self) }

/// A property the parser must keep; breaking it is a finding like a crash.
func require(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("property broken: \(message())") }
}
