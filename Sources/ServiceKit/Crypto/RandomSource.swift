/// Where secrets, codes and nonces get their randomness; injected so tests can be exact.
public protocol RandomSource: Sendable {
    func bytes(_ count: Int) -> [UInt8]
}

extension RandomSource {
    /// A uniform integer in `0..<upperBound` (rejection sampling, no modulo bias).
    public func uniform(below upperBound: Int) -> Int {
        precondition(upperBound > 0 && upperBound <= 256)
        let limit = 256 - 256 % upperBound
        while true {
            for byte in bytes(16) where Int(byte) < limit { return Int(byte) % upperBound }
        }
    }
}

/// The operating system's cryptographically secure generator (getrandom on Linux).
public struct SystemRandomSource: RandomSource {
    public init() {}

    /// Eight bytes per call to the system's generator (one `getrandom` each), not one call per byte.
    public func bytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        var bytes = [UInt8](repeating: 0, count: count)
        for start in stride(from: 0, to: count, by: 8) {
            let word: UInt64 = generator.next()
            for index in start..<min(start + 8, count) {
                bytes[index] = UInt8(truncatingIfNeeded: word >> (8 * (index - start)))
            }
        }
        return bytes
    }
}
