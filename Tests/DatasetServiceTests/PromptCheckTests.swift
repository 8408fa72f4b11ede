import Foundation
import ServiceKit
import TestSupport
import Testing

@testable import DatasetService

/// `CheckPrompts`: a DeepStressModel result's prompts against a version as its offline package presents them.
@Suite("A result's prompts checked against the dataset version")
struct PromptCheckTests {
    static let prompts = [
        "短问题", "Explain the difference between a process and a thread in two sentences, with an example each.",
        "表情 😀 与国旗 🇨🇳 都按 Python 的字符数计算，这一句话超过五十个字符，所以客户端只保留前五十个字符并加上省略号。", "x",
    ]

    /// What the client records of a prompt: Python's `text[:50] + "..."` over code points.
    static func claim(_ id: Int64, _ text: String) -> DatasetAuthority.PromptClaim {
        let scalars = Array(text.unicodeScalars)
        let input =
            scalars.count > 50
            ? String(String.UnicodeScalarView(scalars.prefix(50))) + "..." : text
        return .init(id: id, input: input, inputChars: Int64(scalars.count))
    }

    @Test("the exact prompts pass; another text, length or id is named", arguments: StorageBackend.available)
    func check(_ backend: StorageBackend) async throws {
        try await DatasetHarness.with(backend) { harness in
            let lines = try Self.prompts.map {
                String(decoding: try JSONSerialization.data(withJSONObject: ["prompt": $0]), as: UTF8.self)
            }
            _ = try await harness.upload("p1", Array((lines.joined(separator: "\n") + "\n").utf8))
            let exact = Self.prompts.enumerated().map { Self.claim(Int64($0.offset + 1), $0.element) }
            let passed = try await harness.authority.checkPrompts(version: "p1", claims: exact)
            #expect(passed.datasetName == "p1" && passed.items == 4)
            #expect(passed.unknownIDs.isEmpty && passed.mismatchedIDs.isEmpty)

            var wrong = exact
            wrong[0].input = "另一个问题"
            wrong[1].inputChars += 1
            wrong[3].id = 99
            let failed = try await harness.authority.checkPrompts(version: "p1", claims: wrong)
            #expect(failed.mismatchedIDs == [1, 2] && failed.unknownIDs == [99])

            await #expect(throws: (any Error).self) {
                try await harness.authority.checkPrompts(version: "missing", claims: exact)
            }
        }
    }

    @Test("the recorded form cuts at 50 code points, as Python does")
    func recorded() {
        #expect(DeepStressModelDataset.recorded("abc") == "abc")
        #expect(DeepStressModelDataset.recorded(String(repeating: "é", count: 50)) == String(repeating: "é", count: 50))
        #expect(DeepStressModelDataset.recorded(String(repeating: "🇨🇳", count: 30)).unicodeScalars.count == 53)
    }
}
