import Hummingbird
import LeaderboardAPI
import SwiftProtobuf
import UntrustedInput

/// The query parameters of every route, declared once (docs/GATEWAY.md "Query parameters"): what a route reads, what
/// each parameter may hold, and the code of the 400 when it does not. Routes read queries only through these specs,
/// and a cached route's cache key is its spec's canonical form — parameters a route does not declare cannot split or
/// get past its cache entries.
enum RouteQueries {
    static let limit = QuerySpec.Parameter("limit", .integer(0...Int64(Int32.max)), code: "invalid_limit")
    static let cursor = QuerySpec.Parameter("cursor", .cursor)
    static let page = [limit, cursor]

    static let datasetVersion = QuerySpec.Parameter(
        "dataset_version", .text(maximumLength: 128), code: "invalid_filter")
    static let framework = QuerySpec.Parameter("framework", .text(maximumLength: 64), code: "invalid_filter")
    static let filtersWithoutFramework = [
        datasetVersion, QuerySpec.Parameter("gpu", .text(maximumLength: 128), code: "invalid_filter"),
        QuerySpec.Parameter("model_params_min", .number(0...1_000_000), code: "invalid_filter"),
        QuerySpec.Parameter("model_params_max", .number(0...1_000_000), code: "invalid_filter"),
        QuerySpec.Parameter("model", .text(maximumLength: 200), code: "invalid_filter"),
        QuerySpec.Parameter("quantization", .text(maximumLength: 32), code: "invalid_filter"),
    ]

    /// `GET /api/v1/benchmarks`.
    static let sort = QuerySpec.Parameter("sort", .choice(["score", "tps"]), code: "invalid_sort")
    static let board = QuerySpec([framework] + filtersWithoutFramework + page + [sort])
    /// `GET /api/v1/benchmarks/frameworks/{framework}` (the framework is in the path).
    static let frameworkBoard = QuerySpec(filtersWithoutFramework + page + [sort])
    /// `GET /api/v1/benchmarks/export`.
    static let export = QuerySpec(
        [.init("format", .choice(["json", "csv"]), code: "invalid_format"), framework] + filtersWithoutFramework)
    /// `GET /api/v1/benchmarks/{id}/similar`.
    static let similar = QuerySpec([.init("limit", .integer(0...200), code: "invalid_limit")])
    /// `GET /api/v1/stats`, `POST /api/v1/admin/ranking/rebuild`.
    static let datasetVersionOnly = QuerySpec([datasetVersion])
    /// Listings with nothing but a page: datasets, comments.
    static let pageOnly = QuerySpec(page)
    /// `GET /api/v1/admin/datasets`.
    static let adminDatasets = QuerySpec(page + [.init("include_inactive", .flag)])
    /// `POST /api/v1/admin/datasets` (the upload's header; the body is the file).
    static let upload = QuerySpec([
        .init("version", .text(maximumLength: 128)), .init("name", .text(maximumLength: 200)),
        .init("description", .text(maximumLength: 2000)), .init("activate", .flag),
        .init("chunk_size", .integer(0...(1 << 30)), code: "invalid_field_type"),
        .init("min_duration_seconds", .integer(0...Int64(Int32.max)), code: "invalid_field_type"),
    ])
    /// `GET /api/v1/admin/reviews`.
    static let reviews = QuerySpec(page + [.init("include_decided", .flag)])
    /// `GET /api/v1/admin/audit`: one service's log, after a sequence number.
    static let audit = QuerySpec([
        .init("service", .choice(["auth", "dataset", "ranking", "interaction"]), code: "invalid_service"),
        .init("after", .integer(0...Int64.max), code: "invalid_field_type"),
        .init("limit", .integer(0...500), code: "invalid_limit"),
    ])
    /// `GET /api/v1/admin/flags`.
    static let flags = QuerySpec(page + [.init("include_resolved", .flag)])
    /// `GET /api/v1/devices/client-keys`.
    static let clientKeys = QuerySpec([.init("include_revoked", .flag)])
    /// `GET /api/v1/admin/keys`.
    static let apiKeys = QuerySpec(page + [.init("include_revoked", .flag)])
    /// `GET /api/v1/notifications`.
    static let notifications = QuerySpec([
        .init("since", .integer(0...Int64.max), code: "invalid_field_type"),
        .init("limit", .integer(0...Int64(Int32.max)), code: "invalid_field_type"), .init("unread_only", .flag),
    ])
    /// `GET /api/v1/ws/leaderboard`.
    static let leaderboardSocket = QuerySpec([
        datasetVersion, framework, .init("limit", .integer(1...200), code: "invalid_limit"),
    ])
    /// `GET /api/v1/ws/notifications`.
    static let notificationsSocket = QuerySpec([.init("since", .integer(0...Int64.max), code: "invalid_since")])
    /// `GET /verify` (the registration code pre-filled) and `GET /verify/confirm` (the emailed token).
    static let verifyPage = QuerySpec([.init("code", .text(maximumLength: 64))])
    static let confirmPage = QuerySpec([.init("token", .text(maximumLength: 256))])
}

extension Request {
    /// The query, parsed against the route's declared parameters.
    func query(_ spec: QuerySpec) throws(InputError) -> DeclaredQuery { try spec.parse(uri.query ?? "") }
}

extension DeclaredQuery {
    /// `limit` and `cursor` of a listing.
    var page: Leaderboard_Common_V1_PageRequest {
        .with {
            $0.limit = Int32(clamping: integer("limit") ?? 0)
            $0.cursor = self["cursor"] ?? ""
        }
    }
}
