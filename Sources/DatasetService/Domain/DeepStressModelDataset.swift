import Foundation
import GRPCCore
import ServiceKit

/// How a dataset version becomes the plaintext a DeepStressModel client expects
/// (`{name, version, description, data: [{id, text, label, metadata}]}`, docs/DEEPSTRESSMODEL.md):
/// - a JSON object with a `data` array (the client's own shape): each item's `text` (or `input`, `prompt`) is kept,
///   with its `id` (default: its position), `label` (default 0) and `expected_output`;
/// - JSON Lines: each non-empty line a JSON object with `prompt`, `text` or `input`, or a JSON string.
/// Anything else is refused with the reason: the client would have nothing to send.
enum DeepStressModelDataset {
    struct Mapped {
        /// The package's plaintext: 2-space indented, one trailing newline.
        var plaintext: [UInt8]
        /// The client's legacy signature input: sorted keys, non-ASCII escaped.
        var signatureInput: [UInt8]
        /// The items' ids and prompts, in order.
        var prompts: [(id: Int, text: String)]
        var items: Int { prompts.count }
    }

    /// What the client records of a prompt in its result: the first 50 characters (code points, as Python counts),
    /// then "..." when there were more.
    static func recorded(_ prompt: String) -> String {
        let scalars = prompt.unicodeScalars
        guard scalars.count > 50 else { return prompt }
        var cut = String.UnicodeScalarView()
        cut.append(contentsOf: scalars.prefix(50))
        return String(cut) + "..."
    }

    static let maximumItems = 100_000

    static func map(_ bytes: [UInt8], name: String, version: String, description: String) throws(DatasetError)
        -> Mapped
    {
        var prompts: [(id: Int, text: String, label: Int, expected: String?)] = []
        func item(_ object: [String: Any], position: Int) {
            guard let text = (object["text"] ?? object["input"] ?? object["prompt"]) as? String, !text.isEmpty else {
                return
            }
            let id = (object["id"] as? NSNumber).flatMap { Int(exactly: $0.doubleValue) } ?? position
            let label = (object["label"] as? NSNumber).flatMap { Int(exactly: $0.doubleValue) } ?? 0
            prompts.append((id, text, label, object["expected_output"] as? String))
        }
        if let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
            let data = object["data"] as? [Any]
        {
            for (index, entry) in data.enumerated() {
                if let entry = entry as? [String: Any] { item(entry, position: index + 1) }
            }
        } else {
            var position = 0
            for line in bytes.split(separator: UInt8(ascii: "\n")) where !line.allSatisfy({ $0 == 32 || $0 == 13 }) {
                position += 1
                guard let value = try? JSONSerialization.jsonObject(with: Data(line), options: [.fragmentsAllowed])
                else { continue }
                if let text = value as? String {
                    item(["text": text], position: position)
                } else if let object = value as? [String: Any] {
                    item(object, position: position)
                }
            }
        }
        guard !prompts.isEmpty, prompts.count <= maximumItems else {
            throw DatasetError(
                code: "dataset_not_mappable",
                detail:
                    "This dataset version has no prompts a DeepStressModel client can send (JSON Lines with prompt, text or input, or {\"data\": [{\"text\": …}]}), or more than \(maximumItems).",
                status: .failedPrecondition)
        }
        func items(sorted: Bool) -> [Any] {
            prompts.map { prompt in
                var members: [(String, Any)] = [
                    ("id", prompt.id), ("text", prompt.text), ("label", prompt.label),
                    ("metadata", PythonJSON.Object([("source", version)])),
                ]
                if let expected = prompt.expected { members.append(("expected_output", expected)) }
                if sorted { members.sort { $0.0 < $1.0 } }
                return PythonJSON.Object(members)
            }
        }
        let top: [(String, Any)] = [
            ("name", name), ("version", version), ("description", description), ("data", items(sorted: false)),
        ]
        let sortedTop: [(String, Any)] = [
            ("data", items(sorted: true)), ("description", description), ("name", name), ("version", version),
        ]
        return Mapped(
            plaintext: Array((PythonJSON.encode(PythonJSON.Object(top), indent: 2) + "\n").utf8),
            signatureInput: Array(PythonJSON.encode(PythonJSON.Object(sortedTop), ensureASCII: true).utf8),
            prompts: prompts.map { ($0.id, $0.text) })
    }
}
