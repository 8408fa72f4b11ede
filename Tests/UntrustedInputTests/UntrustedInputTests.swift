import Foundation
import Testing
import UntrustedInput

@Suite("Parsers of untrusted input")
struct UntrustedInputTests {
    // MARK: JSON

    @Test(
        "JSON that RFC 8259 allows parses to the value it means",
        arguments: [
            ("{}", JSONValue.object([:])),
            (
                " [1, -2.5e3, true, false, null] ",
                .array([.number(1), .number(-2500), .bool(true), .bool(false), .null])
            ),
            (#""a\"b\\c\/d\n\u00e9\ud83d\ude00""#, .string("a\"b\\c/d\né😀")),
            (#"{"a":{"b":[]}}"#, .object(["a": .object(["b": .array([])])])),
            ("0", .number(0)), ("-0.5", .number(-0.5)), ("1E2", .number(100)),
        ])
    func jsonAccepted(text: String, expected: JSONValue) throws {
        #expect(try JSONValue.parse(Array(text.utf8)) == expected)
    }

    @Test(
        "JSON that is malformed, ambiguous or outside our limits is invalid_json",
        arguments: [
            "", "{", "[1,]", "{\"a\":1,}", "01", "1.", ".5", "+1", "1e", "--1", "NaN", "Infinity", "1e400", "-1e400",
            "[1] 2", "{\"a\" 1}", "{a:1}", "'a'", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00x\"",
            "\"\\ud800\\u0041\"", "\"a\u{01}b\"", "{\"a\":1,\"a\":2}", "tru", "nul",
            String(repeating: "[", count: 33) + String(repeating: "]", count: 33),
            String(repeating: "{\"a\":", count: 33) + "1" + String(repeating: "}", count: 33),
        ])
    func jsonRefused(text: String) {
        #expect(throws: InputError.self) { try JSONValue.parse(Array(text.utf8)) }
        do {
            _ = try JSONValue.parse(Array(text.utf8))
        } catch {
            #expect(error.code == "invalid_json")
        }
    }

    @Test("invalid UTF-8 inside a JSON string is refused, not repaired")
    func jsonInvalidUTF8() {
        #expect(throws: InputError.self) { try JSONValue.parse([0x22, 0xC3, 0x28, 0x22]) }
        #expect(throws: InputError.self) { try JSONValue.parse([0x22, 0xED, 0xA0, 0x80, 0x22]) }
    }

    @Test("deep nesting is refused at the limit: 32 levels parse, 33 do not, 100,000 are one quick refusal")
    func jsonDepth() throws {
        let ok = String(repeating: "[", count: 32) + String(repeating: "]", count: 32)
        _ = try JSONValue.parse(Array(ok.utf8))
        let huge = String(repeating: "[", count: 100_000)
        #expect(throws: InputError("invalid_json", "JSON nested deeper than 32 levels.")) {
            try JSONValue.parse(Array(huge.utf8))
        }
    }

    @Test("canonical text sorts keys, escapes what JSON requires, and parses back to the same value")
    func jsonCanonical() throws {
        let value = try JSONValue.parse(Array(#"{"b":[1.5,2],"a":"x\u0001\"/","c":null}"#.utf8))
        #expect(value.canonicalText == #"{"a":"x\u0001\"/","b":[1.5,2],"c":null}"#)
        #expect(try JSONValue.parse(Array(value.canonicalText.utf8)) == value)
    }

    @Test("typed fields name the full path of what is wrong")
    func jsonObjectErrors() throws {
        let body = try JSONObject.parse(Array(#"{"results":{"tps":"fast","n":1.5,"z":"a\u0000"},"list":[1]}"#.utf8))
        let results = try body.object("results")
        #expect(throws: InputError("invalid_field_type", "The field \"results.tps\" must be a finite number.")) {
            try results.double("tps")
        }
        #expect(throws: InputError("invalid_field_type", "The field \"results.n\" must be a 32-bit integer.")) {
            try results.optionalInt32("n")
        }
        #expect(throws: InputError.self) { try results.optionalString("z") }
        #expect(throws: InputError("missing_field", "The field \"results.gone\" is required.")) {
            try results.string("gone")
        }
        #expect(throws: InputError.self) { try body.optionalObjects("list") }
        #expect(try JSONObject.parse(Array("  ".utf8)).fields.isEmpty)
        #expect(throws: InputError("invalid_json", "The body must be one JSON object.")) {
            try JSONObject.parse(Array("[]".utf8))
        }
    }

    // MARK: encodings

    @Test("base64url: exactly one spelling of each byte string is accepted")
    func canonicalBase64() {
        let bytes: [UInt8] = [0xFB, 0xFF, 0x01]
        let canonical = Base64URL.encode(bytes)
        #expect(canonical == "-_8B")
        #expect(Base64URL.decodeCanonical(canonical) == bytes)
        // Standard alphabet, padding, whitespace and unused low bits all spell the same bytes differently.
        for other in ["+/8B", "-_8B=", " -_8B", "-_8B\n"] {
            #expect(Base64URL.decodeCanonical(other) == nil, "\(other)")
        }
        // Two bytes are three characters with two spare bits: "q80" and "q81" decode alike; only the first counts.
        #expect(Base64URL.encode([0xAB, 0xCD]) == "q80")
        #expect(Base64URL.decodeCanonical("q80") == [0xAB, 0xCD])
        #expect(Base64URL.decodeCanonical("q81") == nil)
        #expect(Base64URL.decodeCanonical("A") == nil)
        #expect(Base64URL.decodeCanonical("") == [])
    }

    @Test("page cursors round-trip and refuse anything this encoding did not make")
    func cursors() {
        let text = PageCursor.encode(["1700000000000000", "record"])
        #expect(PageCursor.parts(of: text) == ["1700000000000000", "record"])
        #expect(PageCursor.parts(of: text + "=") == nil)
        #expect(PageCursor.parts(of: Base64URL.encode([0x61, 0x00, 0x62])) == nil)
        #expect(PageCursor.parts(of: Base64URL.encode([0xFF, 0xFE])) == nil)
        #expect(PageCursor.parts(of: String(repeating: "A", count: 600)) == nil)
    }

    // MARK: Range

    @Test(
        "Range headers select the bytes RFC 9110 says",
        arguments: [
            ("bytes=0-99", 0..<100), ("bytes=100-", 100..<1000), ("bytes=-10", 990..<1000),
            ("bytes=-5000", 0..<1000), ("bytes=990-5000", 990..<1000), (" bytes=1-1 ", 1..<2),
        ] as [(String, Range<Int64>)])
    func ranges(header: String, expected: Range<Int64>) throws {
        #expect(try ByteRange.parse(header, size: 1000) == expected)
    }

    @Test(
        "malformed ranges, non-ASCII digits and ranges outside the bytes are refused without trapping",
        arguments: [
            "bytes=\u{663}-", "bytes=-\u{663}", "bytes=\u{FF11}-", "bytes=5-2", "bytes=1000-", "bytes=-0", "bytes=-",
            "bytes=0-1,2-3", "items=0-1", "bytes=+1-2", "bytes=1-+2", "bytes=99999999999999999999-",
            "bytes=0-99999999999999999999", "bytes=--1", "",
        ])
    func badRanges(header: String) {
        #expect(throws: InputError.self) { try ByteRange.parse(header, size: 1000) }
    }

    @Test("a range of an empty representation, or near the Int64 limit, is refused or exact, never a trap")
    func rangeExtremes() throws {
        #expect(throws: InputError.self) { try ByteRange.parse("bytes=0-", size: 0) }
        let size = Int64.max
        #expect(try ByteRange.parse("bytes=999999999999999999-", size: size) == 999_999_999_999_999_999..<size)
        #expect(try ByteRange.parse("bytes=-999999999999999999", size: size) == (size - 999_999_999_999_999_999)..<size)
    }

    // MARK: query

    static let listSpec = QuerySpec([
        .init("framework", .text(maximumLength: 64)), .init("limit", .integer(1...200), code: "invalid_limit"),
        .init("cursor", .cursor),
    ])

    @Test("a declared query is canonical: undeclared parameters are dropped and the declared ones ordered")
    func canonicalQuery() throws {
        let first = try Self.listSpec.parse("limit=20&utm=1&framework=v%4CLM+x")
        let second = try Self.listSpec.parse("framework=vLLM%20x&limit=20&random=\(UUID().uuidString)")
        #expect(first == second)
        #expect(first.canonical == "framework=vLLM%20x&limit=20")
        #expect(first.integer("limit") == 20)
        #expect(try Self.listSpec.parse("").canonical == "")
    }

    @Test(
        "declared parameters are checked: range, repetition, escapes, NUL, UTF-8, cursors",
        arguments: [
            ("limit=0", "invalid_limit"), ("limit=201", "invalid_limit"), ("limit=1.5", "invalid_limit"),
            ("limit=%2B1", "invalid_limit"), ("limit=1&limit=2", "invalid_limit"), ("framework=%zz", "invalid_query"),
            ("framework=a%00", "invalid_character"), ("framework=%C3%28", "invalid_character"),
            ("cursor=%%%", "invalid_cursor"), ("cursor=abc=", "invalid_cursor"), ("%zz=1&limit=5", "invalid_query"),
            ("framework=" + String(repeating: "x", count: 65), "invalid_query"),
        ])
    func badQueries(query: String, code: String) {
        do {
            _ = try Self.listSpec.parse(query)
            Issue.record("accepted \(query)")
        } catch {
            #expect(error.code == code, "\(query)")
        }
    }

    // MARK: signatures

    static let hexNonce = "5f2b8c1e9d4a4c3b8e7f1a2b3c4d5e6f"
    static let signature = String(repeating: "ab", count: 32)

    @Test("v1 nonces have a fixed shape; v2 nonces are free printable text")
    func nonces() throws {
        for nonce in [Self.hexNonce, Self.hexNonce.uppercased(), "5F2B8C1E-9D4A-4C3B-8E7F-1A2B3C4D5E6F"] {
            _ = try SignatureHeaders.parse(
                deviceID: "d", requestTime: "1767225600", nonce: nonce, signature: Self.signature, versionHeader: nil)
        }
        for nonce in [
            "short-nonce-1", Self.hexNonce + "{", String(Self.hexNonce.dropLast()), "5f2b8c1e9d4a4c3b8e7f1a2b3c4d5e6g",
        ] {
            #expect(throws: InputError.self, "\(nonce)") {
                try SignatureHeaders.parse(
                    deviceID: "d", requestTime: "1767225600", nonce: nonce, signature: Self.signature,
                    versionHeader: "1")
            }
        }
        _ = try SignatureHeaders.parse(
            deviceID: "d", requestTime: "1767225600", nonce: "free~text!", signature: Self.signature, versionHeader: "2"
        )
    }

    /// Splits `message` (after the device id) into time, nonce and body at every pair of points.
    static func resplits(of message: [UInt8], idLength: Int) -> [(time: String, nonce: String, body: [UInt8])] {
        let rest = Array(message[idLength...])
        var found: [(String, String, [UInt8])] = []
        for timeEnd in 1...min(12, rest.count) {
            for nonceEnd in timeEnd...min(rest.count, timeEnd + 128) {
                found.append(
                    (
                        String(decoding: rest[0..<timeEnd], as: UTF8.self),
                        String(decoding: rest[timeEnd..<nonceEnd], as: UTF8.self), Array(rest[nonceEnd...])
                    ))
            }
        }
        return found
    }

    @Test("property: no accepted v1 request can be re-split into another acceptable one (same bytes, same HMAC)")
    func v1Unambiguous() throws {
        var generator = SystemRandomNumberGenerator()
        let deviceID = "0fa60e85d629dda79f882dd836da4a47"
        let bodies: [[UInt8]] = [
            [], Array(#"{"a":1}"#.utf8), Array("5f2b8c1e{}".utf8), Array("-9d4a-4c3b-8e7f-1a2b3c4d5e6f{}".utf8),
            Array("0123456789abcdef0123456789abcdef".utf8),
        ]
        for round in 0..<60 {
            let seconds = Int64.random(in: 1_700_000_000...1_900_000_000, using: &generator)
            let uuid = UUID().uuidString
            let nonce =
                round % 2 == 0
                ? uuid.replacing("-", with: "").lowercased() : (round % 3 == 0 ? uuid : uuid.lowercased())
            let body = bodies[round % bodies.count]
            let message = Array((deviceID + String(seconds) + nonce).utf8) + body
            for (time, otherNonce, otherBody) in Self.resplits(of: message, idLength: deviceID.utf8.count) {
                guard time != String(seconds) || otherNonce != nonce || otherBody != body else { continue }
                guard
                    let other = try? SignatureHeaders.parse(
                        deviceID: deviceID, requestTime: time, nonce: otherNonce, signature: Self.signature,
                        versionHeader: "1")
                else { continue }
                // The form is acceptable; only a time outside the ±300 s window may still save us.
                #expect(abs(other.seconds - seconds) > 600, "re-split accepted: \(time) \(otherNonce)")
            }
        }
    }

    @Test("the request time is 1 to 12 ASCII digits")
    func requestTimes() {
        #expect(SignatureHeaders.parseTime("1767225600") == 1_767_225_600)
        for bad in ["", "-1", "+1", "1.0", "1e9", "\u{663}", "1234567890123", " 1"] {
            #expect(SignatureHeaders.parseTime(bad) == nil, "\(bad)")
        }
    }

    // MARK: addresses

    @Test("IPv4, IPv6 and IPv4-mapped addresses; IPv6 is rate-limited by its /64")
    func addresses() throws {
        #expect(IPAddress.parse("192.0.2.1")?.limitKey == "ip:192.0.2.1")
        #expect(IPAddress.parse("::ffff:192.0.2.1") == IPAddress.parse("192.0.2.1"))
        let first = try #require(IPAddress.parse("2001:db8:1:2:aaaa::1"))
        let second = try #require(IPAddress.parse("[2001:db8:1:2:bbbb::9]"))
        #expect(first.limitKey == second.limitKey)
        #expect(first.limitKey != IPAddress.parse("2001:db8:1:3::1")?.limitKey)
        for bad in ["", "1.2.3", "1.2.3.4.5", "256.1.1.1", "fe80::1%eth0", "1.2.3.4:80", "::g", "[::1", "localhost"] {
            #expect(IPAddress.parse(bad) == nil, "\(bad)")
        }
        #expect(IPNetwork.parse("10.0.0.0/8")?.contains(try #require(IPAddress.parse("10.9.8.7"))) == true)
        #expect(IPNetwork.parse("10.0.0.0/8")?.contains(try #require(IPAddress.parse("11.0.0.1"))) == false)
        #expect(IPNetwork.parse("fd00::/8")?.contains(try #require(IPAddress.parse("fd12::1"))) == true)
        #expect(IPNetwork.parse("10.0.0.0/33") == nil)
    }

    @Test(
        "forwarding headers are believed only from trusted proxies, walking from the right",
        arguments: [
            // peer, header values, expected client
            ("203.0.113.9", ["198.51.100.1"], "203.0.113.9"),  // an untrusted peer is the client, whatever it says
            ("10.0.0.2", ["198.51.100.1"], "198.51.100.1"),
            ("10.0.0.2", ["6.6.6.6, 198.51.100.1, 10.0.0.1"], "198.51.100.1"),  // the client's own entry is left of it
            ("10.0.0.2", ["6.6.6.6", "198.51.100.1"], "198.51.100.1"),  // two header lines
            ("10.0.0.2", ["unknown"], "10.0.0.2"),
            ("10.0.0.2", [], "10.0.0.2"),
            ("10.0.0.2", ["198.51.100.1:4711"], "198.51.100.1"),
            ("10.0.0.2", ["[2001:db8::7]:443"], "2001:db8:0:0:0:0:0:7"),
        ])
    func forwardedFor(peer: String, values: [String], expected: String) {
        let resolver = ClientAddressResolver(trustedProxies: ["10.0.0.0/8"].compactMap(IPNetwork.parse))
        #expect(resolver.resolve(peer: peer, headerValues: values)?.description == expected)
    }

    @Test("RFC 7239 Forwarded: for= values, quoted IPv6 with ports, other parameters ignored")
    func forwarded() {
        let resolver = ClientAddressResolver(
            trustedProxies: ["10.0.0.0/8"].compactMap(IPNetwork.parse), header: .forwarded)
        #expect(
            resolver.resolve(peer: "10.0.0.2", headerValues: [#"for="[2001:db8:cafe::17]:4711";proto=https"#])?
                .description == "2001:db8:cafe:0:0:0:0:17")
        #expect(
            resolver.resolve(peer: "10.0.0.2", headerValues: ["for=6.6.6.6, for=192.0.2.60;by=10.0.0.1"])?.description
                == "192.0.2.60")
        #expect(resolver.resolve(peer: "10.0.0.2", headerValues: ["for=_hidden"])?.description == "10.0.0.2")
    }

    @Test("a peer that is no trusted proxy is every one of its requests' client; a trusted one leaves it to headers")
    func fixedClient() {
        let resolver = ClientAddressResolver(trustedProxies: ["10.0.0.0/8"].compactMap(IPNetwork.parse))
        #expect(resolver.fixedClient(peer: "203.0.113.9")?.description == "203.0.113.9")
        #expect(
            resolver.fixedClient(peer: "203.0.113.9")
                == resolver.resolve(peer: "203.0.113.9", headerValues: ["1.2.3.4"]))
        #expect(resolver.fixedClient(peer: "10.0.0.2") == nil)
        #expect(resolver.fixedClient(peer: "") == nil)
    }
}
