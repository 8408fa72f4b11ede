/// Opaque keyset-pagination cursors: canonical base64url of the last row's sort-key parts, one per line. Each
/// service turns a cursor that does not parse into its own `invalid_cursor` error.
public enum PageCursor {
    public static func encode(_ parts: [String]) -> String {
        Base64URL.encode(Array(parts.joined(separator: "\n").utf8))
    }

    /// The parts of a cursor this encoding made; nil when `text` is not one (too long, not canonical base64url, not
    /// UTF-8, a NUL anywhere).
    public static func parts(of text: some StringProtocol, maximumLength: Int = 512) -> [String]? {
        guard text.utf8.count <= maximumLength, let bytes = Base64URL.decodeCanonical(text), !bytes.contains(0),
            let decoded = String(validating: bytes, as: UTF8.self)
        else { return nil }
        return decoded.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }
}
