import Foundation

/// A parsed `postgres://user:password@host:port/database?sslmode=…` URL.
public struct PostgresURL: Sendable, Hashable, CustomStringConvertible {
    public enum TLSMode: String, Sendable, CaseIterable { case disable, prefer, require }

    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String
    public var tls: TLSMode

    /// Never prints the password.
    public var description: String { "postgres://\(username)@\(host):\(port)/\(database)" }

    public static func parse(_ text: String) throws(SettingParseError) -> PostgresURL {
        guard let components = URLComponents(string: text),
            components.scheme == "postgres" || components.scheme == "postgresql"
        else { throw SettingParseError("not a postgres:// URL") }
        guard let host = components.host, !host.isEmpty else { throw SettingParseError("postgres URL has no host") }
        guard let user = components.user, !user.isEmpty else {
            throw SettingParseError("postgres URL has no user name")
        }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty, !database.contains("/") else {
            throw SettingParseError("postgres URL has no database name")
        }
        var tls = TLSMode.prefer
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                switch item.value ?? "" {
                case "disable": tls = .disable
                case "allow", "prefer": tls = .prefer
                case "require", "verify-ca", "verify-full": tls = .require
                default: throw SettingParseError("sslmode must be disable, prefer or require")
                }
            default:
                throw SettingParseError("unsupported postgres URL parameter '\(item.name)'")
            }
        }
        return PostgresURL(
            host: host,
            port: components.port ?? 5432,
            username: components.percentEncodedUser.flatMap { $0.removingPercentEncoding } ?? user,
            password: components.percentEncodedPassword.flatMap { $0.removingPercentEncoding },
            database: database,
            tls: tls
        )
    }
}

/// A parsed `redis://[:password@]host[:port][/db]` URL.
public struct RedisURL: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var username: String?
    public var password: String?
    public var database: Int

    public var description: String { "redis://\(host):\(port)/\(database)" }

    public static func parse(_ text: String) throws(SettingParseError) -> RedisURL {
        guard let components = URLComponents(string: text), components.scheme == "redis" else {
            throw SettingParseError("not a redis:// URL")
        }
        guard let host = components.host, !host.isEmpty else { throw SettingParseError("redis URL has no host") }
        let path = components.path.drop(while: { $0 == "/" })
        var database = 0
        if !path.isEmpty {
            guard let number = Int(path), (0...15).contains(number) else {
                throw SettingParseError("redis database must be a number 0...15")
            }
            database = number
        }
        let user = components.percentEncodedUser.flatMap { $0.removingPercentEncoding }
        return RedisURL(
            host: host,
            port: components.port ?? 6379,
            username: user?.isEmpty == true ? nil : user,
            password: components.percentEncodedPassword.flatMap { $0.removingPercentEncoding },
            database: database
        )
    }
}
