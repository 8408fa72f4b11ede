import Foundation
import GRPCCore

/// A device's opinion of a record.
enum ReactionKind: String, Sendable, Equatable, Codable {
    case like
    case dislike
}

/// Counts of a record, and optionally the asking device's own reaction.
struct ReactionCounts: Sendable, Equatable, Codable {
    var recordID: String
    var likes = 0
    var dislikes = 0
    var comments = 0
    var mine: ReactionKind? = nil
}

struct CommentRecord: Sendable, Equatable {
    var commentID: String
    var recordID: String
    /// nil for an anonymous comment.
    var machineID: String?
    var authorName: String
    /// Exactly as written.
    var content: String
    /// Kept for abuse handling; never returned.
    var ip: String
    var createdAt: Int64
    var deletedAt: Int64?
}

enum FlagTarget: String, Sendable, Equatable {
    case record
    case comment
}

struct FlagRecord: Sendable, Equatable {
    var flagID: String
    var target: FlagTarget
    var targetID: String
    var reason: String
    var machineID: String?
    var ip: String
    var createdAt: Int64
    var resolved: Bool
    /// "dismissed" or "actioned" once an operator resolved it.
    var resolution = ""
    var resolutionNote = ""
    var resolvedAt: Int64?
}

enum NotificationKind: String, Sendable, Equatable {
    case comment
    case reaction
    case rankChange = "rank_change"
}

/// A notification for a record's owner, numbered per machine without gaps.
struct NotificationRecord: Sendable, Equatable {
    var machineID: String
    var sequence: UInt64
    var notificationID: String
    /// What caused it (`comment:<id>`, `reaction:<record>:<machine>`, `rank:<board>:<sequence>`); one notification
    /// per source, so replicas hearing the same event, or a device toggling its like, notify once.
    var source: String
    var kind: NotificationKind
    var recordID: String
    var summary: String
    var payloadJSON: String
    var createdAt: Int64
    var readAt: Int64?
}

/// Rules for what people write.
enum CommentText {
    static let maximumLength = 2000

    /// Content is 1–2000 characters once trimmed, without control characters other than line breaks and tabs; it
    /// is stored exactly as written (escaping is the renderer's job).
    static func validate(_ content: String) throws(InteractionError) -> String {
        let trimmed = content.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else {
            throw .invalid("empty_comment", "A comment needs at least one visible character.")
        }
        guard trimmed.count <= maximumLength else {
            throw .invalid("comment_too_long", "A comment is at most \(maximumLength) characters.")
        }
        guard content.unicodeScalars.allSatisfy(isAllowed) else {
            throw .invalid("invalid_characters", "A comment may not contain control characters.")
        }
        return content
    }

    /// An author name: 1–64 characters, no control characters; empty means anonymous.
    static func authorName(_ name: String) throws(InteractionError) -> String {
        let trimmed = name.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty { return "anonymous" }
        guard trimmed.count <= 64, trimmed.unicodeScalars.allSatisfy({ $0.properties.generalCategory != .control })
        else {
            throw .invalid("invalid_author_name", "author_name is at most 64 characters without control characters.")
        }
        return trimmed
    }

    /// A flag's reason: 1–500 characters.
    static func reason(_ text: String) throws(InteractionError) -> String {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (1...500).contains(trimmed.count), trimmed.unicodeScalars.allSatisfy(isAllowed) else {
            throw .invalid("invalid_reason", "A reason is 1–500 characters without control characters.")
        }
        return trimmed
    }

    static func isAllowed(_ scalar: Unicode.Scalar) -> Bool {
        scalar == "\n" || scalar == "\t" || scalar == "\r"
            || (scalar.properties.generalCategory != .control && scalar.properties.generalCategory != .format
                || scalar == "\u{200D}")
    }
}

extension InteractionError {
    static func invalid(_ code: String, _ detail: String) -> InteractionError {
        InteractionError(code: code, detail: detail, status: .invalidArgument)
    }

    static let unknownComment = InteractionError(
        code: "comment_not_found", detail: "No comment has this id.", status: .notFound)
    static let notAuthor = InteractionError(
        code: "not_comment_author", detail: "Only the device that wrote this comment may delete it.",
        status: .permissionDenied)
    static let anonymousComment = InteractionError(
        code: "not_comment_author", detail: "An anonymous comment can only be deleted by an operator.",
        status: .permissionDenied)
    static let invalidCursor = InteractionError(
        code: "invalid_cursor", detail: "The cursor is not one this listing returned.", status: .invalidArgument)
    static let invalidLimit = InteractionError(
        code: "invalid_limit", detail: "limit must be 1 to 200.", status: .invalidArgument)
}
