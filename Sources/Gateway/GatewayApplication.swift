public import GRPCCore
public import Hummingbird
public import Logging
import NIOCore
public import ServiceKit
public import ServiceLifecycle

/// The router every gateway (and operations-only) app uses: middleware in order, then the routes.
///
/// Request id outermost (so every response carries it), then the access log and metrics (which see the final
/// status), then problem+json conversion, then the routes.
public func buildGatewayRouter(readiness: ReadinessProbe) -> Router<GatewayRequestContext> {
    let router = Router(context: GatewayRequestContext.self)
    router.addMiddleware {
        RequestIDMiddleware()
        AccessLogMiddleware()
        MetricsMiddleware<GatewayRequestContext>()
        ProblemMiddleware()
    }
    OperationsRoutes.add(to: router, readiness: readiness)
    return router
}

/// The gateway app on `address`; prints `<name> listening on http://host:port` once bound (port 0 resolves here).
public func buildGatewayApplication(
    router: Router<GatewayRequestContext>,
    address: HostPort,
    name: String,
    logger: Logger
) -> some ApplicationProtocol & Service {
    Application(
        router: router,
        configuration: .init(address: .hostname(address.host, port: address.port), serverName: "leaderboard"),
        onServerRunning: { channel in
            let port = channel.localAddress?.port ?? address.port
            announce("\(name) listening on http://\(address.host):\(port)")
            logger.info("\(name) listening", metadata: ["address": "\(address.host):\(port)"])
        },
        logger: logger
    )
}

/// The gateway target: public REST/WebSocket in front of the four services.
public struct GatewayModule: ServiceModule {
    public static let definition = ModuleDefinition(target: .gateway) { context in
        GatewayModule(context: context)
    }

    public let rpcServices: [any RegistrableRPCService] = []
    public let services: [any Service]

    init(context: ModuleContext) {
        let router = buildGatewayRouter(readiness: context.readiness)
        services = [
            buildGatewayApplication(
                router: router, address: context.configuration.httpAddress, name: "gateway", logger: context.logger)
        ]
    }
}

/// `/metrics` and `/health/*` for a process that does not run the gateway, on `--ops-address`.
public func buildOperationsService(context: ModuleContext) -> any Service {
    buildGatewayApplication(
        router: buildGatewayRouter(readiness: context.readiness),
        address: context.configuration.operationsAddress, name: "ops", logger: context.logger)
}
