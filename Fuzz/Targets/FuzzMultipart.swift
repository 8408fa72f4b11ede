import UntrustedInput

/// multipart/form-data bodies: the parser never traps, keeps its limits, and gives the same parts (or the same
/// error) however the body is split into chunks. The first line is the Content-Type; the rest is the body.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMultipart(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let input = bytes(data, count)
    let newline = input.firstIndex(of: 10) ?? input.count
    let contentType = text(input[..<newline])
    let body = Array(input[min(input.count, newline + 1)...])
    let boundary = (try? MultipartForm.boundary(contentType: contentType)) ?? "b0und"
    let limits = MultipartForm.Limits(
        maximumParts: 4, maximumHeaderBytes: 256, maximumPartBytes: { $0.utf8.count * 64 })
    func parse(chunk: Int) -> Result<[MultipartForm.Part], InputError> {
        var form = MultipartForm(boundary: boundary, limits: limits)
        var parts: [MultipartForm.Part] = []
        var start = 0
        do throws(InputError) {
            while start < body.count {
                let end = min(body.count, start + chunk)
                parts += try form.feed(body[start..<end])
                start = end
            }
            try form.finish()
            return .success(parts)
        } catch {
            return .failure(error)
        }
    }
    let whole = parse(chunk: max(1, body.count))
    let split = parse(chunk: 1 + (count % 7))
    switch (whole, split) {
    case (.success(let a), .success(let b)):
        require(a == b, "chunking changed the parts")
        require(a.count <= 4, "more parts than the limit")
        for part in a { require(part.body.count <= part.name.utf8.count * 64, "a part beyond its limit") }
    case (.failure(let a), .failure(let b)):
        require(a.code == b.code, "chunking changed the error: \(a) vs \(b)")
    default:
        require(false, "chunking changed whether the body parses")
    }
    return 0
}
