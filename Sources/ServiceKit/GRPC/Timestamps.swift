public import SwiftProtobuf

extension Google_Protobuf_Timestamp {
    /// From microseconds since the Unix epoch (how services store time).
    public init(microsecondsSinceEpoch value: Int64) {
        let seconds = value >= 0 ? value / 1_000_000 : (value - 999_999) / 1_000_000
        self.init(seconds: seconds, nanos: Int32((value - seconds * 1_000_000) * 1000))
    }

    /// Microseconds since the Unix epoch; nanoseconds below a microsecond are dropped.
    public var microsecondsSinceEpoch: Int64 { seconds * 1_000_000 + Int64(nanos / 1000) }
}
