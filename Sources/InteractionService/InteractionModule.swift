public import GRPCCore
public import ServiceKit
public import ServiceLifecycle

/// Wiring of the Interaction target: storage, RPC services and background work, built from a `ModuleContext`.
///
/// Its RPCs arrive with the Interaction issue; until then the module owns its schema and reports health.
public struct InteractionModule: ServiceModule {
    public static let definition = ModuleDefinition(target: .interaction, migrations: InteractionMigrations.all) {
        context in
        InteractionModule(context: context)
    }

    public let rpcServices: [any RegistrableRPCService]
    public let services: [any Service]

    init(context: ModuleContext) {
        rpcServices = []
        services = []
    }
}
