import Foundation
public import Logging
import NIOCore
import PostgresNIO
import SQLiteNIO

/// A value bound to a statement parameter or read from a result column, the same on PostgreSQL and SQLite.
public enum SQLValue: Sendable, Hashable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case bytes([UInt8])

    public init(_ value: String?) { self = value.map { .text($0) } ?? .null }
    public init(_ value: Int64?) { self = value.map { .integer($0) } ?? .null }
    public init(_ value: Int?) { self = value.map { .integer(Int64($0)) } ?? .null }
    public init(_ value: [UInt8]?) { self = value.map { .bytes($0) } ?? .null }
    public init(_ value: Double?) { self = value.map { .real($0) } ?? .null }
}

/// One result row, columns by name. Accessors throw ``StorageError`` when a column is missing or has another type,
/// which means the code and the schema disagree.
public struct SQLRow: Sendable {
    public let columns: [String: SQLValue]

    public init(columns: [String: SQLValue]) {
        self.columns = columns
    }

    public func value(_ name: String) throws(StorageError) -> SQLValue {
        guard let value = columns[name] else { throw StorageError("result has no column '\(name)'") }
        return value
    }

    public func string(_ name: String) throws(StorageError) -> String {
        guard let value = try optionalString(name) else { throw StorageError("column '\(name)' is NULL") }
        return value
    }

    public func optionalString(_ name: String) throws(StorageError) -> String? {
        switch try value(name) {
        case .null: return nil
        case .text(let text): return text
        default: throw StorageError("column '\(name)' is not text")
        }
    }

    public func integer(_ name: String) throws(StorageError) -> Int64 {
        guard let value = try optionalInteger(name) else { throw StorageError("column '\(name)' is NULL") }
        return value
    }

    public func optionalInteger(_ name: String) throws(StorageError) -> Int64? {
        switch try value(name) {
        case .null: return nil
        case .integer(let number): return number
        default: throw StorageError("column '\(name)' is not an integer")
        }
    }

    /// A floating-point column; integers (SQLite stores whole REAL values compactly) convert.
    public func double(_ name: String) throws(StorageError) -> Double {
        switch try value(name) {
        case .real(let number): return number
        case .integer(let number): return Double(number)
        case .null: throw StorageError("column '\(name)' is NULL")
        default: throw StorageError("column '\(name)' is not a number")
        }
    }

    public func optionalBytes(_ name: String) throws(StorageError) -> [UInt8]? {
        switch try value(name) {
        case .null: return nil
        case .bytes(let bytes): return bytes
        default: throw StorageError("column '\(name)' is not binary")
        }
    }
}

/// Runs parameterised statements on either backend. Statements are constant text written by the code with `$1`,
/// `$2`, … placeholders (PostgreSQL's syntax; rewritten to SQLite's `?1`, `?2`); values are always bound, never
/// spliced into the text.
public protocol SQLExecutor: Sendable {
    /// True on PostgreSQL: lets a caller add what only it supports (e.g. `FOR UPDATE`).
    var isPostgres: Bool { get }
    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow]
}

extension SQLExecutor {
    @discardableResult
    public func execute(_ sql: String, _ binds: [SQLValue] = []) async throws -> [SQLRow] {
        try await query(sql, binds)
    }

    public func first(_ sql: String, _ binds: [SQLValue] = []) async throws -> SQLRow? {
        try await query(sql, binds).first
    }

    /// `FOR UPDATE` on PostgreSQL; nothing on SQLite, whose write transactions are already exclusive.
    public var forUpdate: String { isPostgres ? " FOR UPDATE" : "" }
}

extension ServiceDatabase {
    /// Runs `body` in one transaction; a throw rolls everything back.
    public func transaction<T: Sendable>(
        logger: Logger,
        _ body: @Sendable (any SQLExecutor) async throws -> T
    ) async throws -> T {
        let metrics = self.metrics
        return try await metrics.measure(transaction: true) {
            switch self {
            case .postgres(let store):
                do {
                    return try await store.leasing { connection in
                        try await connection.withTransaction(logger: logger) { connection in
                            try await body(metrics.measured(PostgresExecutor(connection: connection, logger: logger)))
                        }
                    }
                } catch let error as PostgresTransactionError {
                    throw error.closureError ?? error.beginError ?? error.commitError ?? error
                }
            case .sqlite(let store):
                return try await store.withTransaction { connection in
                    try await body(metrics.measured(SQLiteExecutor(connection: connection)))
                }
            }
        }
    }

    /// Runs `body` outside a transaction (each statement commits on its own).
    public func withExecutor<T: Sendable>(
        logger: Logger,
        _ body: @Sendable (any SQLExecutor) async throws -> T
    ) async throws -> T {
        let metrics = self.metrics
        return try await metrics.measure(transaction: false) {
            switch self {
            case .postgres(let store):
                return try await body(metrics.measured(PostgresPoolExecutor(store: store, logger: logger)))
            case .sqlite(let store):
                return try await store.withConnection { connection in
                    try await body(metrics.measured(SQLiteExecutor(connection: connection)))
                }
            }
        }
    }
}

struct PostgresExecutor: SQLExecutor {
    let connection: PostgresConnection
    let logger: Logger
    var isPostgres: Bool { true }

    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        let rows = try await connection.query(PostgresSQL.query(sql, binds), logger: logger)
        return try await PostgresSQL.collect(rows)
    }
}

struct PostgresPoolExecutor: SQLExecutor {
    let store: PostgresStore
    let logger: Logger
    var isPostgres: Bool { true }

    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        try await store.leasing { connection in
            let rows = try await connection.query(PostgresSQL.query(sql, binds), logger: logger)
            return try await PostgresSQL.collect(rows)
        }
    }
}

enum PostgresSQL {
    static func query(_ sql: String, _ binds: [SQLValue]) -> PostgresQuery {
        var bindings = PostgresBindings(capacity: binds.count)
        for value in binds {
            switch value {
            case .null: bindings.appendNull()
            case .integer(let number): bindings.append(number)
            case .real(let number): bindings.append(number)
            case .text(let text): bindings.append(text)
            case .bytes(let bytes): bindings.append(ByteBuffer(bytes: bytes))
            }
        }
        // The text is a constant of the calling code; every value travels as a bound parameter.
        return PostgresQuery(unsafeSQL: sql, binds: bindings)
    }

    static func collect(_ rows: PostgresRowSequence) async throws -> [SQLRow] {
        var result: [SQLRow] = []
        for try await row in rows {
            var columns: [String: SQLValue] = [:]
            for cell in row {
                columns[cell.columnName] = try value(of: cell)
            }
            result.append(SQLRow(columns: columns))
        }
        return result
    }

    static func value(of cell: PostgresCell) throws -> SQLValue {
        guard cell.bytes != nil else { return .null }
        switch cell.dataType {
        case .int2, .int4, .int8: return .integer(try cell.decode(Int64.self))
        case .bool: return .integer(try cell.decode(Bool.self) ? 1 : 0)
        case .float4, .float8: return .real(try cell.decode(Double.self))
        case .bytea: return .bytes(Array(try cell.decode(ByteBuffer.self).readableBytesView))
        default: return .text(try cell.decode(String.self))
        }
    }
}

struct SQLiteExecutor: SQLExecutor {
    let connection: SQLiteConnection
    var isPostgres: Bool { false }

    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        let data: [SQLiteData] = binds.map {
            switch $0 {
            case .null: .null
            case .integer(let number): .integer(Int(number))
            case .real(let number): .float(number)
            case .text(let text): .text(text)
            case .bytes(let bytes): .blob(ByteBuffer(bytes: bytes))
            }
        }
        let rows = try await connection.query(Self.rewrite(sql), data)
        return rows.map { row in
            var columns: [String: SQLValue] = [:]
            for column in row.columns {
                columns[column.name] =
                    switch column.data {
                    case .null: .null
                    case .integer(let number): .integer(Int64(number))
                    case .float(let number): .real(number)
                    case .text(let text): .text(text)
                    case .blob(let buffer): .bytes(Array(buffer.readableBytesView))
                    }
            }
            return SQLRow(columns: columns)
        }
    }

    /// `$1` → `?1`: numbered parameters in SQLite's syntax, so a value used twice is bound once.
    static func rewrite(_ sql: String) -> String {
        var output = ""
        output.reserveCapacity(sql.utf8.count)
        var previous: Character = " "
        for character in sql {
            if previous == "$", character.isNumber {
                output.removeLast()
                output.append("?")
            }
            output.append(character)
            previous = character
        }
        return output
    }
}
