public import GRPCCore
import SwiftProtobuf

/// `grpc.health.v1.Health` over a ``HealthRegistry``: Check, List and Watch as the standard specifies.
public struct HealthRPCService: Grpc_Health_V1_Health.SimpleServiceProtocol {
    let registry: HealthRegistry

    public init(registry: HealthRegistry) {
        self.registry = registry
    }

    public func check(
        request: Grpc_Health_V1_HealthCheckRequest,
        context: ServerContext
    ) async throws -> Grpc_Health_V1_HealthCheckResponse {
        guard let status = registry.status(of: request.service) else {
            throw RPCError(code: .notFound, message: "unknown service '\(request.service)'")
        }
        return .with { $0.status = Self.wire(status) }
    }

    public func list(
        request: Grpc_Health_V1_HealthListRequest,
        context: ServerContext
    ) async throws -> Grpc_Health_V1_HealthListResponse {
        .with { response in
            for (name, status) in registry.all() {
                response.statuses[name] = .with { $0.status = Self.wire(status) }
            }
        }
    }

    public func watch(
        request: Grpc_Health_V1_HealthCheckRequest,
        response: RPCWriter<Grpc_Health_V1_HealthCheckResponse>,
        context: ServerContext
    ) async throws {
        // The stream ends when the client cancels (task cancellation) or the registry shuts down.
        for await status in registry.watch(request.service) {
            try await response.write(.with { $0.status = status.map(Self.wire) ?? .serviceUnknown })
        }
    }

    static func wire(_ status: ServingStatus) -> Grpc_Health_V1_HealthCheckResponse.ServingStatus {
        switch status {
        case .serving: .serving
        case .notServing: .notServing
        }
    }
}
