import Crypto
import Foundation
import LeaderboardClient
import PostgresNIO
import ServiceKit
import TestSupport
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// `leaderboard backup` on both storages: data in → backup (while serving) → the storage wiped → restore → the same
/// boards, records, comments and operator keys, and a dataset that the same device still downloads and decrypts.
@Suite(
    "Backups through the real binary", .serialized, .timeLimit(.minutes(6)),
    .enabled(if: ExternalTools.hasPythonPackages))
struct BackupEndToEndTests {
    @Test(
        "backup → wipe → restore gives back boards, records, comments, keys and decryptable datasets",
        arguments: RankingEndToEndTests.storages)
    func roundTrip(_ storage: RankingEndToEndTests.Storage) async throws {
        let directory = EndToEnd.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let version = "bk-\(UUID().uuidString.prefix(8).lowercased())"
        let production = storage == .production ? try await EndToEnd.productionSettings() : []
        let settings =
            ["--data-dir", directory + "/data", "--backup-dir", directory + "/backups", "--pow-difficulty", "8"]
            + production

        var server = try LeaderboardProcess(["serve"] + ephemeral + settings)
        var base = try await server.httpBase()
        var grpc = "127.0.0.1:\(try await server.grpcPort())"
        _ = try await EndToEnd.waitFor(base + "/health/ready", status: 200)
        let operatorKey = try await EndToEnd.operatorKey(settings)
        let plaintext = try await EndToEnd.uploadPromptDataset(
            in: directory, version: version, grpc: grpc, operatorKey: operatorKey)
        let checksum = Array(SHA256.hash(data: plaintext)).hexEncoded
        let credentials = try await EndToEnd.activeDevice(base: base) {
            try DatasetEndToEndTests.lastLink(in: server.standardError + server.standardOutput)
        }
        let device = DeviceCredentials(machineID: credentials.machineID, secret: credentials.secret)
        let outcome = try await RankingEndToEndTests.benchmark(
            device, base: base, version: version, checksum: checksum, plaintext: plaintext, tps: 120)
        let recordID = try #require(outcome["record_id"] as? String)
        let client = LeaderboardClient(baseURL: try #require(URL(string: base)), credentials: device)
        _ = try await client.comment(on: recordID, content: "kept across a restore")

        /// What a visitor sees, minus what changes with time or per request.
        func snapshot(_ base: String) async throws -> [String] {
            var seen: [String] = []
            for path in [
                "/api/v1/benchmarks?framework=llama.cpp", "/api/v1/benchmarks/\(recordID)",
                "/api/v1/benchmarks/\(recordID)/comments",
            ] {
                let answer = try await EndToEnd.send("GET", base + path)
                #expect(answer.status == 200, "\(path): \(answer.text)")
                var object = answer.json
                object["sequence"] = nil
                object["generated_at"] = nil
                seen.append(
                    String(
                        decoding: try JSONSerialization.data(withJSONObject: object, options: .sortedKeys),
                        as: UTF8.self))
            }
            return seen
        }
        let before = try await snapshot(base)
        #expect(before[0].contains(recordID) && before[2].contains("kept across a restore"))

        // Made while serving.
        let created = try LeaderboardProcess(["backup", "create", "--json"] + settings)
        #expect(try await created.exitStatus(within: .seconds(120)) == 0, "\(created.standardError)")
        let name = try #require(
            (try JSONSerialization.jsonObject(with: Data(created.standardOutput.utf8)) as? [String: Any])?["name"]
                as? String)
        #expect(created.standardError.contains("master key is not in the backup"))
        #expect(try await server.stop() == 0)

        // Everything gone but the master key, kept apart as the operator guide says.
        let data = directory + "/data"
        for entry in try FileManager.default.contentsOfDirectory(atPath: data) where entry != "master.key" {
            try FileManager.default.removeItem(atPath: "\(data)/\(entry)")
        }
        if storage == .production { try await Self.wipe(production) }

        let verify = try LeaderboardProcess(["backup", "verify", "--backup", name] + settings)
        #expect(try await verify.exitStatus(within: .seconds(60)) == 0, "\(verify.standardError)")
        let refused = try LeaderboardProcess(["backup", "restore", name] + settings)
        #expect(try await refused.exitStatus() != 0 && refused.standardError.contains("--yes"))
        let restore = try LeaderboardProcess(["backup", "restore", name, "--yes"] + settings)
        #expect(try await restore.exitStatus(within: .seconds(120)) == 0, "\(restore.standardError)")

        server = try LeaderboardProcess(["serve"] + ephemeral + settings)
        base = try await server.httpBase()
        grpc = "127.0.0.1:\(try await server.grpcPort())"
        _ = try await EndToEnd.waitFor(base + "/health/ready", status: 200)
        let restored = try await eventually(within: .seconds(20)) { try await snapshot(base) == before }
        let after = try await snapshot(base)
        #expect(restored, "\(after) != \(before)")
        // The operator key still opens operator calls; the device still signs, and its dataset key still opens.
        let listed = try LeaderboardProcess(
            ["admin", "datasets", "list", "--grpc-address", grpc, "--operator-key", operatorKey])
        #expect(
            try await listed.exitStatus() == 0 && listed.standardOutput.contains(version), "\(listed.standardError)")
        let secretFile = directory + "/secret"
        try credentials.secret.write(toFile: secretFile, atomically: true, encoding: .utf8)
        let download = try LeaderboardProcess(
            [
                "client", "datasets", "download", "--server", base, "--machine-id", credentials.machineID,
                "--secret-file", secretFile, "--out", directory + "/out.jsonl",
            ])
        #expect(try await download.exitStatus(within: .seconds(60)) == 0, "\(download.standardError)")
        #expect(download.standardOutput.contains("sha256 \(checksum) verified"))
        let restoredClient = LeaderboardClient(baseURL: try #require(URL(string: base)), credentials: device)
        #expect(try await restoredClient.notifications().notifications.isEmpty == false)
        #expect(try await server.stop() == 0)

        // A damaged backup is reported, naming the file.
        let manifest = try BackupDirectory(path: directory + "/backups").manifest(name)
        let victim = try #require(manifest.files.first)
        let handle = try #require(FileHandle(forWritingAtPath: "\(directory)/backups/\(name)/\(victim.path)"))
        try handle.seek(toOffset: 0)
        handle.write(Data("damage".utf8))
        try handle.close()
        let damaged = try LeaderboardProcess(["backup", "verify", "--backup", name] + settings)
        #expect(try await damaged.exitStatus(within: .seconds(60)) != 0)
        #expect(damaged.standardError.contains(victim.path))
    }

    /// Drops every service schema and the system's Redis keys: a lost database and a lost Redis.
    static func wipe(_ settings: [String]) async throws {
        func value(_ flag: String) throws -> String {
            let index = try #require(settings.firstIndex(of: flag))
            return settings[index + 1]
        }
        let url = try PostgresURL.parse(try value("--database-url"))
        let store = PostgresStore(url: url, schema: "public", maximumConnections: 1, logger: TestEnvironment.logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await store.client.run() }
            try await store.client.query("DROP SCHEMA auth, dataset, ranking, interaction CASCADE")
            group.cancelAll()
        }
        if let index = settings.firstIndex(of: "--redis-url") {
            let redis = RedisClient(
                url: try RedisURL.parse(settings[index + 1]), poolSize: 1, timeout: .seconds(2),
                logger: TestEnvironment.logger)
            #expect(try await redis.deleteKeys(matchingPrefix: try value("--redis-key-prefix")) > 0)
            await redis.close()
        }
    }
}
