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

    public func bytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }
}
