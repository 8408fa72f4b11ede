import Foundation
public import GRPCCore
import LeaderboardAPI
import Logging
public import ServiceKit
public import ServiceLifecycle
import SwiftProtobuf

/// Wiring of the Interaction target: storage, RPC services and background work, built from a `ModuleContext`.
public struct InteractionModule: ServiceModule {
    public static let definition = ModuleDefinition(
        target: .interaction, migrations: InteractionMigrations.all, settings: RetentionSettings.interaction,
        validate: { reader, _ in _ = InteractionRetention.read(&reader) },
        make: { context in try await InteractionModule(context: context) })

    public let rpcServices: [any RegistrableRPCService]
    public let services: [any Service]
    /// Flags are for operators; deleting someone else's comment needs a key too (checked in the handler).
    public var operatorMethods: [MethodDescriptor: OperatorPermission] {
        [
            Leaderboard_Interaction_V1_InteractionService.Method.ListFlags.descriptor: .admin,
            Leaderboard_Interaction_V1_InteractionService.Method.ResolveFlag.descriptor: .admin,
            Leaderboard_Interaction_V1_InteractionService.Method.ListAuditEntries.descriptor: .read,
        ]
    }

    init(context: ModuleContext, random: any RandomSource = SystemRandomSource()) async throws {
        var reader = ConfigurationReader(raw: context.configuration.raw)
        let retention = InteractionRetention.read(&reader)
        try reader.check()
        guard let database = context.database else {
            throw StartupError(origin: "LEADERBOARD_TARGET", message: "interaction needs its database")
        }
        let ranking: any Leaderboard_Ranking_V1_RankingService.ClientProtocol =
            switch try context.channel(for: .ranking) {
            case .inProcess(let client): Leaderboard_Ranking_V1_RankingService.Client(wrapping: client)
            case .http2(let client): Leaderboard_Ranking_V1_RankingService.Client(wrapping: client)
            }
        let interactions = InteractionAuthority(
            database: database, events: context.shared.events, logger: context.logger, clock: context.clock,
            random: random,
            lookup: { id in
                let record = try await ranking.lookupRecord(.with { $0.recordID = id })
                return RecordOwner(recordID: record.recordID, ownerMachineID: record.ownerMachineID)
            })
        rpcServices = [InteractionRPCService(interactions: interactions, events: context.shared.events)]
        services = [
            RankNotifier(interactions: interactions, events: context.shared.events, logger: context.logger),
            InteractionHousekeeping(interactions: interactions, retention: retention, logger: context.logger),
        ]
    }
}

/// InteractionService's retention windows (``RetentionSettings``); nil keeps that data for ever.
struct InteractionRetention: Sendable {
    var interval: Duration = .seconds(3600)
    var notifications: RetentionWindow? = RetentionWindow(days: 90)
    var resolvedFlags: RetentionWindow? = RetentionWindow(days: 365)

    static func read(_ reader: inout ConfigurationReader) -> InteractionRetention {
        InteractionRetention(
            interval: reader.retentionInterval(),
            notifications: reader.retention(RetentionSettings.notificationDays, days: true),
            resolvedFlags: reader.retention(RetentionSettings.resolvedFlagDays, days: true))
    }
}

/// Applies the retention windows every `retention-interval-minutes` (and once at start).
struct InteractionHousekeeping: Service {
    let interactions: InteractionAuthority
    let retention: InteractionRetention
    let logger: Logger

    func run() async throws {
        await repeatUntilShutdown(every: retention.interval, logger: logger, failure: "interaction retention failed") {
            try await interactions.housekeeping(retention)
        }
    }
}

/// Turns rank changes on RankingService's global boards (its event-bus messages, docs/RANKING.md) into
/// notifications for the records' owners. Every replica listens; a notification exists once per event.
struct RankNotifier: Service {
    let interactions: InteractionAuthority
    let events: any EventBus
    let logger: Logger

    /// The parts of RankingService's board event this service reads.
    struct BoardEvent: Decodable {
        struct Accepted: Decodable {
            var recordID: String
            var rank: Int
        }
        struct RankChanged: Decodable {
            var recordID: String
            var oldRank: Int
            var newRank: Int
        }
        struct Kind: Decodable {
            var accepted: Accepted?
            var rankChanged: RankChanged?
        }
        var board: String
        var sequence: UInt64
        var kind: Kind
    }

    static let rankingChannel = EventChannels.ranking

    func run() async throws {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            do {
                let subscription = try await events.subscribe(to: Self.rankingChannel)
                try await cancelWhenGracefulShutdown {
                    for await payload in subscription {
                        await handle(payload)
                    }
                }
            } catch {
                if Task.isCancelled || Task.isShuttingDownGracefully { return }
                logger.warning("rank notifications paused", metadata: ["error": "\(error)"])
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(5)) }
            }
        }
    }

    func handle(_ payload: [UInt8]) async {
        guard let event = try? JSONDecoder().decode(BoardEvent.self, from: Data(payload)),
            !event.board.contains(":f:")  // framework boards repeat the global news
        else { return }
        do {
            if let change = event.kind.rankChanged {
                try await interactions.rankChanged(
                    board: event.board, sequence: event.sequence, recordID: change.recordID, oldRank: change.oldRank,
                    newRank: change.newRank)
            } else if let accepted = event.kind.accepted {
                try await interactions.rankChanged(
                    board: event.board, sequence: event.sequence, recordID: accepted.recordID, oldRank: nil,
                    newRank: accepted.rank)
            }
        } catch {
            logger.warning("rank notification failed", metadata: ["error": "\(error)"])
        }
    }
}
