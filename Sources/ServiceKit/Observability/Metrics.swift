import Metrics
import Prometheus

/// Process-wide swift-metrics backend with Prometheus text exposition.
public enum MetricsSetup {
    /// The registry every metric of this process lands in.
    static let registry = PrometheusCollectorRegistry()

    /// Call once at start; later calls are ignored by swift-metrics' bootstrap guard only in debug, so guard here.
    public static func bootstrap() {
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
    }

    /// The Prometheus text format (version 0.0.4) of every metric.
    public static func exposition() -> [UInt8] {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }
}
