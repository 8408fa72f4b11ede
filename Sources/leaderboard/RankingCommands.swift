import ArgumentParser
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import LeaderboardAPI
import ServiceKit
import SwiftProtobuf

/// `leaderboard admin reviews …`: the queue of held submissions, over gRPC (`--ranking-address`, or this machine's
/// `--grpc-address`).
struct ReviewsAdminCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reviews", abstract: "Submissions held for review (statistically unusual results).",
        subcommands: [List.self, Approve.self, Reject.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List held submissions, oldest first.")
        @Flag(help: "Include reviews already decided.") var all = false
        @Argument(parsing: .allUnrecognized, help: "Settings as --name value (same as serve).")
        var settings: [String] = []

        func run() async throws {
            let includeDecided = all
            let reviews = try await withRankingService(settings) { ranking in
                var found: [Leaderboard_Ranking_V1_Review] = []
                var cursor = ""
                repeat {
                    let page = try await ranking.listReviews(
                        .with {
                            $0.includeDecided = includeDecided
                            $0.page.limit = 200
                            $0.page.cursor = cursor
                        })
                    found += page.reviews
                    cursor = page.page.nextCursor
                } while !cursor.isEmpty
                return found
            }
            if reviews.isEmpty { print("no reviews") }
            for review in reviews {
                let decision =
                    switch review.decision {
                    case .approved: "approved"
                    case .rejected: "rejected"
                    default: "pending"
                    }
                print(
                    "\(review.reviewID)\t\(decision)\tmachine \(review.machineID)\tscore \(review.score)\ttps \(review.results.tps)\t\(review.reasons.map(\.detail).joined(separator: "; "))"
                )
            }
        }
    }

    struct Approve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Accept a held submission: it is ranked.")
        @Argument var reviewID: String
        @Option(help: "Why (kept with the review).") var note = ""
        @Argument(parsing: .allUnrecognized) var settings: [String] = []

        func run() async throws { try await decide(reviewID, approve: true, note: note, settings: settings) }
    }

    struct Reject: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Reject a held submission: it is never ranked.")
        @Argument var reviewID: String
        @Option(help: "Why (kept with the review).") var note = ""
        @Argument(parsing: .allUnrecognized) var settings: [String] = []

        func run() async throws { try await decide(reviewID, approve: false, note: note, settings: settings) }
    }

    static func decide(_ id: String, approve: Bool, note: String, settings: [String]) async throws {
        let review = try await withRankingService(settings) { ranking in
            try await ranking.decideReview(
                .with {
                    $0.reviewID = id
                    $0.approve = approve
                    $0.note = note
                })
        }
        print("\(review.reviewID) \(approve ? "approved" : "rejected")")
    }
}

/// `leaderboard admin ranking rebuild`: rebuilds the rank index (Redis or in-process) from the database.
/// `leaderboard admin records hide|restore|baseline|remove ID --reason R`: an operator's decision on a record,
/// audited with its reason.
struct RecordsAdminCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "records",
        abstract:
            "Hide, restore, mark as a baseline (shown, never ranked) or remove a record, with a reason (audited).",
        subcommands: [Moderate.self])

    struct Moderate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "moderate", abstract: "Moderate one record.")
        @Argument(help: "hide, restore, baseline or remove.") var action: String
        @Argument var recordID: String
        @Option(help: "Why (1–2000 characters).") var reason: String
        @Argument(parsing: .allUnrecognized) var settings: [String] = []

        func validate() throws {
            guard ["hide", "restore", "baseline", "remove"].contains(action) else {
                throw ValidationError("the action is hide, restore, baseline or remove")
            }
        }

        func run() async throws {
            let moderation: Leaderboard_Ranking_V1_ModerationAction =
                switch action {
                case "hide": .hide
                case "restore": .restore
                case "baseline": .baseline
                default: .remove
                }
            let (id, reason) = (recordID, reason)
            let reply = try await withRankingService(settings) { ranking in
                try await ranking.moderateRecord(
                    .with {
                        $0.recordID = id
                        $0.action = moderation
                        $0.reason = reason
                    })
            }
            print("\(reply.recordID) \(reply.status)")
        }
    }
}

/// `leaderboard admin audit [--service ranking|interaction]`: a service's append-only log of operator actions.
struct AuditAdminCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "Print a service's log of operator actions (who, what, when, why).")
    @Option(help: "auth, dataset, ranking or interaction.") var service = "ranking"
    @Option(help: "Entries after this sequence number.") var after: Int64 = 0
    @Argument(parsing: .allUnrecognized) var settings: [String] = []

    func validate() throws {
        guard ["auth", "dataset", "ranking", "interaction"].contains(service) else {
            throw ValidationError("--service is auth, dataset, ranking or interaction")
        }
    }

    func run() async throws {
        var after = self.after
        var entries: [Leaderboard_Common_V1_AuditEntry] = []
        while true {
            let request = Leaderboard_Common_V1_ListAuditEntriesRequest.with {
                $0.afterSequence = after
                $0.limit = 500
            }
            let page =
                switch service {
                case "auth":
                    try await withService(.auth, settings) {
                        try await Leaderboard_Auth_V1_AuthService.Client(wrapping: $0).listAuditEntries(request)
                    }
                case "dataset": try await withDatasetService(settings) { try await $0.listAuditEntries(request) }
                case "interaction":
                    try await withInteractionService(settings) { try await $0.listAuditEntries(request) }
                default: try await withRankingService(settings) { try await $0.listAuditEntries(request) }
                }
            entries += page.entries
            guard let last = page.entries.last, page.entries.count == 500 else { break }
            after = last.sequence
        }
        if entries.isEmpty { print("no entries") }
        for entry in entries {
            let time = entry.at.date.ISO8601Format()
            print(
                "\(entry.sequence)\t\(time)\t\(entry.actor)\t\(entry.action)\t\(entry.target)\t\(entry.reason)\t\(entry.detailsJson)"
            )
        }
    }
}

struct RankingAdminCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ranking", abstract: "The rank index.", subcommands: [Rebuild.self])

    struct Rebuild: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rebuild the boards from the database (after a Redis loss or restore).")
        @Option(name: .customLong("dataset-version"), help: "Only this version (default: every version).")
        var datasetVersion = ""
        @Argument(parsing: .allUnrecognized) var settings: [String] = []

        func run() async throws {
            let version = datasetVersion
            let reply = try await withRankingService(settings) { ranking in
                try await ranking.rebuildRanking(.with { $0.datasetVersion = version })
            }
            print("\(reply.recordsIndexed) records indexed")
        }
    }
}

func withRankingService<Result: Sendable>(
    _ settings: [String],
    _ body: @Sendable (Leaderboard_Ranking_V1_RankingService.Client<HTTP2ClientTransport.Posix>) async throws -> Result
) async throws -> Result {
    try await withService(.ranking, settings) {
        try await body(Leaderboard_Ranking_V1_RankingService.Client(wrapping: $0))
    }
}
