/// A module the `leaderboard` binary can run. `serve --target` takes a comma-separated list of these, or `all`.
public enum Target: String, Sendable, CaseIterable, Hashable, Comparable, CustomStringConvertible {
    // Declared in start order: every target comes after everything it calls.
    case auth
    case dataset
    case ranking
    case interaction
    case gateway

    public var description: String { rawValue }

    /// The targets this one calls over gRPC. They start first when local, or need an address when remote.
    public var dependencies: [Target] {
        switch self {
        case .auth: []
        case .dataset: [.auth]
        case .ranking: [.auth, .dataset]
        case .interaction: [.auth, .ranking]
        case .gateway: [.auth, .dataset, .ranking, .interaction]
        }
    }

    /// Whether the target owns durable data (and so a database schema or SQLite file).
    public var ownsStorage: Bool { self != .gateway }

    /// The fully qualified gRPC service name, as served by `grpc.health.v1.Health`; nil for the gateway.
    public var grpcServiceName: String? {
        switch self {
        case .auth: "leaderboard.auth.v1.AuthService"
        case .dataset: "leaderboard.dataset.v1.DatasetService"
        case .ranking: "leaderboard.ranking.v1.RankingService"
        case .interaction: "leaderboard.interaction.v1.InteractionService"
        case .gateway: nil
        }
    }

    /// One line for `--list-targets`.
    public var summary: String {
        switch self {
        case .auth: "devices, registration, secrets, API keys, request signatures"
        case .dataset: "versioned datasets, chunked encrypted downloads, per-device keys"
        case .ranking: "benchmark sessions, validation, scores, boards, stats"
        case .interaction: "likes, dislikes, comments, notifications"
        case .gateway: "public REST + WebSocket API, signature checks, rate limits, caching"
        }
    }

    public static func < (lhs: Target, rhs: Target) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!  // both are cases of allCases
    }

    /// Parses `all` or a comma-separated list; duplicates are ignored, unknown names rejected.
    public static func parseList(_ text: String) throws(SettingParseError) -> TargetSet {
        let names = text.split(separator: ",").map { $0.trimmingWhitespace().lowercased() }
        guard !names.isEmpty, !names.contains("") else {
            throw SettingParseError("empty target list; use 'all' or some of: \(validNames)")
        }
        if names == ["all"] { return TargetSet(Target.allCases) }
        var targets: [Target] = []
        for name in names {
            guard let target = Target(rawValue: name) else {
                throw SettingParseError("unknown target '\(name)'; valid: all, \(validNames)")
            }
            targets.append(target)
        }
        return TargetSet(targets)
    }

    private static var validNames: String { allCases.map(\.rawValue).joined(separator: ", ") }
}

/// The targets one process runs, and what follows from the choice.
public struct TargetSet: Sendable, Hashable {
    /// Local targets in start order (dependencies first); stop order is the reverse.
    public let startOrder: [Target]

    public init(_ targets: some Sequence<Target>) {
        startOrder = Set(targets).sorted()
    }

    public func contains(_ target: Target) -> Bool { startOrder.contains(target) }

    /// Targets a local module calls that run in another process: each needs `--<target>-address`.
    public var remoteDependencies: [Target] {
        Set(startOrder.flatMap(\.dependencies)).subtracting(startOrder).sorted()
    }
}

extension StringProtocol {
    func trimmingWhitespace() -> String {
        String(drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}
