import Foundation
import HTTPTypes
public import Hummingbird
public import ServiceKit

/// `/health/live`, `/health/ready` and (unless `metrics` is false) `/metrics`: never rate limited, never cached.
public enum OperationsRoutes {
    public static func add(to router: Router<GatewayRequestContext>, readiness: ReadinessProbe, metrics: Bool = true) {
        router.get("/health/live") { _, _ in
            jsonResponse(["status": "ok"], status: .ok)
        }
        router.get("/health/ready") { _, _ in
            let checks = await readiness.check()
            let ready = checks.allSatisfy(\.ready)
            let body: [String: Any] = [
                "status": ready ? "ready" : "not_ready",
                "checks": Dictionary(uniqueKeysWithValues: checks.map { ($0.name, $0.detail) }),
            ]
            return jsonResponse(body, status: ready ? .ok : .serviceUnavailable)
        }
        guard metrics else { return }
        router.get("/metrics") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: MetricsSetup.exposition())))
        }
    }
}
