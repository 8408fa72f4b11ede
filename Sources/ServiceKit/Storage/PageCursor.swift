/// Opaque keyset-pagination cursors: base64url of the last row's sort key parts, one per line. Each service turns a
/// malformed cursor into its own `invalid_cursor` error.
public enum PageCursor {
    public static func encode(_ parts: [String]) -> String {
        Array(parts.joined(separator: "\n").utf8).base64URLEncoded
    }

    /// The parts of a cursor this encoding made; nil when `text` is not one (too long, not base64url, not UTF-8).
    public static func parts(of text: String, maximumLength: Int = 512) -> [String]? {
        guard text.utf8.count <= maximumLength, let bytes = [UInt8](base64URLEncoded: text),
            let decoded = String(validating: bytes, as: UTF8.self)
        else { return nil }
        return decoded.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }
}
