import Foundation
import GRPCCore
public import LeaderboardAPI
import ServiceKit
import SwiftProtobuf
import Synchronization

/// Streams a dataset to DatasetService's `UploadDataset`, never more than the service's announced window ahead of
/// what it has stored (so neither side buffers the upload, whatever the transport). Used by the admin REST route
/// and `leaderboard admin datasets upload`.
public enum DatasetUploader {
    public static func upload<Pieces: AsyncSequence & Sendable>(
        to datasets: any Leaderboard_Dataset_V1_DatasetService.ClientProtocol,
        header: Leaderboard_Dataset_V1_UploadHeader,
        pieces: Pieces,
        progress: @escaping @Sendable (_ storedBytes: Int64) -> Void = { _ in }
    ) async throws -> Leaderboard_Dataset_V1_DatasetVersion where Pieces.Element == [UInt8] {
        let window = FlowWindow()
        let result = Mutex<Leaderboard_Dataset_V1_DatasetVersion?>(nil)
        try await datasets.uploadDataset(
            requestProducer: { writer in
                try await writer.write(.with { $0.header = header })
                for try await piece in pieces {
                    var start = 0
                    while start < piece.count {
                        let end = min(piece.count, start + (256 << 10))
                        try await window.send(Int64(end - start))
                        try await writer.write(.with { $0.data = Data(piece[start..<end]) })
                        start = end
                    }
                }
            },
            onResponse: { response in
                do {
                    for try await message in response.messages {
                        switch message.part {
                        case .progress(let report):
                            window.setLimit(report.windowBytes)
                            window.acknowledge(upTo: report.storedBytes)
                            progress(report.storedBytes)
                        case .version(let version):
                            result.withLock { $0 = version }
                        case nil:
                            break
                        }
                    }
                    window.fail(CancellationError())
                } catch {
                    window.fail(error)
                    throw error
                }
            })
        guard let version = result.withLock({ $0 }) else {
            throw RPCError(code: .internalError, message: "The dataset service ended the upload without a version.")
        }
        return version
    }
}
