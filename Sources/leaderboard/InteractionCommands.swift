import ArgumentParser
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import LeaderboardAPI
import ServiceKit
import SwiftProtobuf

/// `leaderboard admin comments …` and `admin flags …`: moderation over gRPC (`--interaction-address`, or this
/// machine's `--grpc-address`).
struct CommentsAdminCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "comments", abstract: "Moderate comments.", subcommands: [Delete.self])

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Hide a comment (soft delete; kept for audit).")
        @Argument var commentID: String
        @Argument(parsing: .allUnrecognized) var settings: [String] = []

        func run() async throws {
            let id = commentID
            let comment = try await withInteractionService(settings) { interactions in
                try await interactions.deleteComment(
                    .with {
                        $0.commentID = id
                        $0.caller.apiKeyID = "cli"
                    })
            }
            print("\(comment.commentID) deleted (record \(comment.recordID))")
        }
    }
}

struct FlagsAdminCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flags", abstract: "Records and comments people flagged.", subcommands: [List.self, Resolve.self])

    struct Resolve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Close a flag: dismissed (nothing wrong) or actioned (dealt with), with a note (audited).")
        @Argument var flagID: String
        @Option(help: "dismissed or actioned.") var resolution: String
        @Option(help: "Why (1–2000 characters).") var note: String
        @Argument(parsing: .allUnrecognized) var settings: [String] = []

        func run() async throws {
            let (id, resolution, note) = (flagID, resolution, note)
            let flag = try await withInteractionService(settings) { interactions in
                try await interactions.resolveFlag(
                    .with {
                        $0.flagID = id
                        $0.resolution = resolution
                        $0.note = note
                    })
            }
            print("\(flag.flagID) \(flag.resolution)")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List flags, oldest first.")
        @Flag(help: "Include resolved flags.") var all = false
        @Argument(parsing: .allUnrecognized) var settings: [String] = []

        func run() async throws {
            let includeResolved = all
            let flags = try await withInteractionService(settings) { interactions in
                var found: [Leaderboard_Interaction_V1_Flag] = []
                var cursor = ""
                repeat {
                    let page = try await interactions.listFlags(
                        .with {
                            $0.includeResolved = includeResolved
                            $0.page.limit = 200
                            $0.page.cursor = cursor
                        })
                    found += page.flags
                    cursor = page.page.nextCursor
                } while !cursor.isEmpty
                return found
            }
            if flags.isEmpty { print("no flags") }
            for flag in flags {
                print(
                    "\(flag.flagID)\t\(flag.target == .comment ? "comment" : "record") \(flag.targetID)\t\(flag.reason)"
                )
            }
        }
    }
}

func withInteractionService<Result: Sendable>(
    _ settings: [String],
    _ body:
        @Sendable (Leaderboard_Interaction_V1_InteractionService.Client<HTTP2ClientTransport.Posix>) async throws
        -> Result
) async throws -> Result {
    try await withService(.interaction, settings) {
        try await body(Leaderboard_Interaction_V1_InteractionService.Client(wrapping: $0))
    }
}
