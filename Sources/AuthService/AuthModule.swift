public import GRPCCore
public import ServiceKit
public import ServiceLifecycle

/// Wiring of the Auth target: storage, RPC services and background work, built from a `ModuleContext`.
///
/// Its RPCs arrive with the Auth issue; until then the module owns its schema and reports health.
public struct AuthModule: ServiceModule {
    public static let definition = ModuleDefinition(target: .auth, migrations: AuthMigrations.all) { context in
        AuthModule(context: context)
    }

    public let rpcServices: [any RegistrableRPCService]
    public let services: [any Service]

    init(context: ModuleContext) {
        rpcServices = []
        services = []
    }
}
