import ServiceKit

/// A dataset version as stored.
struct DatasetRecord: Sendable, Equatable {
    var version: String
    var name: String
    var description: String
    var active: Bool
    var createdAt: Int64
    var activatedAt: Int64?
    var minDurationSeconds: Int
    /// Where its blobs live (`<version>.<upload id>`); never shown to clients.
    var blobPrefix: String
    var contentKeySealed: [UInt8]
    var manifest: Manifest
}

/// The Dataset target's SQL, one statement set for PostgreSQL and SQLite.
struct DatasetRepository {
    let sql: any SQLExecutor

    init(_ sql: any SQLExecutor) { self.sql = sql }

    static let columns =
        "version, name, description, active, created_at, activated_at, min_duration_seconds, blob_prefix, content_key_sealed, manifest"

    func insert(_ record: DatasetRecord) async throws {
        _ = try await sql.execute(
            "INSERT INTO dataset_versions (\(Self.columns)) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            [
                .text(record.version), .text(record.name), .text(record.description), .integer(record.active ? 1 : 0),
                .integer(record.createdAt), SQLValue(record.activatedAt), .integer(Int64(record.minDurationSeconds)),
                .text(record.blobPrefix), .bytes(record.contentKeySealed),
                .text(String(decoding: try record.manifest.encoded(), as: UTF8.self)),
            ])
    }

    func version(_ version: String, lock: Bool = false) async throws -> DatasetRecord? {
        try await sql.first(
            "SELECT \(Self.columns) FROM dataset_versions WHERE version = $1\(lock ? sql.forUpdate : "")",
            [.text(version)]
        ).map(Self.record)
    }

    /// The active version activated last (ties: the newest upload).
    func latestActive() async throws -> DatasetRecord? {
        try await sql.first(
            """
            SELECT \(Self.columns) FROM dataset_versions WHERE active = 1
            ORDER BY activated_at DESC, created_at DESC, version DESC LIMIT 1
            """
        ).map(Self.record)
    }

    /// Newest first; the cursor is the (created_at, version) of the last row of the previous page.
    func list(after cursor: (createdAt: Int64, version: String)?, limit: Int, includeInactive: Bool) async throws
        -> [DatasetRecord]
    {
        let filter = includeInactive ? "" : " AND active = 1"
        if let cursor {
            return try await sql.execute(
                """
                SELECT \(Self.columns) FROM dataset_versions
                WHERE (created_at < $1 OR (created_at = $1 AND version < $2))\(filter)
                ORDER BY created_at DESC, version DESC LIMIT $3
                """,
                [.integer(cursor.createdAt), .text(cursor.version), .integer(Int64(limit))]
            ).map(Self.record)
        }
        return try await sql.execute(
            "SELECT \(Self.columns) FROM dataset_versions WHERE 1 = 1\(filter) ORDER BY created_at DESC, version DESC LIMIT $1",
            [.integer(Int64(limit))]
        ).map(Self.record)
    }

    func setActive(_ version: String, active: Bool, at time: Int64) async throws {
        _ = try await sql.execute(
            "UPDATE dataset_versions SET active = $2, activated_at = $3 WHERE version = $1",
            [.text(version), .integer(active ? 1 : 0), active ? .integer(time) : .null])
    }

    func blobPrefixes() async throws -> Set<String> {
        Set(try await sql.execute("SELECT blob_prefix FROM dataset_versions").map { try $0.string("blob_prefix") })
    }

    static func record(_ row: SQLRow) throws -> DatasetRecord {
        DatasetRecord(
            version: try row.string("version"), name: try row.string("name"),
            description: try row.string("description"), active: try row.integer("active") == 1,
            createdAt: try row.integer("created_at"), activatedAt: try row.optionalInteger("activated_at"),
            minDurationSeconds: Int(try row.integer("min_duration_seconds")), blobPrefix: try row.string("blob_prefix"),
            contentKeySealed: try row.optionalBytes("content_key_sealed") ?? [],
            manifest: try Manifest.decode(Array(try row.string("manifest").utf8)))
    }
}
