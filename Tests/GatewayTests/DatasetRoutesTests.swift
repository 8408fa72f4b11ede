import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import LeaderboardClient
import ServiceKit
import TestSupport
import Testing

@testable import AuthService

@Suite("Dataset routes through the gateway", .timeLimit(.minutes(4)), .enabled(if: ExternalTools.hasPythonPackages))
struct DatasetRoutesTests {
    static func data(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    @Test(
        "upload → manifest → signed key → chunks and ranges decrypt to the upload", arguments: StorageBackend.available)
    func roundTrip(_ backend: StorageBackend) async throws {
        try await AuthGateway.with(backend) { gateway in
            let admin = try await gateway.adminKey()
            let data = Self.data(200_000)
            let uploaded = try await gateway.upload(
                "version=bench-1&activate=true&name=Bench%201", data, headers: admin)
            #expect(uploaded.status == .created, "\(uploaded.text)")
            let latest = try await gateway.request(.get, "/api/v1/datasets/latest")
            #expect(latest["version"] == "bench-1" && latest["name"] == "Bench 1")
            let manifest = try DatasetManifest(json: try #require(latest.json["manifest"] as? [String: Any]))
            #expect(manifest.chunks.count == 4 && manifest.plaintextSHA256 == Array(SHA256.hash(data: data)).hexEncoded)

            let device = try await gateway.activeDevice()
            let keyReply = try await gateway.signed(
                .get, "/api/v1/datasets/bench-1/key", version: 2, machineID: device.machineID, secret: device.secret)
            #expect(keyReply.status == .ok, "\(keyReply.text)")
            #expect(keyReply.headers[.cacheControl] == "no-store")
            let key = try DatasetCrypto.unwrapKey(keyReply.json, secret: device.secret)

            var plaintext: [UInt8] = []
            var concatenated: [UInt8] = []
            for chunk in manifest.chunks {
                let reply = try await gateway.request(.get, "/api/v1/datasets/bench-1/chunks/\(chunk.index)")
                #expect(reply.status == .ok)
                #expect(reply.headers[.eTag] == "\"\(chunk.ciphertextSHA256)\"")
                #expect(reply.headers[.cacheControl] == "public, max-age=31536000, immutable")
                let bytes = Array(reply.response.body.readableBytesView)
                concatenated += bytes
                plaintext += try DatasetCrypto.decrypt(
                    chunk: bytes, key: key, version: "bench-1", index: chunk.index, final: chunk.index == 3)
            }
            #expect(plaintext == data)
            let cached = try await gateway.request(
                .get, "/api/v1/datasets/bench-1/chunks/0",
                headers: [.ifNoneMatch: "\"\(manifest.chunks[0].ciphertextSHA256)\""])
            #expect(cached.status == .notModified)

            let whole = try await gateway.request(.get, "/api/v1/datasets/bench-1/download")
            #expect(Array(whole.response.body.readableBytesView) == concatenated)
            #expect(whole.headers[.acceptRanges] == "bytes")
            for (range, expected) in [
                ("bytes=70000-140000", 70_000..<140_001), ("bytes=150000-", 150_000..<concatenated.count),
                ("bytes=-100", (concatenated.count - 100)..<concatenated.count),
            ] {
                let part = try await gateway.request(
                    .get, "/api/v1/datasets/bench-1/download", headers: [.range: range])
                #expect(part.status == .partialContent)
                #expect(
                    part.headers[.contentRange]
                        == "bytes \(expected.lowerBound)-\(expected.upperBound - 1)/\(concatenated.count)")
                #expect(Array(part.response.body.readableBytesView) == Array(concatenated[expected]))
            }
        }
    }

    @Test(
        "in one process chunks go out from their verified files: the stream's bytes; a file changed on disk is checked again (503 while corrupt)"
    )
    func chunkFiles() async throws {
        try await AuthGateway.with(.sqlite, live: true) { gateway in
            let admin = try await gateway.adminKey()
            let uploaded = try await gateway.upload(
                "version=files-1&chunk_size=65536", Self.data(200_000), headers: admin)
            try #require(uploaded.status == .created, "\(uploaded.text)")
            let manifestReply = try await gateway.request(.get, "/api/v1/datasets/files-1")
            let manifest = try DatasetManifest(json: try #require(manifestReply.json["manifest"] as? [String: Any]))
            // The whole ciphertext always streams through DatasetService's checked reads: the reference.
            let whole = Array(
                try await gateway.request(.get, "/api/v1/datasets/files-1/download").response.body
                    .readableBytesView)
            func chunk(_ index: Int) async throws -> AuthGateway.Reply {
                try await gateway.request(.get, "/api/v1/datasets/files-1/chunks/\(index)")
            }
            func expected(_ index: Int) -> [UInt8] {
                let entry = manifest.chunks[index]
                return Array(whole[Int(entry.ciphertextOffset)..<Int(entry.ciphertextOffset + entry.ciphertextSize)])
            }
            func sentFromFiles() -> Double {
                PrometheusText.local().value("leaderboard_dataset_chunk_files_sent_total")
            }
            let before = sentFromFiles()
            for _ in 0..<2 {
                for entry in manifest.chunks {
                    let reply = try await chunk(entry.index)
                    #expect(reply.status == .ok)
                    #expect(reply.headers[.contentLength] == "\(entry.ciphertextSize)")
                    #expect(Array(reply.response.body.readableBytesView) == expected(entry.index))
                }
            }
            #expect(sentFromFiles() - before >= Double(2 * manifest.chunks.count))

            // Chunk 1 altered on disk after it was checked: its file has a new identity, so it is checked again.
            let directory = try #require(
                try FileManager.default.contentsOfDirectory(atPath: gateway.datasetDirectory).first {
                    !$0.hasPrefix(".")
                })
            let path = "\(gateway.datasetDirectory)/\(directory)/chunk-00000001"
            let original = try Data(contentsOf: URL(fileURLWithPath: path))
            var altered = original
            altered[100] ^= 0xFF
            try altered.write(to: URL(fileURLWithPath: path))
            expectProblem(try await chunk(1), .serviceUnavailable, "chunk_unavailable")
            try original.write(to: URL(fileURLWithPath: path))
            let restored = try await chunk(1)
            #expect(restored.status == .ok)
            #expect(Array(restored.response.body.readableBytesView) == expected(1))
        }
    }

    @Test(
        "bad input: unknown versions and chunks, path characters, malformed ranges, duplicates, no admin key, unverified devices"
    )
    func badInput() async throws {
        try await AuthGateway.with(.sqlite) { gateway in
            expectProblem(try await gateway.request(.get, "/api/v1/datasets/latest"), .notFound, "no_active_dataset")
            let admin = try await gateway.adminKey()
            expectProblem(
                try await gateway.upload("version=v1", Self.data(10), headers: [:]), .unauthorized, "missing_api_key")
            expectProblem(
                try await gateway.upload("name=x", Self.data(10), headers: admin), .badRequest, "missing_field")
            expectProblem(
                try await gateway.upload("version=..%2F..%2Fetc", Self.data(10), headers: admin), .badRequest,
                "invalid_version")
            expectProblem(
                try await gateway.upload("version=v1&chunk_size=-5", Self.data(10), headers: admin), .badRequest,
                "invalid_field_type")
            expectProblem(try await gateway.upload("version=v1", [], headers: admin), .badRequest, "empty_dataset")
            #expect(try await gateway.upload("version=v1", Self.data(100_000), headers: admin).status == .created)
            expectProblem(
                try await gateway.upload("version=v1", Self.data(10), headers: admin), .conflict,
                "dataset_version_exists")

            expectProblem(try await gateway.request(.get, "/api/v1/datasets/v9"), .notFound, "unknown_dataset_version")
            expectProblem(try await gateway.request(.get, "/api/v1/datasets/v1/chunks/2"), .notFound, "unknown_chunk")
            expectProblem(try await gateway.request(.get, "/api/v1/datasets/v1/chunks/-1"), .notFound, "unknown_chunk")
            expectProblem(try await gateway.request(.get, "/api/v1/datasets/v1/chunks/abc"), .notFound, "unknown_chunk")
            // Non-ASCII digits (an Arabic-Indic three once trapped the whole process), signs, spaces, overlong numbers.
            for bad in [
                "bytes=5-2", "bytes=999999-", "items=0-1", "bytes=0-1,5-6", "bytes=-", "bytes=x-y", "bytes=\u{663}-",
                "bytes=-\u{663}", "bytes=\u{FF11}-\u{FF12}", "bytes=+1-2", "bytes= 1-2", "bytes=-0",
                "bytes=99999999999999999999-", "bytes=0-99999999999999999999",
            ] {
                let reply = try await gateway.request(.get, "/api/v1/datasets/v1/download", headers: [.range: bad])
                #expect(reply.status == .rangeNotSatisfiable, "\(bad)")
                #expect(reply.headers[.contentRange]?.hasPrefix("bytes */") == true)
            }

            // Keys: inactive versions have none; an unverified device is refused before the service is asked.
            let device = try await gateway.activeDevice()
            expectProblem(
                try await gateway.signed(
                    .get, "/api/v1/datasets/v1/key", version: 2, machineID: device.machineID, secret: device.secret),
                .badRequest, "dataset_not_active")
            #expect(
                try await gateway.request(.post, "/api/v1/admin/datasets/v1/activate", headers: admin).status == .ok)
            #expect(
                try await gateway.signed(
                    .get, "/api/v1/datasets/v1/key", version: 1, machineID: device.machineID, secret: device.secret
                ).status == .ok)
            let unverified = try await gateway.register()
            expectProblem(
                try await gateway.signed(
                    .get, "/api/v1/datasets/v1/key", version: 2, machineID: unverified.machineID, secret: "lbd_x"),
                .forbidden, "device_not_verified")
            expectProblem(
                try await gateway.request(.get, "/api/v1/datasets/v1/key"), .unauthorized, "missing_signature")
            #expect(
                try await gateway.request(.post, "/api/v1/admin/datasets/v1/deactivate", headers: admin).status == .ok)
            expectProblem(try await gateway.request(.get, "/api/v1/datasets/latest"), .notFound, "no_active_dataset")
        }
    }
}
