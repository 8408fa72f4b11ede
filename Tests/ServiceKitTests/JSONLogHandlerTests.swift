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

    @Test("metadata: the line's replaces the provider's, which replaces the handler's; the line's own fields stay")
    func metadataPrecedence() {
        let fields = JSONLogHandler.metadataFields(
            handler: ["target": "gateway", "client": "handler", "msg": "not this"],
            provided: ["client": "provider", "request_id": "provided"],
            line: ["request_id": "line", "status": "200", "ts": "not this either"])
        let byKey = Dictionary(uniqueKeysWithValues: fields.map { ($0.0, "\($0.1)") })
        #expect(
            byKey == ["target": "gateway", "client": "provider", "request_id": "line", "status": "200"])
        #expect(fields.count == 4)
    }

    @Test("generated request ids are 32 lowercase hex digits, different every time")
    func requestIDs() {
        let ids = (0..<1000).map { _ in RequestID.generate() }
        #expect(Set(ids).count == ids.count)
        for id in ids {
            #expect(
                id.utf8.count == 32 && id.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) })
        }
        // Every position takes more than one digit: no half is left zero or fixed.
        for position in 0..<32 {
            #expect(Set(ids.map { Array($0.utf8)[position] }).count > 1, "position \(position)")
        }
        #expect(RequestID.accept(ids[0]) == ids[0])
    }
}
