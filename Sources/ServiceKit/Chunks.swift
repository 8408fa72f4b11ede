extension Collection {
    /// The elements in consecutive slices of at most `size` (the last may be shorter): how a long list becomes
    /// statements or commands of bounded size (PostgreSQL takes at most 65,535 binds; Redis commands stay small).
    public func chunks(of size: Int) -> [SubSequence] {
        let size = Swift.max(1, size)
        var slices: [SubSequence] = []
        var start = startIndex
        while start != endIndex {
            let end = index(start, offsetBy: size, limitedBy: endIndex) ?? endIndex
            slices.append(self[start..<end])
            start = end
        }
        return slices
    }
}
