import Crypto
import Foundation
import GRPCCore
import HTTPTypes
import Hummingbird
import LeaderboardAPI
import Logging
import NIOCore
import ServiceKit
import SwiftProtobuf
import UntrustedInput

/// The two routes the published DeepStressModel client calls, with a client key in `X-API-Key`
/// (docs/DEEPSTRESSMODEL.md): its offline dataset package, and the upload of its encrypted result. Both answer
/// exactly what the client expects; refusals of the upload are plain text the client shows its user (or
/// problem+json for a caller that accepts JSON).
enum DeepStressModelRoutes {
    /// The upload's parts, in the order the client sends them, and the most each may hold.
    static let parts = ["api_key", "metadata", "file"]
    static let maximumFileBytes = 6 << 20
    static let maximumMetadataBytes = 64 << 10
    static let maximumKeyBytes = 512
    /// The whole body: the parts, their headers and boundaries.
    static let maximumUploadBytes = maximumFileBytes + maximumMetadataBytes + maximumKeyBytes + (16 << 10)

    static func add(
        to router: Router<GatewayRequestContext>, dependencies: GatewayDependencies, auth: AuthClient,
        datasets: DatasetClient, ranking: RankingClient
    ) {
        let limited = router.group("/api/v1")
            .add(
                middleware: ClientRateLimitMiddleware(
                    policy: dependencies.policies.exports, rateLimiter: dependencies.rateLimiter,
                    clock: dependencies.clock))
        // The package object itself is the answer, as the client expects.
        limited.post("/datasets/offline-package/{id}") { request, context in
            let apiKey = try clientKey(request)
            let key = try await auth.authenticateClientKey(.with { $0.apiKey = apiKey })
            let package = try await datasets.getOfflinePackage(
                .with {
                    $0.machineID = key.machineID
                    $0.packageID = context.parameters.get("id") ?? ""
                    $0.apiKey = apiKey
                })
            return Response(
                status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(bytes: package.packageJson)))
        }
        limited.post("/benchmark-result/upload") { request, context in
            do {
                return try await upload(request, context: context, auth: auth, ranking: ranking)
            } catch {
                let problem = Problem.from(error)
                if problem.status.code >= 500 {
                    context.logger.error("upload failed", metadata: ["error": "\(String(reflecting: error))"])
                }
                return refusal(problem, request: request, context: context)
            }
        }
    }

    static func clientKey(_ request: Request) throws -> String {
        guard let apiKey = request.headers[.xAPIKey], !apiKey.isEmpty else {
            throw Problem(
                .unauthorized, code: "missing_api_key",
                detail: "Send a client key (leaderboard client dsm-key) in X-API-Key.")
        }
        return apiKey
    }

    /// Reads the multipart body as it arrives (each part bounded; the key checked before the file is read) and
    /// hands the file to RankingService, which opens, checks and judges it.
    static func upload(
        _ request: Request, context: GatewayRequestContext, auth: AuthClient, ranking: RankingClient
    ) async throws -> Response {
        let apiKey = try clientKey(request)
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > maximumUploadBytes {
            throw tooLarge
        }
        let boundary = try MultipartForm.boundary(contentType: request.headers[.contentType] ?? "")
        // Before the body: an unknown or revoked key costs no upload.
        let key = try await auth.authenticateClientKey(.with { $0.apiKey = apiKey })
        var form = MultipartForm(
            boundary: boundary,
            limits: .init(maximumParts: parts.count) { name in
                switch name {
                case "file": maximumFileBytes
                case "metadata": maximumMetadataBytes
                default: maximumKeyBytes
                }
            })
        var received: [MultipartForm.Part] = []
        var total = 0
        for try await buffer in request.body {
            total += buffer.readableBytes
            guard total <= maximumUploadBytes else { throw tooLarge }
            let completed = try form.feed(buffer.readableBytesView)
            guard !completed.isEmpty else { continue }
            received += completed
            // Judged as parts complete: the order, and the key before the file is read.
            guard received.map(\.name) == Array(parts.prefix(received.count)) else { throw misordered }
            if let field = received.first, field.body != Array(apiKey.utf8) {
                throw Problem(
                    .forbidden, code: "api_key_mismatch", detail: "The api_key field is not the key in X-API-Key.")
            }
        }
        try form.finish()
        guard received.count == parts.count else { throw misordered }
        let metadata = received[1].body
        guard (try? JSONObject.parse(metadata)) != nil, let metadataText = String(validating: metadata, as: UTF8.self)
        else {
            throw Problem(.badRequest, code: "invalid_metadata", detail: "The metadata field is not a JSON object.")
        }
        let outcome = try await ranking.submitExternalResult(
            .with {
                $0.machineID = key.machineID
                $0.source = "deepstressmodel"
                $0.resultFile = Data(received[2].body)
                $0.metadataJson = metadataText
                $0.apiKey = apiKey
            })
        let reasons = outcome.reasons.map { ["code": $0.code, "detail": $0.detail] }
        let message: String
        switch outcome.state {
        case .rejected:
            var problem = Problem(
                .unprocessableContent, code: "result_rejected",
                detail:
                    "The result was not accepted: it failed \(outcome.reasons.count) validation rule(s) (docs/DEEPSTRESSMODEL.md)."
            )
            problem.members = ["session_id": outcome.sessionID, "rule_set_version": outcome.ruleSetVersion]
            problem.reasons = reasons
            throw problem
        case .heldForReview:
            message =
                "Received. An operator reviews the result before it is ranked: "
                + outcome.reasons.map(\.detail).joined(separator: " ")
        default:
            message =
                outcome.rank > 0
                ? "Ranked #\(outcome.rank) with a score of \(String(format: "%.2f", outcome.score))."
                : "Accepted with a score of \(String(format: "%.2f", outcome.score)); this device's better result for this framework stays on the board."
        }
        // What the client reads: status "success" and the id (it shows the id; upload_id for its other paths).
        return jsonResponse(
            [
                "status": "success", "id": outcome.recordID, "upload_id": outcome.recordID,
                "record_id": outcome.recordID, "state": RankingRoutes.stateName(outcome.state),
                "score": outcome.score, "rank": Int(outcome.rank), "message": message, "reasons": reasons,
            ], status: .ok, headers: ResponseHeaders.noStore)
    }

    static let misordered = Problem(
        .badRequest, code: "invalid_upload",
        detail: "The upload must have exactly the parts api_key, metadata and file, in this order.")

    static let tooLarge = Problem(
        .contentTooLarge, code: "payload_too_large",
        detail:
            "A result upload may be at most \(maximumUploadBytes) bytes (a result file of \(maximumFileBytes >> 20) MiB)."
    )

    /// A refusal as the client shows it: plain words with the reasons, or problem+json for a caller that asks for
    /// JSON.
    static func refusal(_ problem: Problem, request: Request, context: GatewayRequestContext) -> Response {
        let accept = request.headers[.accept]?.lowercased() ?? ""
        if accept.contains("json") {
            return problem.response(requestID: context.requestID, instance: request.uri.path)
        }
        var text = "Upload refused: \(problem.detail)\n"
        for reason in problem.reasons { text += "- \(reason["detail"] ?? "") (\(reason["code"] ?? ""))\n" }
        text += "(\(problem.code); request \(context.requestID))\n"
        var headers = problem.headers
        headers[.contentType] = "text/plain; charset=utf-8"
        headers[.cacheControl] = "no-store"
        return Response(status: problem.status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
