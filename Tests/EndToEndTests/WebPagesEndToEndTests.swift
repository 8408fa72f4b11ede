import Crypto
import Foundation
import LeaderboardClient
import ServiceKit
import TestSupport
import Testing

/// The web pages in a real browser (Debian's headless Chromium, driven over the DevTools protocol by
/// Tests/python/browser.py) against the real binary in both topologies: what a person sees on each page, the filter
/// form and the links working, a live update arriving on the open board, a phone-width layout, and hostile strings
/// stored through the API rendered as text with nothing executed.
@Suite(
    "Web pages in a real browser", .serialized, .timeLimit(.minutes(5)),
    .enabled(if: ExternalTools.hasPythonPackages && ExternalTools.hasBrowser))
struct WebPagesEndToEndTests {
    static let hostile = [
        "<script>alert(1)</script>", "\"><img src=x onerror=alert(2)>", "\u{202E}gnp.exe\u{202C} rig",
    ]

    @Test(
        "board, filters, records, comparison, statistics, datasets and a live update; nothing hostile runs",
        arguments: StoryEndToEndTests.topologies)
    func pages(_ topology: StoryEndToEndTests.Topology) async throws {
        let (system, directory) = try await StoryEndToEndTests.System.ready(topology)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let base = system.base

        let input = directory + "/prompts.jsonl"
        try Data("{\"prompt\": \"\(UUID().uuidString)\"}\n".utf8).write(to: URL(fileURLWithPath: input))
        let plaintext = try Data(contentsOf: URL(fileURLWithPath: input))
        let checksum = Array(SHA256.hash(data: plaintext)).hexEncoded
        let version = "web-\(UUID().uuidString.prefix(8).lowercased())"
        try await system.upload(input, version: version)
        var records: [String] = []
        var devices: [DeviceCredentials] = []
        for (index, name) in Self.hostile.enumerated() {
            let device = try await EndToEnd.activeDevice(base: base) { try system.lastLink() }
            devices.append(DeviceCredentials(machineID: device.machineID, secret: device.secret))
            let outcome = try await RankingEndToEndTests.benchmark(
                devices[index], base: base, version: version,
                checksum: checksum, plaintext: plaintext, tps: 80 + Double(index) * 20,
                framework: index == 0 ? "sglang" : "vllm", displayName: name,
                model: index == 1 ? "javascript:alert(3)" : "qwen2.5-7b")
            records.append(try #require(outcome["record_id"] as? String, "\(outcome)"))
        }
        let comment = try await EndToEnd.send(
            "POST", base + "/api/v1/benchmarks/\(records[0])/comments",
            json: ["content": "<img src=x onerror=alert(4)> fast"])
        #expect(comment.status == 201, "\(comment.text)")

        // The browser runs while a result arrives: once the board is open (it writes `ready`), the first device
        // submits on another framework, a new row on the global board.
        let ready = directory + "/browser-ready"
        let browser = try ChildProcess(
            ExternalTools.python,
            [
                ExternalTools.pythonScripts.appendingPathComponent("browser.py").path, "site", base, system.operatorKey,
                records[2], ready,
            ])
        #expect(try await eventually(within: .seconds(60)) { FileManager.default.fileExists(atPath: ready) })
        let arriving = try await RankingEndToEndTests.benchmark(
            devices[0], base: base, version: version, checksum: checksum, plaintext: plaintext, tps: 90,
            framework: "tgi", displayName: "fresh rig", model: "qwen2.5-7b")
        #expect(arriving["state"] as? String == "accepted", "\(arriving)")
        #expect(try await browser.exitStatus(within: .seconds(180)) == 0, "\(browser.standardError.suffix(2000))")
        let output = browser.standardOutput
        let report = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
        func page(_ name: String) throws -> [String: Any] { try #require(report[name] as? [String: Any], "\(name)") }

        // Nothing a stored string holds ran or became markup, on any page.
        #expect((report["dialogs"] as? [Any])?.isEmpty == true, "dialogs: \(report["dialogs"] ?? "")")
        for name in ["board", "after_live", "filtered", "record", "stats", "datasets", "compare", "phone"] {
            let facts = try page(name)
            #expect(facts["images"] as? Int == 0 && facts["javascript_links"] as? Int == 0, "\(name)")
            #expect(facts["handlers"] as? Int == 0, "\(name): an element has an on… attribute")
            let scripts = facts["scripts"] as? [Any] ?? []
            #expect(scripts.allSatisfy { ($0 as? String) == "/assets/board.js" }, "\(name): \(scripts)")
        }
        let board = try page("board")
        #expect((board["rows"] as? [String])?.count == 3, "\(board["rows"] ?? "")")
        let text = board["text"] as? String ?? ""
        for name in Self.hostile { #expect(text.contains(name), "the board shows \(name) as text") }
        #expect(text.contains("javascript:alert(3)"))
        #expect(board["labelled_inputs"] as? Bool == true)

        // Keyboard: the skip link first, then into the content.
        let keyboard = report["keyboard"] as? [String: Any] ?? [:]
        #expect(keyboard["first"] as? String == "skip" && keyboard["hash"] as? String == "#main", "\(keyboard)")
        #expect(keyboard["next"] as? String == "INPUT", "\(keyboard)")
        // Live updates: the new result arrives as a row and is announced; the hidden one leaves, which is said too.
        #expect(report["inserted"] as? Bool == true, "\(report["inserted_live"] ?? "")")
        #expect((report["inserted_live"] as? String)?.contains("fresh rig entered at #") == true)
        #expect(report["websocket"] as? Bool == true && report["hidden_status"] as? Int == 200)
        #expect(report["live_update"] as? Bool == true)
        let live = try page("after_live")
        #expect(
            (live["rows"] as? [String])?.count == 3 && (live["live"] as? String)?.contains("left the board") == true)

        let filtered = try page("filtered")
        #expect((report["filtered_url"] as? String)?.contains("framework=sglang") == true)
        #expect((filtered["record_links"] as? [String]) == ["/records/\(records[0])"], "\(filtered["rows"] ?? "")")
        #expect(report["record_url"] as? String == "/records/\(records[0])")
        let record = try page("record")
        #expect(
            (record["svgs"] as? Int ?? 0) >= 2
                && (record["text"] as? String)?.contains("<img src=x onerror=alert(4)> fast") == true)
        #expect((try page("stats")["svgs"] as? Int ?? 0) >= 1)
        #expect((try page("datasets")["text"] as? String)?.contains(version) == true)
        #expect((try page("compare")["text"] as? String)?.contains("Tokens per second") == true)
        // A phone-width page does not scroll sideways (wide tables scroll in their own box).
        let phone = try page("phone")
        #expect((phone["overflow"] as? Int ?? 1) <= 0, "\(phone["overflow"] ?? "")")
        // scripts/screenshots: the same pages as pictures, desktop and phone width.
        if let directory = TestEnvironment.environment["SCREENSHOTS_DIR"], topology == .embedded {
            try await ExternalTools.run(
                ExternalTools.python,
                [
                    ExternalTools.pythonScripts.appendingPathComponent("browser.py").path, "screenshots", base,
                    directory,
                ],
                within: .seconds(180))
        }
        try await system.stop()
    }
}
