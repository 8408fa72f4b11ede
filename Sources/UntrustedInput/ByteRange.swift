/// One `Range: bytes=…` range (RFC 9110 §14.1.2) over a representation of `size` bytes.
///
/// `bytes=first-last`, `bytes=first-` and `bytes=-suffix`, ASCII digits only (at most 18, so every value fits an
/// Int64). Several ranges, other units and malformed specs are `invalid_range`; a well-formed range that selects
/// nothing of the representation is `range_not_satisfiable`. Both become 416 at the gateway.
public enum ByteRange {
    public static func parse(_ header: some StringProtocol, size: Int64) throws(InputError) -> Range<Int64> {
        let malformed = InputError(
            "invalid_range", "Range must be one range: bytes=first-last, bytes=first- or bytes=-suffix.")
        var bytes = Array(header.utf8)[...]
        while let first = bytes.first, first == 0x20 || first == 0x09 { bytes = bytes.dropFirst() }
        while let last = bytes.last, last == 0x20 || last == 0x09 { bytes = bytes.dropLast() }
        let unit = Array("bytes=".utf8)
        guard bytes.starts(with: unit) else { throw malformed }
        let spec = bytes.dropFirst(unit.count)
        guard let dash = spec.firstIndex(of: UInt8(ascii: "-")) else { throw malformed }
        let firstText = spec[spec.startIndex..<dash]
        let lastText = spec[spec.index(after: dash)...]
        func number(_ digits: ArraySlice<UInt8>) -> Int64? {
            guard digits.count <= 18, digits.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
            return digits.reduce(Int64(0)) { $0 * 10 + Int64($1 - 0x30) }
        }
        guard let first = number(firstText), let last = number(lastText), !(firstText.isEmpty && lastText.isEmpty)
        else { throw malformed }
        let outside = InputError("range_not_satisfiable", "The range selects none of the \(max(0, size)) bytes.")
        guard size > 0 else { throw outside }
        if firstText.isEmpty {
            // A suffix: the last `last` bytes.
            guard last > 0 else { throw outside }
            return max(0, size - last)..<size
        }
        let end = lastText.isEmpty ? size - 1 : min(last, size - 1)
        guard first < size, first <= end else { throw outside }
        return first..<(end + 1)
    }
}
