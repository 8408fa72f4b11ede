public import GRPCCore
public import ServiceKit
public import ServiceLifecycle

/// Wiring of the Ranking target: storage, RPC services and background work, built from a `ModuleContext`.
///
/// Its RPCs arrive with the Ranking issue; until then the module owns its schema and reports health.
public struct RankingModule: ServiceModule {
    public static let definition = ModuleDefinition(target: .ranking, migrations: RankingMigrations.all) { context in
        RankingModule(context: context)
    }

    public let rpcServices: [any RegistrableRPCService]
    public let services: [any Service]

    init(context: ModuleContext) {
        rpcServices = []
        services = []
    }
}
