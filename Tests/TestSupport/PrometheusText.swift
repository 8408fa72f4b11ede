import ServiceKit

/// A scrape in the Prometheus text format, read into samples: enough to ask "does this series exist, and what is
/// its value" in tests (label values with escaped quotes are not produced by our code and not handled).
public struct PrometheusText: Sendable {
    public struct Sample: Sendable {
        public var name: String
        public var labels: [String: String]
        public var value: Double
    }

    public let samples: [Sample]

    public init(_ text: String) {
        var samples: [Sample] = []
        for line in text.split(separator: "\n") where !line.hasPrefix("#") && !line.isEmpty {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                continue
            }
            let series = line[..<space]
            var labels: [String: String] = [:]
            var name = String(series)
            if let open = series.firstIndex(of: "{"), series.hasSuffix("}") {
                name = String(series[..<open])
                let inner = series[series.index(after: open)..<series.index(before: series.endIndex)]
                for pair in inner.split(separator: ",") {
                    let parts = pair.split(separator: "=", maxSplits: 1)
                    guard parts.count == 2 else { continue }
                    labels[String(parts[0])] = String(parts[1].dropFirst().dropLast())
                }
            }
            samples.append(Sample(name: name, labels: labels, value: value))
        }
        self.samples = samples
    }

    /// This process's own registry, now.
    public static func local() -> PrometheusText {
        PrometheusText(String(decoding: MetricsSetup.exposition(), as: UTF8.self))
    }

    /// The sum over series of `name` whose labels include `labels` (0 when none).
    public func value(_ name: String, _ labels: [String: String] = [:]) -> Double {
        samples.filter { sample in sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value } }
            .reduce(0) { $0 + $1.value }
    }

    /// Metric family names present (histograms under their base name as well as `_bucket`, `_sum`, `_count`).
    public var names: Set<String> {
        var names = Set(samples.map(\.name))
        for name in names {
            for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) {
                names.insert(String(name.dropLast(suffix.count)))
            }
        }
        return names
    }
}
