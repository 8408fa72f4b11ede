import Foundation
import Testing
import UntrustedInput

@Suite("multipart/form-data, parsed as it arrives")
struct MultipartFormTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/deepstressmodel")

    static let generous = MultipartForm.Limits(maximumPartBytes: { _ in 1 << 20 })

    /// The DeepStressModel client's captured request: (Content-Type, body).
    static func capturedRequest() throws -> (String, [UInt8]) {
        let raw = Array(try Data(contentsOf: fixtures.appendingPathComponent("result_upload_request.http")))
        let separator: [UInt8] = [13, 10, 13, 10]
        let end = try #require(
            (0...(raw.count - 4)).first { Array(raw[$0..<($0 + 4)]) == separator })
        let head = String(decoding: raw[..<end], as: UTF8.self)
        let contentType = try #require(
            head.components(separatedBy: "\r\n").first { $0.lowercased().hasPrefix("content-type:") }?
                .dropFirst("content-type:".count).trimmingCharacters(in: .whitespaces))
        return (contentType, Array(raw[(end + 4)...]))
    }

    static func parse(_ body: [UInt8], boundary: String, chunk: Int, limits: MultipartForm.Limits = generous)
        throws(InputError) -> [MultipartForm.Part]
    {
        var form = MultipartForm(boundary: boundary, limits: limits)
        var parts: [MultipartForm.Part] = []
        var start = 0
        while start < body.count {
            let end = min(body.count, start + chunk)
            parts += try form.feed(body[start..<end])
            start = end
        }
        try form.finish()
        return parts
    }

    @Test(
        "the real client's upload gives its three parts, in order, whatever the chunking",
        arguments: [1, 7, 4096, 1 << 20])
    func capturedUpload(chunk: Int) throws {
        let (contentType, body) = try Self.capturedRequest()
        let boundary = try MultipartForm.boundary(contentType: contentType)
        #expect(boundary == "43d98b7ca7ee88a86d5feded7fbc7fca")
        let parts = try Self.parse(body, boundary: boundary, chunk: chunk)
        #expect(parts.map(\.name) == ["api_key", "metadata", "file"])
        #expect(parts[0].body == Array("test-api-key-0123456789abcdefghijklmnop".utf8))
        #expect(parts[2].filename?.hasPrefix("benchmark_encrypted_") == true)
        #expect(parts.allSatisfy { $0.contentType == nil })
        let file = Array(try Data(contentsOf: Self.fixtures.appendingPathComponent("result_upload.dat")))
        #expect(parts[2].body == file)
    }

    @Test(
        "boundaries come from multipart/form-data only, quoted or not, within RFC 2046's alphabet",
        arguments: [
            ("multipart/form-data; boundary=abc", "abc"), ("Multipart/Form-Data;boundary=\"a b:c\"", "a b:c"),
            ("multipart/form-data; charset=utf-8; boundary=x-y_z", "x-y_z"),
        ])
    func boundaries(contentType: String, expected: String) throws {
        #expect(try MultipartForm.boundary(contentType: contentType) == expected)
    }

    @Test(
        "a media type that is not form data, or a boundary that cannot be one, is invalid_multipart",
        arguments: [
            "application/json", "multipart/form-data", "multipart/form-data; boundary=", "multipart/mixed; boundary=a",
            "multipart/form-data; boundary=\"a\u{7}\"", "multipart/form-data; boundary=\"abc \"",
            "multipart/form-data; boundary=" + String(repeating: "a", count: 71), "multipart/form-data; boundary=\"ab",
        ])
    func badBoundaries(contentType: String) {
        #expect(
            throws: InputError(
                "invalid_multipart", "Content-Type must be multipart/form-data with a boundary of 1 to 70 characters.")
        ) {
            try MultipartForm.boundary(contentType: contentType)
        }
    }

    static func body(_ parts: [(String, String)], boundary: String = "b0und", closing: Bool = true) -> [UInt8] {
        var text = "preamble text\r\n"
        for (headers, body) in parts { text += "--\(boundary)\r\n\(headers)\r\n\r\n\(body)\r\n" }
        if closing { text += "--\(boundary)--\r\nepilogue" }
        return Array(text.utf8)
    }

    @Test("a body that looks like a delimiter but is not one stays in the part; the epilogue is ignored")
    func nearDelimiters() throws {
        let tricky = "line\r\n--b0un\r\n--b0unX\r\r\n-"
        let body = Self.body([("Content-Disposition: form-data; name=\"a\"; filename=\"q\\\"x.dat\"", tricky)])
        for chunk in [1, 2, 3, 5, 100] {
            let parts = try Self.parse(body, boundary: "b0und", chunk: chunk)
            #expect(parts == [.init(name: "a", filename: "q\"x.dat", body: Array(tricky.utf8))])
        }
    }

    @Test("each limit is enforced while the bytes arrive, with its own code")
    func limits() throws {
        let limited = MultipartForm.Limits(
            maximumParts: 2, maximumHeaderBytes: 100, maximumPartBytes: { $0 == "small" ? 4 : 100 })
        let disposition = "Content-Disposition: form-data; name="
        #expect(
            try Self.parse(Self.body([(disposition + "small", "1234")]), boundary: "b0und", chunk: 3, limits: limited)
                .count == 1)
        #expect(throws: InputError("part_too_large", "The part \"small\" is larger than 4 bytes.")) {
            // Refused from the fifth byte on, before the part ends.
            var form = MultipartForm(boundary: "b0und", limits: limited)
            _ = try form.feed(
                Self.body([(disposition + "small", "12345" + String(repeating: "x", count: 50))], closing: false))
        }
        #expect(throws: InputError("too_many_parts", "A body may have at most 2 parts.")) {
            try Self.parse(
                Self.body([(disposition + "a", ""), (disposition + "b", ""), (disposition + "c", "")]),
                boundary: "b0und", chunk: 64, limits: limited)
        }
        #expect(throws: InputError.self) {
            try Self.parse(
                Self.body([(disposition + "a\r\nX-Long: " + String(repeating: "h", count: 120), "")]),
                boundary: "b0und", chunk: 64, limits: limited)
        }
        #expect(throws: InputError("invalid_multipart", "The body does not start with its boundary.")) {
            var form = MultipartForm(boundary: "b0und", limits: limited)
            _ = try form.feed(Array(String(repeating: "p", count: 200).utf8))
        }
    }

    @Test(
        "malformed bodies are invalid_multipart, never a trap",
        arguments: [
            "--b0und\r\n\r\nno disposition\r\n--b0und--",
            "--b0und\r\nContent-Disposition: attachment; name=a\r\n\r\nx\r\n--b0und--",
            "--b0und\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b0und--",
            "--b0und\r\nContent-Disposition: form-data; name=\"\"\r\n\r\nx\r\n--b0und--",
            "--b0und\r\nContent-Disposition: form-data; name=a\r\n folded\r\n\r\nx\r\n--b0und--",
            "--b0und\r\nno colon\r\n\r\nx\r\n--b0und--", "--b0und junk\r\n",
            "--b0und\r\nContent-Disposition: form-data; name=a\r\n\r\nx",
            "--b0und\r\nContent-Disposition: form-data; name=a\r\nContent-Disposition: form-data; name=b\r\n\r\nx\r\n--b0und--",
            "--b0und\r\nContent-Disposition: form-data; name=\"a\r\n\r\nx\r\n--b0und--", "",
        ])
    func malformed(text: String) {
        #expect(throws: InputError.self) { try Self.parse(Array(text.utf8), boundary: "b0und", chunk: 4) }
    }
}
