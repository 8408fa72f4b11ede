public import GRPCCore
public import ServiceKit
public import ServiceLifecycle

/// Wiring of the Dataset target: storage, RPC services and background work, built from a `ModuleContext`.
///
/// Its RPCs arrive with the Dataset issue; until then the module owns its schema and reports health.
public struct DatasetModule: ServiceModule {
    public static let definition = ModuleDefinition(target: .dataset, migrations: DatasetMigrations.all) { context in
        DatasetModule(context: context)
    }

    public let rpcServices: [any RegistrableRPCService]
    public let services: [any Service]

    init(context: ModuleContext) {
        rpcServices = []
        services = []
    }
}
