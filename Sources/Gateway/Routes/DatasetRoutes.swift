import AsyncAlgorithms
import Foundation
import GRPCCore
import HTTPTypes
import Hummingbird
import LeaderboardAPI
import NIOCore
import ServiceKit
import SwiftProtobuf
import Synchronization
import UntrustedInput

/// The DatasetService client the routes call.
typealias DatasetClient = any Leaderboard_Dataset_V1_DatasetService.ClientProtocol

/// `/api/v1/datasets/*` (metadata, manifests, the per-device key, ciphertext chunks and the whole ciphertext with
/// `Range`) and `/api/v1/admin/datasets` (streaming upload, activation). Format: docs/DATASET-FORMAT.md.
enum DatasetRoutes {
    static func add(
        to router: Router<GatewayRequestContext>, dependencies: GatewayDependencies, auth: AuthClient,
        datasets: DatasetClient
    ) {
        let manifests = ManifestCache(datasets: datasets)
        let publicRoutes = router.group("/api/v1/datasets")
        func cached(_ query: QuerySpec) -> RouterGroup<GatewayRequestContext> {
            publicRoutes.group("").add(
                middleware: ResponseCacheMiddleware(dependencies: dependencies, scope: .datasets, query: query))
        }
        cached(RouteQueries.pageOnly).get { request, _ in
            let query = try request.query(RouteQueries.pageOnly)
            let page = try await datasets.listDatasets(
                .with {
                    $0.page = query.page
                    $0.includeInactive = false
                })
            return listResponse(page, headers: [.cacheControl: "public, max-age=30"])
        }
        cached(.none).get("/latest") { _, _ in
            let version = try await datasets.getLatestDataset(.with { $0.includeManifest = true })
            return jsonResponse(versionJSON(version), status: .ok, headers: [.cacheControl: "public, max-age=30"])
        }
        cached(.none).get("/{version}") { _, context in
            let name = try context.parameters.require("version")
            let version = try await datasets.getDataset(
                .with {
                    $0.version = name
                    $0.includeManifest = true
                })
            return jsonResponse(versionJSON(version), status: .ok, headers: [.cacheControl: "public, max-age=30"])
        }
        publicRoutes.group("/{version}/key").add(
            middleware: DeviceSignatureMiddleware(auth: auth, dependencies: dependencies)
        )
        .get { _, context in
            let machineID = try context.requireDevice().machineID
            let name = try context.parameters.require("version")
            let key = try await datasets.getDatasetKey(
                .with {
                    $0.version = name
                    $0.machineID = machineID
                })
            return jsonResponse(
                [
                    "version": key.version, "algorithm": "HKDF-SHA256/AES-256-GCM", "context": key.context,
                    "hkdf_salt": key.hkdfSalt.base64EncodedString(), "nonce": key.nonce.base64EncodedString(),
                    "ciphertext": key.ciphertext.base64EncodedString(), "tag": key.tag.base64EncodedString(),
                ], status: .ok, headers: ResponseHeaders.noStore)
        }
        publicRoutes.get("/{version}/chunks/{index}") { request, context in
            let name = try context.parameters.require("version")
            let manifest = try await manifests.manifest(name)
            guard let index = Int(context.parameters.get("index") ?? ""), manifest.chunks.indices.contains(index) else {
                throw Problem(
                    .notFound, code: "unknown_chunk",
                    detail: "Chunk indexes of this version run from 0 to \(manifest.chunks.count - 1).")
            }
            let chunk = manifest.chunks[index]
            var headers = chunkHeaders(ciphertextSHA256: chunk.ciphertextSha256)
            let etag = headers[.eTag] ?? ""
            if let match = request.headers[.ifNoneMatch], match == etag || match == "*" {
                return Response(status: .notModified, headers: headers)
            }
            // A revalidation (304) sends no bytes, so only a sent chunk is charged.
            try await chargeDownload(chunk.ciphertextSize, context: context, dependencies: dependencies)
            headers[.contentLength] = "\(chunk.ciphertextSize)"
            if let file = await ChunkFileBody.make(
                version: name, index: index, size: chunk.ciphertextSize, context: context, dependencies: dependencies)
            {
                return Response(status: .ok, headers: headers, body: file)
            }
            let pieces = try await PieceStream.start { channel in
                try await datasets.readChunk(
                    .with {
                        $0.version = name
                        $0.index = Int64(index)
                    }
                ) { response in try await PieceStream.forward(response.messages, to: channel) }
            }
            return Response(status: .ok, headers: headers, body: pieces.body(contentLength: Int(chunk.ciphertextSize)))
        }
        publicRoutes.get("/{version}/download") { request, context in
            let name = try context.parameters.require("version")
            let manifest = try await manifests.manifest(name)
            let size = manifest.ciphertextSize
            var headers: HTTPFields = [
                .acceptRanges: "bytes", .eTag: "\"\(manifest.plaintextSha256)-\(manifest.ciphertextSize)\"",
                .cacheControl: "public, max-age=31536000, immutable", .contentType: "application/octet-stream",
            ]
            var status = HTTPResponse.Status.ok
            var range: Range<Int64> = 0..<size
            if let header = request.headers[.range] {
                do throws(InputError) {
                    range = try ByteRange.parse(header, size: size)
                } catch {
                    // Several ranges, malformed ones, and ones outside the ciphertext: 416, saying the size.
                    var problem = Problem(.rangeNotSatisfiable, code: error.code, detail: error.detail)
                    problem.headers[.contentRange] = "bytes */\(size)"
                    throw problem
                }
                status = .partialContent
                headers[.contentRange] = "bytes \(range.lowerBound)-\(range.upperBound - 1)/\(size)"
            }
            headers[.contentLength] = "\(range.count)"
            if request.method == .head { return Response(status: status, headers: headers) }
            try await chargeDownload(Int64(range.count), context: context, dependencies: dependencies)
            // One call per chunk the range touches: whatever a transport buffers, at most one chunk is in flight.
            let parts = manifest.chunks.compactMap { chunk -> Range<Int64>? in
                let start = max(range.lowerBound, chunk.ciphertextOffset)
                let end = min(range.upperBound, chunk.ciphertextOffset + chunk.ciphertextSize)
                return start < end ? start..<end : nil
            }
            let pieces = try await PieceStream.start { channel in
                for part in parts {
                    try await datasets.readCiphertext(
                        .with {
                            $0.version = name
                            $0.offset = part.lowerBound
                            $0.length = Int64(part.count)
                        }
                    ) { response in try await PieceStream.forward(response.messages, to: channel) }
                }
            }
            return Response(status: status, headers: headers, body: pieces.body(contentLength: Int(range.count)))
        }

        let admin = router.group("/api/v1/admin/datasets")
            .add(
                middleware: APIKeyMiddleware(
                    auth: auth, permission: .admin, rateLimiter: dependencies.rateLimiter, clock: dependencies.clock))
        admin.get { request, _ in
            let query = try request.query(RouteQueries.adminDatasets)
            let page = try await datasets.listDatasets(
                .with {
                    $0.page = query.page
                    $0.includeInactive = query.flag("include_inactive") ?? true
                })
            return listResponse(page, headers: ResponseHeaders.noStore)
        }
        // Versions and activation change what the default board is, so writes empty both scopes.
        let adminWrites = admin.group("").add(
            middleware: CacheInvalidationMiddleware(cache: dependencies.cache, scopes: [.datasets, .ranking]))
        adminWrites.post { request, _ in
            let query = try request.query(RouteQueries.upload)
            guard let version = query["version"] else {
                throw Problem(
                    .badRequest, code: "missing_field", detail: "The query parameter \"version\" is required.")
            }
            let header = Leaderboard_Dataset_V1_UploadHeader.with {
                $0.version = version
                $0.name = query["name"] ?? ""
                $0.description_p = query["description"] ?? ""
                $0.activate = query.flag("activate") ?? false
                $0.chunkSize = query.integer("chunk_size") ?? 0
                $0.minDurationSeconds = Int32(clamping: query.integer("min_duration_seconds") ?? 0)
            }
            let uploaded = try await DatasetUploader.upload(
                to: datasets, header: header, pieces: request.body.map { Array($0.readableBytesView) })
            return jsonResponse(versionJSON(uploaded), status: .created, headers: ResponseHeaders.noStore)
        }
        adminWrites.post("/{version}/activate") { _, context in
            let name = try context.parameters.require("version")
            let version = try await datasets.activateDataset(.with { $0.version = name })
            return jsonResponse(versionJSON(version), status: .ok, headers: ResponseHeaders.noStore)
        }
        adminWrites.post("/{version}/deactivate") { _, context in
            let name = try context.parameters.require("version")
            let version = try await datasets.deactivateDataset(.with { $0.version = name })
            return jsonResponse(versionJSON(version), status: .ok, headers: ResponseHeaders.noStore)
        }
    }

    /// The headers of a chunk's answer (ciphertext is immutable: cached for a year, revalidated by its hash), by
    /// the route and by ``ChunkFastPath`` alike.
    static func chunkHeaders(ciphertextSHA256: String) -> HTTPFields {
        [
            .eTag: "\"\(ciphertextSHA256)\"", .cacheControl: "public, max-age=31536000, immutable",
            .contentType: "application/octet-stream",
        ]
    }

    /// Spends `bytes` of the client address's download budget (chunks are public ciphertext fetched unsigned, so the
    /// address is who asks); 429 past it.
    static func chargeDownload(_ bytes: Int64, context: GatewayRequestContext, dependencies: GatewayDependencies)
        async throws
    {
        let policy = dependencies.policies.download
        try await dependencies.rateLimiter.enforce(
            policy, key: context.clientKey, cost: downloadCost(bytes, policy: policy),
            clock: dependencies.clock,
            detail: "Your address is over its dataset download budget; try again later.")
    }

    /// What sending `bytes` costs of the download budget: whole units, at most a full bucket (so one large answer
    /// is never refused for its size alone).
    static func downloadCost(_ bytes: Int64, policy: RateLimitPolicy) -> Int {
        let units = (bytes + GatewayPolicies.downloadUnit - 1) / GatewayPolicies.downloadUnit
        return Int(min(units, Int64(policy.burst)))
    }

    static func listResponse(_ page: Leaderboard_Dataset_V1_ListDatasetsResponse, headers: HTTPFields) -> Response {
        jsonResponse(
            [
                "versions": page.versions.map { versionJSON($0) },
                "next_cursor": page.page.nextCursorJSON,
            ], status: .ok, headers: headers)
    }

    static func versionJSON(_ version: Leaderboard_Dataset_V1_DatasetVersion) -> [String: Any] {
        var json: [String: Any] = [
            "version": version.version, "name": version.name, "description": version.description_p,
            "active": version.active, "created_at": jsonValue(version.createdAt.rfc3339),
            "activated_at": jsonValue(version.activatedAt.rfc3339),
            "min_duration_seconds": Int(version.minDurationSeconds),
        ]
        if version.hasManifest {
            let manifest = version.manifest
            json["manifest"] =
                [
                    "format_version": Int(manifest.formatVersion), "version": manifest.version,
                    "cipher": manifest.cipher,
                    "chunk_size": manifest.chunkSize, "plaintext_size": manifest.plaintextSize,
                    "ciphertext_size": manifest.ciphertextSize, "plaintext_sha256": manifest.plaintextSha256,
                    "chunks": manifest.chunks.map { chunk -> [String: Any] in
                        [
                            "index": chunk.index, "plaintext_size": chunk.plaintextSize,
                            "ciphertext_size": chunk.ciphertextSize, "ciphertext_offset": chunk.ciphertextOffset,
                            "plaintext_sha256": chunk.plaintextSha256, "ciphertext_sha256": chunk.ciphertextSha256,
                        ]
                    },
                ] as [String: Any]
        }
        return json
    }
}

/// Manifests by version: immutable once uploaded, so each is fetched from DatasetService once per gateway.
final class ManifestCache: Sendable {
    let datasets: DatasetClient
    private let known = Mutex<[String: Leaderboard_Dataset_V1_Manifest]>([:])

    init(datasets: DatasetClient) { self.datasets = datasets }

    func manifest(_ version: String) async throws -> Leaderboard_Dataset_V1_Manifest {
        if let manifest = known.withLock({ $0[version] }) { return manifest }
        let fetched = try await datasets.getDataset(
            .with {
                $0.version = version
                $0.includeManifest = true
            }
        ).manifest
        known.withLock { $0[version] = fetched }
        return fetched
    }
}

/// A server-streaming call whose pieces are handed to an HTTP response body one at a time: the call runs in its own
/// task and waits for each piece to be written (so memory stays at one piece whatever the client's speed); the
/// first piece is awaited before the response starts, so a call that fails at once (unknown version, a corrupt
/// chunk) becomes a proper problem response instead of a truncated 200.
struct PieceStream: Sendable {
    let channel: AsyncThrowingChannel<ByteBuffer, any Error>
    let task: Task<Void, Never>
    let first: ByteBuffer?

    static func start(
        _ call: @escaping @Sendable (AsyncThrowingChannel<ByteBuffer, any Error>) async throws -> Void
    ) async throws -> PieceStream {
        let channel = AsyncThrowingChannel<ByteBuffer, any Error>()
        // The body outlives the request's deadline (which only waits for the first piece): calls run without it.
        let task = Task {
            await RequestDeadline.lifted {
                do {
                    try await call(channel)
                    channel.finish()
                } catch {
                    channel.fail(error)
                }
            }
        }
        var iterator = channel.makeAsyncIterator()
        do {
            return PieceStream(channel: channel, task: task, first: try await iterator.next())
        } catch {
            task.cancel()
            throw error
        }
    }

    /// Hands a call's data pieces over one at a time.
    static func forward(
        _ messages: RPCAsyncSequence<Leaderboard_Dataset_V1_DataPiece, any Error>,
        to channel: AsyncThrowingChannel<ByteBuffer, any Error>
    ) async throws {
        for try await piece in messages { await channel.send(ByteBuffer(bytes: piece.data)) }
    }

    /// The response body; without a length it is sent chunked.
    func body(contentLength: Int? = nil) -> ResponseBody {
        let write: @Sendable (inout any ResponseBodyWriter) async throws -> Void = { writer in
            defer { task.cancel() }
            if let first { try await writer.write(first) }
            for try await piece in channel { try await writer.write(piece) }
            try await writer.finish(nil)
        }
        return contentLength.map { ResponseBody(contentLength: $0, write) } ?? ResponseBody(write)
    }
}

extension HTTPField.Name {
    /// DeepStressModel's client key header.
    static let xAPIKey = Self("X-API-Key")!
}
