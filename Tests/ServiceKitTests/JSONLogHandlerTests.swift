import Foundation
import Logging
import Testing

@testable import ServiceKit

@Suite("JSON log lines")
struct JSONLogHandlerTests {
    @Test("a line is one JSON object in key order; quotes, backslashes and control characters are escaped")
    func escaping() throws {
        let awkward = "say \"hi\"\\ then\nnext\tline\r\u{01} é /path"
        let line = JSONLogHandler.line([
            ("msg", .string(awkward)), ("a", .array([.string("x"), .stringConvertible(42)])),
            ("nested", .dictionary(["k": .string("v"), "b": .string("\u{1F}")])),
        ])
        #expect(line.last == 0x0A)
        #expect(line.dropLast().contains(0x0A) == false)  // one line, whatever the message holds
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any])
        #expect(object["msg"] as? String == awkward)
        #expect(object["a"] as? [String] == ["x", "42"])
        #expect(object["nested"] as? [String: String] == ["k": "v", "b": "\u{1F}"])
        let text = String(decoding: line, as: UTF8.self)
        #expect(text.hasPrefix(#"{"a":"#))
        #expect(text.range(of: #""msg":"#)!.lowerBound < text.range(of: #""nested":"#)!.lowerBound)
    }

    @Test("timestamps are UTC with milliseconds")
    func timestamp() throws {
        let stamp = JSONLogHandler.timestamp()
        #expect(stamp.count == 24)
        #expect(stamp.hasSuffix("Z"))
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let parsed = try #require(formatter.date(from: stamp))
        #expect(abs(parsed.timeIntervalSinceNow) < 5)
    }
}
