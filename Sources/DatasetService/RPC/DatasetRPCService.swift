import Foundation
import GRPCCore
import LeaderboardAPI
import ServiceKit
import SwiftProtobuf

/// `leaderboard.dataset.v1.DatasetService`: maps protobuf messages to ``DatasetAuthority`` and back.
struct DatasetRPCService: Leaderboard_Dataset_V1_DatasetService.SimpleServiceProtocol {
    let datasets: DatasetAuthority
    let events: any EventBus

    static let eventChannel = EventChannels.datasets
    /// Size of the pieces chunks are streamed in (well under gRPC's default 4 MiB message limit).
    static let pieceSize = 256 << 10

    func uploadDataset(
        request: RPCAsyncSequence<Leaderboard_Dataset_V1_UploadDatasetRequest, any Error>,
        response: RPCWriter<Leaderboard_Dataset_V1_UploadDatasetResponse>,
        context: ServerContext
    ) async throws {
        var iterator = request.makeAsyncIterator()
        guard let first = try await iterator.next(), case .header(let header)? = first.part else {
            throw DatasetError.invalid("missing_upload_header", "The first message of an upload must be its header.")
        }
        let record = try await datasets.upload(
            .init(
                version: header.version, name: header.name, description: header.description_p,
                chunkSize: Int(clamping: header.chunkSize), activate: header.activate,
                minDurationSeconds: Int(header.minDurationSeconds)),
            data: UploadData(iterator: iterator),
            progress: { stored, window in
                try await response.write(
                    .with {
                        $0.progress.storedBytes = stored
                        $0.progress.windowBytes = window
                    })
            })
        await publish(record.version, kind: .uploaded)
        if record.active { await publish(record.version, kind: .activated) }
        try await response.write(.with { $0.version = Self.version(record, manifest: true) })
    }

    func getDataset(request: Leaderboard_Dataset_V1_GetDatasetRequest, context: ServerContext) async throws
        -> Leaderboard_Dataset_V1_DatasetVersion
    {
        Self.version(try await datasets.get(request.version), manifest: request.includeManifest)
    }

    func getLatestDataset(request: Leaderboard_Dataset_V1_GetLatestDatasetRequest, context: ServerContext)
        async throws -> Leaderboard_Dataset_V1_DatasetVersion
    {
        Self.version(try await datasets.latest(), manifest: request.includeManifest)
    }

    func listDatasets(request: Leaderboard_Dataset_V1_ListDatasetsRequest, context: ServerContext) async throws
        -> Leaderboard_Dataset_V1_ListDatasetsResponse
    {
        // Inactive versions are not public: listing them takes an operator key.
        if request.includeInactive, OperatorContext.current?.grants(.read) != true {
            throw BoundaryError.operatorKeyMissing
        }
        let page = try await datasets.list(
            cursor: request.page.cursor, limit: Int(request.page.limit), includeInactive: request.includeInactive)
        return .with {
            $0.versions = page.versions.map { Self.version($0, manifest: false) }
            $0.page.nextCursor = page.next
        }
    }

    func activateDataset(request: Leaderboard_Dataset_V1_SetDatasetActiveRequest, context: ServerContext)
        async throws -> Leaderboard_Dataset_V1_DatasetVersion
    {
        let record = try await datasets.setActive(request.version, active: true)
        await publish(record.version, kind: .activated)
        return Self.version(record, manifest: false)
    }

    func deactivateDataset(request: Leaderboard_Dataset_V1_SetDatasetActiveRequest, context: ServerContext)
        async throws -> Leaderboard_Dataset_V1_DatasetVersion
    {
        let record = try await datasets.setActive(request.version, active: false)
        await publish(record.version, kind: .deactivated)
        return Self.version(record, manifest: false)
    }

    func getDatasetKey(request: Leaderboard_Dataset_V1_GetDatasetKeyRequest, context: ServerContext) async throws
        -> Leaderboard_Dataset_V1_DatasetKey
    {
        let wrapped = try await datasets.key(version: request.version, machineID: request.machineID)
        return .with {
            $0.version = request.version
            $0.nonce = Data(wrapped.nonce)
            $0.ciphertext = Data(wrapped.ciphertext)
            $0.tag = Data(wrapped.tag)
            $0.hkdfSalt = Data(wrapped.salt)
            $0.context = wrapped.context
        }
    }

    func readChunk(
        request: Leaderboard_Dataset_V1_ReadChunkRequest, response: RPCWriter<Leaderboard_Dataset_V1_DataPiece>,
        context: ServerContext
    ) async throws {
        guard let index = Int(exactly: request.index) else { throw DatasetError.unknownChunk }
        try await Self.send(try await datasets.chunk(version: request.version, index: index), to: response)
    }

    func readCiphertext(
        request: Leaderboard_Dataset_V1_ReadCiphertextRequest, response: RPCWriter<Leaderboard_Dataset_V1_DataPiece>,
        context: ServerContext
    ) async throws {
        guard request.offset >= 0, request.length > 0, request.offset <= Int64.max - request.length else {
            throw DatasetError.rangeNotSatisfiable
        }
        try await datasets.ciphertext(
            version: request.version, range: request.offset..<(request.offset + request.length)
        ) { bytes in try await Self.send(bytes, to: response) }
    }

    func getOfflinePackage(request: Leaderboard_Dataset_V1_GetOfflinePackageRequest, context: ServerContext)
        async throws -> Leaderboard_Dataset_V1_OfflinePackage
    {
        let package = try await datasets.offlinePackage(packageID: request.packageID, apiKey: request.apiKey)
        return .with { $0.packageJson = Data(package) }
    }

    func checkPrompts(request: Leaderboard_Dataset_V1_CheckPromptsRequest, context: ServerContext) async throws
        -> Leaderboard_Dataset_V1_CheckPromptsResponse
    {
        let check = try await datasets.checkPrompts(
            version: request.version,
            claims: request.prompts.map { .init(id: $0.id, input: $0.input, inputChars: $0.inputChars) })
        return .with {
            $0.datasetName = check.datasetName
            $0.items = Int64(check.items)
            $0.unknownIds = Array(check.unknownIDs.prefix(20))
            $0.mismatchedIds = Array(check.mismatchedIDs.prefix(20))
            $0.unknownCount = Int64(check.unknownIDs.count)
            $0.mismatchedCount = Int64(check.mismatchedIDs.count)
        }
    }

    func listAuditEntries(request: Leaderboard_Common_V1_ListAuditEntriesRequest, context: ServerContext)
        async throws -> Leaderboard_Common_V1_ListAuditEntriesResponse
    {
        let entries = try await datasets.audit(after: request.afterSequence, limit: Int(request.limit))
        return .with {
            $0.entries = entries.map { entry in
                .with {
                    $0.sequence = entry.sequence
                    $0.at = .init(microsecondsSinceEpoch: entry.at)
                    $0.actor = entry.actor
                    $0.action = entry.action
                    $0.target = entry.target
                    $0.reason = entry.reason
                    $0.detailsJson = entry.details
                }
            }
        }
    }

    func createDatasetChallenge(
        request: Leaderboard_Dataset_V1_CreateDatasetChallengeRequest, context: ServerContext
    ) async throws -> Leaderboard_Dataset_V1_DatasetChallenge {
        let challenge = try await datasets.challenge(version: request.version)
        return .with {
            $0.version = request.version
            $0.nonce = Data(challenge.nonce)
            $0.spans = challenge.spans.map { span in
                .with {
                    $0.offset = span.lowerBound
                    $0.length = span.upperBound - span.lowerBound
                }
            }
            $0.expectedProof = challenge.answer
        }
    }

    func watchDatasets(
        request: Leaderboard_Dataset_V1_WatchDatasetsRequest, response: RPCWriter<Leaderboard_Dataset_V1_DatasetEvent>,
        context: ServerContext
    ) async throws {
        let subscription = try await events.subscribe(to: Self.eventChannel)
        try await untilStreamEnds(context) {
            var sequence: UInt64 = 0
            for await payload in subscription {
                guard var event = try? Leaderboard_Dataset_V1_DatasetEvent(serializedBytes: payload) else { continue }
                sequence += 1
                event.sequence = sequence
                try await response.write(event)
            }
        }
    }

    private func publish(_ version: String, kind: Leaderboard_Dataset_V1_DatasetEvent.Kind) async {
        let event = Leaderboard_Dataset_V1_DatasetEvent.with {
            $0.version = version
            $0.kind = kind
            $0.at = .init(microsecondsSinceEpoch: datasets.clock.microsecondsSinceEpoch())
        }
        // Events are notifications; a failed publish must not fail the operation that already happened.
        if let bytes: [UInt8] = try? event.serializedBytes() {
            try? await events.publish(bytes, to: Self.eventChannel)
        }
    }

    static func send(_ bytes: [UInt8], to response: RPCWriter<Leaderboard_Dataset_V1_DataPiece>) async throws {
        var start = 0
        while start < bytes.count {
            let end = min(start + pieceSize, bytes.count)
            try await response.write(.with { $0.data = Data(bytes[start..<end]) })
            bytesServed.increment(by: Int64(end - start))
            start = end
        }
    }

    static let bytesServed = MetricFamilies.datasetBytesServed.counter()

    static func version(_ record: DatasetRecord, manifest include: Bool) -> Leaderboard_Dataset_V1_DatasetVersion {
        .with {
            $0.version = record.version
            $0.name = record.name
            $0.description_p = record.description
            $0.active = record.active
            $0.createdAt = .init(microsecondsSinceEpoch: record.createdAt)
            if let activatedAt = record.activatedAt { $0.activatedAt = .init(microsecondsSinceEpoch: activatedAt) }
            $0.minDurationSeconds = Int32(record.minDurationSeconds)
            if include { $0.manifest = manifest(record.manifest) }
        }
    }

    static func manifest(_ manifest: Manifest) -> Leaderboard_Dataset_V1_Manifest {
        .with {
            $0.formatVersion = Int32(manifest.formatVersion)
            $0.version = manifest.version
            $0.cipher = manifest.cipher
            $0.chunkSize = manifest.chunkSize
            $0.plaintextSize = manifest.plaintextSize
            $0.ciphertextSize = manifest.ciphertextSize
            $0.plaintextSha256 = manifest.plaintextSHA256
            $0.chunks = manifest.chunks.map { chunk in
                .with {
                    $0.index = Int64(chunk.index)
                    $0.plaintextSize = chunk.plaintextSize
                    $0.ciphertextSize = chunk.ciphertextSize
                    $0.ciphertextOffset = chunk.ciphertextOffset
                    $0.plaintextSha256 = chunk.plaintextSHA256
                    $0.ciphertextSha256 = chunk.ciphertextSHA256
                }
            }
        }
    }
}

/// The data messages after an upload's header, as byte arrays; a second header is an error.
struct UploadData: AsyncSequence, Sendable {
    typealias Element = [UInt8]
    typealias Failure = any Error
    // The request iterator is used by exactly one consumer (the upload), once.
    nonisolated(unsafe) let iterator:
        RPCAsyncSequence<Leaderboard_Dataset_V1_UploadDatasetRequest, any Error>.AsyncIterator

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: RPCAsyncSequence<Leaderboard_Dataset_V1_UploadDatasetRequest, any Error>.AsyncIterator

        mutating func next() async throws -> [UInt8]? {
            guard let message = try await base.next() else { return nil }
            guard case .data(let data)? = message.part else {
                throw DatasetError.invalid(
                    "unexpected_upload_header", "Only the first message of an upload is a header.")
            }
            return Array(data)
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: iterator) }
}
