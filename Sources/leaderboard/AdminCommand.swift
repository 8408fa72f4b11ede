import ArgumentParser
import AuthService
import Foundation
import Logging
import ServiceKit

/// `leaderboard admin …`: operator tasks that work on a service's storage directly.
struct AdminCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admin",
        abstract: "Operator tasks: API keys (on the auth storage), datasets (through DatasetService).",
        subcommands: [
            KeysCommand.self, DatasetsAdminCommand.self, ReviewsAdminCommand.self, RankingAdminCommand.self,
            CommentsAdminCommand.self, FlagsAdminCommand.self, RecordsAdminCommand.self, AuditAdminCommand.self,
        ]
    )
}

/// `leaderboard admin keys create|list|revoke`: operator API keys, straight on AuthService's database so the first
/// admin key can be made before any key exists. Takes the same storage settings as `serve`.
struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Create, list and revoke operator API keys.",
        subcommands: [Create.self, List.self, Revoke.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a key and print its secret (shown only this once).", discussion: settingsHelp)

        @Option(help: "A name to recognise the key by (1–100 characters).")
        var name: String

        @Option(name: .customLong("permission"), help: "read, write or admin (repeatable; admin implies the others).")
        var permissions: [String] = ["read"]

        @Option(name: .customLong("rate-limit"), help: "Requests per minute the gateway allows (default 600).")
        var rateLimit: Int = 0

        @Option(name: .customLong("expires-in-days"), help: "Days until the key expires (default: never).")
        var expiresInDays: Int?

        @Flag(help: "Print JSON instead of text.")
        var json = false

        @Argument(parsing: .allUnrecognized, help: "Storage settings as --name value (same as serve).")
        var settings: [String] = []

        func run() async throws {
            var parsed = Set<Permission>()
            for name in permissions {
                guard let permission = Permission(rawValue: name) else {
                    throw ValidationError("--permission must be read, write or admin, not \"\(name)\"")
                }
                parsed.insert(permission)
            }
            if let expiresInDays, expiresInDays <= 0 { throw ValidationError("--expires-in-days must be positive") }
            let expiresAt = expiresInDays.map {
                Int64(Date().timeIntervalSince1970 * 1_000_000) + Int64($0) * 86_400_000_000
            }
            let (key, secret) = try await withAPIKeys(settings) { keys in
                try await keys.create(
                    name: name, permissions: parsed, rateLimitPerMinute: rateLimit, expiresAt: expiresAt)
            }
            if json {
                var object = keyJSON(key)
                object["secret"] = secret
                printJSON(object)
            } else {
                print("created \(key.id) (\(key.permissions.sorted().map(\.rawValue).joined(separator: ",")))")
                print("secret: \(secret)")
                print("Store the secret now: it is not kept and cannot be shown again.")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List keys (never their secrets).")

        @Flag(name: .customLong("include-revoked"), help: "Also list revoked keys.")
        var includeRevoked = false

        @Flag(help: "Print JSON instead of a table.")
        var json = false

        @Argument(parsing: .allUnrecognized, help: "Storage settings as --name value (same as serve).")
        var settings: [String] = []

        func run() async throws {
            let keys = try await withAPIKeys(settings) { keys in
                var all: [APIKeyRecord] = []
                var cursor = ""
                repeat {
                    let page = try await keys.list(cursor: cursor, limit: 200, includeRevoked: includeRevoked)
                    all += page.keys
                    cursor = page.nextCursor
                } while !cursor.isEmpty
                return all
            }
            if json {
                printJSON(["keys": keys.map(keyJSON)])
                return
            }
            print(
                "ID                    PREFIX        PERMISSIONS        RATE/MIN  LAST USED             STATE      NAME"
            )
            for key in keys {
                let state =
                    key.revokedAt != nil
                    ? "revoked" : (key.expiresAt.map { $0 <= nowMicroseconds() } ?? false) ? "expired" : "active"
                let columns = [
                    key.id.padding(toLength: 22, withPad: " ", startingAt: 0),
                    key.prefix.padding(toLength: 14, withPad: " ", startingAt: 0),
                    key.permissions.sorted().map(\.rawValue).joined(separator: ",").padding(
                        toLength: 19, withPad: " ", startingAt: 0),
                    String(key.rateLimitPerMinute).padding(toLength: 10, withPad: " ", startingAt: 0),
                    (key.lastUsedAt.map(rfc3339) ?? "never").padding(toLength: 22, withPad: " ", startingAt: 0),
                    state.padding(toLength: 11, withPad: " ", startingAt: 0),
                    key.name,
                ]
                print(columns.joined())
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a key by id; it stops working at once.")

        @Argument(help: "The key id (key_…).")
        var keyID: String

        @Argument(parsing: .allUnrecognized, help: "Storage settings as --name value (same as serve).")
        var settings: [String] = []

        func run() async throws {
            let key = try await withAPIKeys(settings) { keys in try await keys.revoke(id: keyID) }
            print("revoked \(key.id) at \(key.revokedAt.map(rfc3339) ?? "?")")
        }
    }
}

/// Opens AuthService's database (migrated) from the settings and runs `body` with the key authority; a domain
/// error is printed as `code: detail` with exit status 1.
func withAPIKeys<Result: Sendable>(
    _ settings: [String],
    _ body: (APIKeyAuthority) async throws -> Result
) async throws -> Result {
    let configuration = try loadConfiguration(settings, checkModules: false)
    LoggingSetup.bootstrap(level: configuration.logLevel, format: configuration.logFormat)
    let logger = Logger(label: "leaderboard.admin")
    do {
        return try await ServiceHost(configuration: configuration, logger: logger).withDatabase(
            of: .auth, definitions: moduleDefinition(for:)
        ) { database in
            try await body(AuthModule.apiKeys(database: database, logger: logger))
        }
    } catch let error as StartupError {
        printError(error.description)
        throw ExitCode.failure
    } catch let error as any CodedServiceError {
        printError("\(error.code): \(error.detail)")
        throw ExitCode.failure
    }
}

func keyJSON(_ key: APIKeyRecord) -> [String: Any] {
    [
        "key_id": key.id, "name": key.name, "prefix": key.prefix,
        "permissions": key.permissions.sorted().map(\.rawValue), "rate_limit_per_minute": key.rateLimitPerMinute,
        "created_at": rfc3339(key.createdAt), "expires_at": key.expiresAt.map(rfc3339) ?? NSNull(),
        "revoked_at": key.revokedAt.map(rfc3339) ?? NSNull(), "last_used_at": key.lastUsedAt.map(rfc3339) ?? NSNull(),
    ]
}

func printJSON(_ object: [String: Any]) {
    let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])) ?? Data()
    print(String(decoding: data, as: UTF8.self))
}

func rfc3339(_ microseconds: Int64) -> String {
    Date(timeIntervalSince1970: Double(microseconds / 1_000_000)).formatted(.iso8601)
}

func nowMicroseconds() -> Int64 { Int64(Date().timeIntervalSince1970 * 1_000_000) }
