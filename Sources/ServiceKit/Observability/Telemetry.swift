import Prometheus

/// A metric family of this process: a name, its help text and its label names, fixed in one place
/// (``MetricFamilies``) so dashboards, alert rules and their tests refer to names that exist.
///
/// Families write straight into the process's Prometheus registry (``MetricsSetup``), with HELP lines, whether or
/// not swift-metrics was bootstrapped (tests run servers without it). Every series of a family has the same label
/// names; the values must come from small closed sets (method names, status codes, reason codes), never from input.
public struct MetricFamily: Sendable {
    public enum Kind: Sendable { case counter, gauge, histogram }

    public let name: String
    public let help: String
    public let labels: [String]
    public let kind: Kind

    public init(_ name: String, _ kind: Kind, labels: [String] = [], help: String) {
        self.name = name
        self.kind = kind
        self.labels = labels
        self.help = help
    }

    var descriptor: MetricNameDescriptor { MetricNameDescriptor(metricName: name, unitName: "", helpText: help) }

    func pairs(_ values: [String]) -> [(String, String)] {
        precondition(values.count == labels.count, "\(name) takes labels \(labels)")
        return Array(zip(labels, values))
    }

    /// The counter with these label values (in ``labels`` order).
    public func counter(_ values: String...) -> MetricCounter {
        precondition(kind == .counter, "\(name) is not a counter")
        return MetricCounter(MetricsSetup.registry.makeCounter(descriptor: descriptor, labels: pairs(values)))
    }

    /// The gauge with these label values.
    public func gauge(_ values: String...) -> MetricGauge {
        precondition(kind == .gauge, "\(name) is not a gauge")
        return MetricGauge(MetricsSetup.registry.makeGauge(descriptor: descriptor, labels: pairs(values)))
    }

    /// The latency histogram with these label values (seconds, ``MetricFamily/latencyBuckets``).
    public func histogram(_ values: String...) -> MetricHistogram {
        precondition(kind == .histogram, "\(name) is not a histogram")
        return MetricHistogram(
            MetricsSetup.registry.makeDurationHistogram(
                descriptor: descriptor, labels: pairs(values), buckets: Self.latencyBuckets))
    }

    /// From a millisecond to ten seconds: in-process calls take microseconds, a slow board rebuild seconds.
    static let latencyBuckets: [Duration] = [
        .milliseconds(1), .microseconds(2500), .milliseconds(5), .milliseconds(10), .milliseconds(25),
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
        .milliseconds(2500), .seconds(5), .seconds(10),
    ]
}

public struct MetricCounter: Sendable {
    let base: Counter
    init(_ base: Counter) { self.base = base }
    public func increment(by amount: Int64 = 1) { base.increment(by: amount) }
    public func increment(by amount: Double) { base.increment(by: amount) }
}

public struct MetricGauge: Sendable {
    let base: Gauge
    init(_ base: Gauge) { self.base = base }
    public func set(_ value: Double) { base.set(to: value) }
    public func increment(by amount: Double = 1) { base.increment(by: amount) }
    public func decrement(by amount: Double = 1) { base.decrement(by: amount) }
}

public struct MetricHistogram: Sendable {
    let base: DurationHistogram
    init(_ base: DurationHistogram) { self.base = base }
    public func record(_ duration: Duration) { base.record(duration) }

    /// Runs `body` and records how long it took, whether it returned or threw.
    public func time<T>(_ body: () async throws -> T) async rethrows -> T {
        let start = ContinuousClock.now
        defer { base.record(ContinuousClock.now - start) }
        return try await body()
    }
}
