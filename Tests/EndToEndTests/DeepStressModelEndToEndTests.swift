import Foundation
import LeaderboardClient
import ServiceKit
import TestSupport
import Testing

/// The DeepStressModel protocol against the real binary in both topologies, spoken by an independent Python client
/// (Tests/python/dsm_client.py, written from docs/DEEPSTRESSMODEL.md): a device makes a client key, the client
/// fetches the result key and an offline package, opens it, encrypts a result of every prompt and uploads it the
/// way the published client does; the record is on the board. A replay and malformed uploads are refused in plain
/// words.
@Suite(
    "DeepStressModel through the real binary", .serialized, .timeLimit(.minutes(5)),
    .enabled(if: ExternalTools.hasPythonPackages))
struct DeepStressModelEndToEndTests {
    static func python(_ arguments: [String]) async throws -> [String: Any] {
        let output = try await ExternalTools.run(
            ExternalTools.python, [ExternalTools.pythonScripts.appendingPathComponent("dsm_client.py").path] + arguments
        )
        return try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any], "\(output)")
    }

    @Test(
        "key → package → encrypted result → upload → on the board; replays and bad bodies refused",
        arguments: StoryEndToEndTests.topologies)
    func upload(_ topology: StoryEndToEndTests.Topology) async throws {
        let (system, directory) = try await StoryEndToEndTests.System.ready(topology)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let base = system.base

        // Prompts as JSON Lines: short and long, Chinese and English (the client keeps 50 characters of each).
        let input = directory + "/prompts.jsonl"
        let prompts = (1...12).map { index in
            index.isMultiple(of: 3)
                ? "请用三句话解释什么是第\(index)种排序算法，并给出它的平均时间复杂度、最坏情况以及适用的场景，越详细越好。"
                : "Explain item \(index) in detail: " + String(repeating: "why and how, ", count: index)
        }
        let lines = try prompts.map {
            String(decoding: try JSONSerialization.data(withJSONObject: ["prompt": $0]), as: UTF8.self)
        }
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: input))
        let version = "dsm-\(UUID().uuidString.prefix(8).lowercased())"
        try await system.upload(input, version: version)

        let device = try await EndToEnd.activeDevice(base: base) { try system.lastLink() }
        let credentials = DeviceCredentials(machineID: device.machineID, secret: device.secret)
        let made = try await RankingEndToEndTests.signed(
            credentials, "POST", base + "/api/v1/devices/client-keys", json: ["name": "DeepStressModel"])
        #expect(made.status == 201, "\(made.text)")
        let apiKey = try #require(made.json["api_key"] as? String)

        let dat = directory + "/result.dat"
        let ran = try await Self.python(["run", base, apiKey, dat])
        #expect(ran["status"] as? Int == 200, "\(ran)")
        let text = try #require(ran["body"] as? String)
        let answer = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(answer["status"] as? String == "success" && answer["state"] as? String == "accepted", "\(answer)")
        let recordID = try #require(answer["id"] as? String)
        #expect(answer["rank"] as? Int == 1 && answer["upload_id"] as? String == recordID)

        let board = try await EndToEnd.send("GET", base + "/api/v1/benchmarks?dataset_version=\(version)")
        let listed = try #require(board.json["records"] as? [[String: Any]], "\(board.text)")
        #expect(listed.map { $0["record_id"] as? String } == [recordID])
        let record = try await EndToEnd.send("GET", base + "/api/v1/benchmarks/\(recordID)")
        #expect(record.json["framework"] as? String == "vllm" && record.json["display_name"] as? String == "python-dsm")
        #expect(record.json["concurrent_count"] as? Int == 12, "\(record.text)")

        // The same file again: refused in words the client shows, nothing new on the board.
        let again = try await Self.python(["upload", base, apiKey, dat])
        #expect(again["status"] as? Int == 409, "\(again)")
        #expect((again["content_type"] as? String)?.hasPrefix("text/plain") == true)
        #expect((again["body"] as? String)?.contains("uploaded before") == true, "\(again)")

        // Bodies the client would never send.
        let boundary = "b0und"
        func body(_ parts: [(String, String)]) -> Data {
            var text = ""
            for (name, value) in parts {
                text += "--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n"
            }
            return Data((text + "--\(boundary)--\r\n").utf8)
        }
        let headers = ["X-API-Key": apiKey, "Content-Type": "multipart/form-data; boundary=\(boundary)"]
        let url = base + "/api/v1/benchmark-result/upload"
        let reordered = try await EndToEnd.send(
            "POST", url, body: body([("file", "{}"), ("metadata", "{}"), ("api_key", apiKey)]), headers: headers)
        #expect(reordered.status == 400 && reordered.text.contains("in this order"), "\(reordered.text)")
        let otherKey = try await EndToEnd.send(
            "POST", url, body: body([("api_key", "dsm_not-the-header-key"), ("metadata", "{}"), ("file", "{}")]),
            headers: headers)
        #expect(otherKey.status == 403, "\(otherKey.text)")
        let oversize = try await EndToEnd.send(
            "POST", url,
            body: body([("api_key", apiKey), ("metadata", String(repeating: "m", count: 70_000)), ("file", "{}")]),
            headers: headers.merging(["Accept": "application/problem+json"]) { $1 })
        #expect(oversize.status == 413 && oversize.json["code"] as? String == "part_too_large", "\(oversize.text)")
        let unknownKey = try await EndToEnd.send(
            "POST", url, body: body([("api_key", "dsm_unknown"), ("metadata", "{}"), ("file", "{}")]),
            headers: headers.merging(["X-API-Key": "dsm_unknown"]) { $1 })
        #expect(unknownKey.status == 401, "\(unknownKey.text)")
        let garbage = try await EndToEnd.send(
            "POST", url, body: body([("api_key", apiKey), ("metadata", "{}"), ("file", "not a result")]),
            headers: headers)
        #expect(garbage.status == 400 && garbage.text.contains("not JSON"), "\(garbage.text)")
        let still = try await EndToEnd.send("GET", base + "/api/v1/benchmarks?dataset_version=\(version)")
        #expect((still.json["records"] as? [[String: Any]])?.count == 1)
        try await system.stop()
    }
}
