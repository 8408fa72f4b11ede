import Foundation
import Metrics
import Prometheus
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Process-wide swift-metrics backend with Prometheus text exposition.
public enum MetricsSetup {
    /// The registry every metric of this process lands in.
    static let registry = PrometheusCollectorRegistry()

    /// Call once at start (swift-metrics allows one bootstrap per process). Hummingbird's HTTP metrics get
    /// Prometheus names (its dotted OpenTelemetry names are not valid in the text format).
    public static func bootstrap(version: String = "", targets: String = "") {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.nameAndLabelSanitizer = { name, labels in
            (httpNames[name] ?? prometheusName(name), labels.map { (httpLabels[$0.0] ?? prometheusName($0.0), $0.1) })
        }
        factory.durationHistogramBuckets["http.server.request.duration"] = MetricFamily.latencyBuckets
        MetricsSystem.bootstrap(factory)
        MetricFamilies.buildInfo.gauge(version, targets).set(1)
        ProcessMetrics.shared.update()
    }

    static let httpNames = [
        "hb.requests": "http_server_requests_total",
        "http.server.request.duration": "http_server_request_duration_seconds",
        "hb.request.errors": "http_server_request_errors_total",
        "http.server.active_requests": "http_server_active_requests",
    ]
    static let httpLabels = [
        "http.route": "route", "http.request.method": "method", "http.response.status_code": "status",
        "error.type": "status",
    ]

    /// `[a-zA-Z0-9_:]` only; anything else becomes `_`.
    static func prometheusName(_ name: String) -> String {
        String(name.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == ":") ? $0 : "_" })
    }

    /// The Prometheus text format (version 0.0.4) of every metric, process figures read now.
    public static func exposition() -> [UInt8] {
        ProcessMetrics.shared.update()
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }
}

/// The process's CPU time, memory, threads and file descriptors, read from `/proc/self` at each scrape (Linux; on
/// other systems these stay at zero).
final class ProcessMetrics: Sendable {
    static let shared = ProcessMetrics()
    private let reportedCPU = Mutex<Double>(0)  // what process_cpu_seconds_total already counts; scrapes race

    func update() {
        #if os(Linux)
            guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return }
            // Fields after "pid (comm)": state is field 3, so field n sits at index n - 3.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            func field(_ number: Int) -> Double { fields.count > number - 3 ? Double(fields[number - 3]) ?? 0 : 0 }
            let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
            let cpu = (field(14) + field(15)) / ticks
            let delta = reportedCPU.withLock { reported -> Double in
                defer { reported = max(reported, cpu) }
                return cpu - reported
            }
            if delta > 0 { MetricFamilies.processCPU.counter().increment(by: delta) }
            MetricFamilies.processThreads.gauge().set(field(20))
            MetricFamilies.processVirtual.gauge().set(field(23))
            MetricFamilies.processResident.gauge().set(field(24) * Double(sysconf(Int32(_SC_PAGESIZE))))
            if let bootTime = Self.bootTime {
                MetricFamilies.processStart.gauge().set(bootTime + field(22) / ticks)
            }
            let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0
            MetricFamilies.processOpenFDs.gauge().set(Double(open))
            var limit = rlimit()
            if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
                MetricFamilies.processMaxFDs.gauge().set(Double(limit.rlim_cur))
            }
        #endif
    }

    /// The `btime` line of /proc/stat: when the machine booted, in seconds since the epoch.
    static let bootTime: Double? = {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8) else { return nil }
        return text.split(separator: "\n").first { $0.hasPrefix("btime ") }
            .flatMap { Double($0.dropFirst(6).trimmingCharacters(in: .whitespaces)) }
    }()
}
