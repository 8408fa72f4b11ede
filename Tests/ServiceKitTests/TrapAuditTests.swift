import Foundation
import TestSupport
import Testing

/// Nothing a request, a file or a peer sends may crash a process (ARCHITECTURE.md §11, docs/SECURITY.md). Parsers of
/// untrusted input live in UntrustedInput and are fuzzed; this audit keeps the rest honest: every operation in
/// `Sources/` that can trap on its own — a force unwrap, `try!`, `as!`, `fatalError`, a precondition or assertion —
/// must be in the reviewed list below, with the reason no input can reach it. A new one fails this test until it is
/// removed or reviewed.
@Suite("Trap audit of Sources/")
struct TrapAuditTests {
    /// (file, the line's code exactly as written, why no outside input reaches it).
    static let reviewed: [(file: String, code: String, reason: String)] = [
        (
            "Sources/ServiceKit/Storage/ServiceDatabase.swift",
            #"precondition(schema.allSatisfy { $0.isASCII && ($0.isLowercase || $0 == "_") }, "schema must be [a-z_]")"#,
            "schema names are the targets' raw values"
        ),
        (
            "Sources/ServiceKit/Modules/Target.swift",
            "allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!  // both are cases of allCases",
            "every case is in allCases"
        ),
        (
            "Sources/ServiceKit/SharedState/RateLimiter.swift",
            #"precondition(limit > 0 && period > .zero, "a rate limit needs a positive limit and period")"#,
            "policies come from validated settings; an API key's stored limit is clamped to 1 or more by the gateway"
        ),
        (
            "Sources/ServiceKit/SharedState/RankIndex.swift",
            "var chunkIndex = chunks.partitionIndex(steps: &steps) { !Self.ascending($0.last!, entry) }",
            "chunks are never empty: an emptied chunk is removed"
        ),
        (
            "Sources/ServiceKit/SharedState/RankIndex.swift",
            "let chunkIndex = chunks.partitionIndex(steps: &steps) { !Self.ascending($0.last!, entry) }",
            "chunks are never empty: an emptied chunk is removed"
        ),
        (
            "Sources/ServiceKit/Observability/Logging.swift", "appendValue(dictionary[key]!, to: &line)",
            "iterates the dictionary's own keys"
        ),
        (
            "Sources/ServiceKit/Redis/HiredisCodec.swift", "reader = redisReaderCreate()!",
            "fails only when memory is exhausted"
        ),
        (
            "Sources/ServiceKit/Crypto/RandomSource.swift", "precondition(upperBound > 0 && upperBound <= 256)",
            "called with constants"
        ),
        (
            "Sources/ServiceKit/Observability/Telemetry.swift",
            #"precondition(values.count == labels.count, "\(name) takes labels \(labels)")"#,
            "label values are passed by code, as many as the family declares; their values are closed sets"
        ),
        (
            "Sources/ServiceKit/Observability/Telemetry.swift",
            #"precondition(kind == .counter, "\(name) is not a counter")"#,
            "each family is used as the kind it is declared as (MetricFamilies), by code"
        ),
        (
            "Sources/ServiceKit/Observability/Telemetry.swift",
            #"precondition(kind == .gauge, "\(name) is not a gauge")"#,
            "each family is used as the kind it is declared as (MetricFamilies), by code"
        ),
        (
            "Sources/ServiceKit/Observability/Telemetry.swift",
            #"precondition(kind == .histogram, "\(name) is not a histogram")"#,
            "each family is used as the kind it is declared as (MetricFamilies), by code"
        ),
        (
            "Sources/ServiceKit/Crypto/MasterKey.swift",
            #"precondition(bytes.count == 32, "the master key is 32 bytes")"#,
            "every caller checks the length first and reports a configuration error"
        ),
        (
            "Sources/LeaderboardClient/DatasetDownload.swift",
            "pwrite(fd, $0.baseAddress! + written, bytes.count - written, off_t(offset) + off_t(written))",
            "inside `while written < bytes.count`: the buffer is not empty"
        ),
        (
            "Sources/LeaderboardClient/DatasetDownload.swift",
            "let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, $0.count, offset) }",
            "the buffer is 1 MiB"
        ),
    ]

    /// `Self("X-Name")!` for a constant header name: checked once, at first use, by HTTPTypes.
    static var headerNameConstant: Regex<(Substring, Substring?, Substring?)> {
        #/^(public )?static let \w+ = Self\("[A-Za-z-]+"\)!( +//.*)?$/#
    }

    static var trap: Regex<Substring> {
        #/try!|\bfatalError\(|\bprecondition\(|\bpreconditionFailure\(|\bassert\(|\bassertionFailure\(|\bas!|[\w\)\]]!(?!=)/#
    }

    @Test("every trap in Sources/ is reviewed; none is reachable from outside input")
    func audit() throws {
        let root = TestEnvironment.repositoryRoot.appendingPathComponent("Sources")
        let files = try #require(FileManager.default.enumerator(atPath: root.path)).compactMap { $0 as? String }
            .filter { $0.hasSuffix(".swift") && !$0.contains("/Generated/") }
        #expect(files.count > 50)
        var unreviewed: [String] = []
        var seen = Set<String>()
        for file in files {
            let text = try String(contentsOf: root.appendingPathComponent(file), encoding: .utf8)
            for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                // A cheap look first: Swift's Regex is slow, and most lines hold no candidate at all.
                guard
                    rawLine.contains("!") || rawLine.contains("fatalError") || rawLine.contains("precondition")
                        || rawLine.contains("assert")
                else { continue }
                let line = rawLine.trimmingCharacters(in: .whitespaces)
                guard !line.hasPrefix("//"), line.contains(Self.trap) else { continue }
                // String literals may hold "!" (messages); only code outside quotes counts.
                let code = line.split(separator: "\"", omittingEmptySubsequences: false).enumerated()
                    .filter { $0.offset % 2 == 0 }.map(\.element).joined(separator: "\"\"")
                guard code.contains(Self.trap) else { continue }
                if line.wholeMatch(of: Self.headerNameConstant) != nil { continue }
                let path = "Sources/\(file)"
                if Self.reviewed.contains(where: { $0.file == path && $0.code == line }) {
                    seen.insert("\(path)|\(line)")
                    continue
                }
                unreviewed.append("\(path):\(number + 1): \(line)")
            }
        }
        #expect(unreviewed.isEmpty, "traps nobody reviewed:\n\(unreviewed.joined(separator: "\n"))")
        let stale = Self.reviewed.filter { !seen.contains("\($0.file)|\($0.code)") }.map { "\($0.file): \($0.code)" }
        #expect(stale.isEmpty, "reviewed entries that no longer exist (remove them):\n\(stale.joined(separator: "\n"))")
    }
}
