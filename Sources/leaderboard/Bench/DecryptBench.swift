import ArgumentParser
import Foundation
import LeaderboardClient

/// P4, client side: how fast the SDK decrypts a downloaded dataset. The device's key is fetched (signed) from the
/// gateway and unwrapped; the stored ciphertext chunks are read from `--chunks-dir` into memory first, so only
/// `DatasetCrypto.open` (AES-256-GCM, tag checked; what the SDK's downloader calls) is timed, on one core, like
/// `openssl speed -evp`.
struct DecryptBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decrypt", abstract: "Dataset chunk decryption throughput of the SDK (one core).")

    @Option(help: "The gateway's base URL (loopback).") var server: String
    @Option(help: "A device's credentials (JSON with machine_id and secret).") var device: String
    @Option(help: "The dataset version.") var version: String
    @Option(help: "The directory holding the version's stored chunks (chunk-00000000 …).") var chunksDir: String

    func run() async throws {
        guard let base = URL(string: server) else { throw BenchError("--server must be a URL") }
        let stored = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: device)))
        guard let object = stored as? [String: Any], let machineID = object["machine_id"] as? String,
            let secret = object["secret"] as? String
        else { throw BenchError("\(device) needs machine_id and secret") }
        let credentials = DeviceCredentials(machineID: machineID, secret: secret)
        let http = LeaderboardHTTP(baseURL: base)
        let metadata = try await http.json("GET", "/api/v1/datasets/\(version)")
        guard let manifestJSON = metadata["manifest"] as? [String: Any] else { throw BenchError("no manifest") }
        let manifest = try DatasetManifest(json: manifestJSON)
        let key = try DatasetCrypto.unwrapKey(
            try await http.json("GET", "/api/v1/datasets/\(version)/key", signedBy: credentials),
            secret: credentials.secret)
        let chunks = try manifest.chunks.map { chunk in
            try Data(contentsOf: URL(fileURLWithPath: chunksDir + String(format: "/chunk-%08d", chunk.index)))
        }
        let clock = ContinuousClock()
        let start = clock.now
        var plaintext: Int64 = 0
        for (index, chunk) in chunks.enumerated() {
            plaintext += Int64(
                try DatasetCrypto.open(
                    chunk: chunk, key: key, version: manifest.version, index: index, final: index == chunks.count - 1
                ).count)
        }
        let elapsed = clock.now - start
        guard plaintext == manifest.plaintextSize else { throw BenchError("decrypted \(plaintext) bytes, not all") }
        printFigures([
            "bytes": plaintext, "seconds": elapsed.seconds,
            "mib_per_s": Double(plaintext) / 1_048_576 / elapsed.seconds, "chunk_bytes": manifest.chunkSize,
        ])
    }
}
