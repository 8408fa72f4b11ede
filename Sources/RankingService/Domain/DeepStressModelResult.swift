import Foundation
import GRPCCore
import ServiceKit
import UntrustedInput

/// A DeepStressModel result (the plaintext of an upload) read into our terms (docs/DEEPSTRESSMODEL.md, "Mapping").
///
/// The figures we rank come from the per-request records, not from the client's summary: generated tokens are the
/// successful records' `output_tokens`, `tps` is those tokens over the run's `total_time` (the client's own `tps` is
/// requests per second), latencies and their percentiles are the records', and the concurrency is the most records
/// that ran at the same moment. The client's summary is then checked against its records (``inconsistencies``).
struct DeepStressModelResult: Sendable, Equatable {
    var spec: SessionSpec
    var results: BenchmarkResults
    var requests: [RequestRecord]
    /// The prompts as the records carry them (id, recorded text, length), for DatasetService to check.
    var prompts: [PromptClaim]
    /// The key of the result's `datasets` (the package's `dataset_name`).
    var datasetName: String
    /// When the run began and ended (µs since the epoch, the client's clock).
    var runStart: Int64
    var runEnd: Int64
    /// Where the client's summary disagrees with its own records.
    var inconsistencies: [String]

    struct PromptClaim: Sendable, Equatable {
        var id: Int64
        var input: String
        var inputChars: Int64
    }

    /// What the GUI writes when the user left the device nameless: "未命名设备" (unnamed device).
    static let unnamedDevice = "未命名设备"

    /// Reads a result for `machineID`; a result that is not the client's shape, or lacks what a record needs (the
    /// framework, the model's size), is refused with every problem named.
    static func read(_ plaintext: [UInt8], machineID: String) throws(RankingError) -> DeepStressModelResult {
        do {
            return try parse(JSONObject.parse(plaintext), machineID: machineID)
        } catch let error as InputError {
            throw RankingError(
                code: "invalid_result", detail: "The result is not a DeepStressModel result: \(error.detail)",
                status: .invalidArgument)
        } catch let error as RankingError {
            throw error
        } catch {
            throw RankingError(code: "invalid_result", detail: "The result cannot be read.", status: .invalidArgument)
        }
    }

    private static func parse(_ root: JSONObject, machineID: String) throws -> DeepStressModelResult {
        var problems: [String] = []
        guard try root.string("status") == "success" else {
            throw RankingError(
                code: "invalid_result", detail: "Only a result whose status is \"success\" can be uploaded.",
                status: .invalidArgument)
        }
        let version = try root.string("dataset_version")
        if ["unknown", "未知", ""].contains(version) {
            problems.append(
                "dataset_version is \"\(version)\": run the benchmark with an offline package downloaded from this server"
            )
        }
        let datasets = try root.object("datasets")
        guard datasets.fields.count == 1, let datasetName = datasets.fields.keys.first else {
            throw RankingError(
                code: "invalid_result", detail: "datasets must hold exactly the one dataset the run used.",
                status: .invalidArgument)
        }
        let dataset = try datasets.object(datasetName)
        let records = try root.optionalObjects("results") ?? []
        guard !records.isEmpty, records.count <= RankingAuthority.maximumRequestRecords else {
            throw RankingError(
                code: "invalid_result",
                detail: "results must hold 1 to \(RankingAuthority.maximumRequestRecords) request records.",
                status: .invalidArgument)
        }
        let totalTime = try root.double("total_time")
        guard totalTime.isFinite, totalTime > 0 else {
            throw RankingError(
                code: "invalid_result", detail: "total_time must be a number of seconds above 0.",
                status: .invalidArgument)
        }

        // The records, as the client wrote them.
        var requests: [RequestRecord] = []
        var prompts: [PromptClaim] = []
        var intervals: [(start: Int64, end: Int64)] = []
        var declaredConcurrency = 1
        var seen = Set<Int64>()
        var badTimes = 0
        for record in records {
            let status = try record.string("status")
            let success = status == "success"
            let id = try record.optionalInt64("id")
            if let id {
                if !seen.insert(id).inserted { problems.append("the prompt id \(id) appears in more than one record") }
                if let input = try record.optionalString("input"), let chars = try record.optionalInt64("input_chars") {
                    prompts.append(PromptClaim(id: id, input: input, inputChars: chars))
                }
            } else {
                problems.append("a request record has no prompt id")
            }
            declaredConcurrency = max(declaredConcurrency, Int(try record.optionalInt32("concurrency") ?? 1))
            let latency = try record.optionalDouble("latency")
            if let start = try record.optionalInt64("start_time"), let end = try record.optionalInt64("end_time") {
                intervals.append((start, end))
                if let latency, end < start || abs(Double(end - start) / 1000 - latency) > 0.05 + 0.05 * latency {
                    badTimes += 1
                }
            }
            guard success else {
                requests.append(RequestRecord(outputTokens: 0, latency: max(latency ?? 0, 1e-9), success: false))
                continue
            }
            guard let latency, latency > 0 else {
                throw RankingError(
                    code: "invalid_result", detail: "A successful request record has no latency above 0.",
                    status: .invalidArgument)
            }
            let tokens = try record.optionalInt64("output_tokens") ?? -1
            guard (0...1_000_000_000).contains(tokens) else {
                throw RankingError(
                    code: "invalid_result",
                    detail: "A successful request record needs output_tokens from 0 to 1,000,000,000.",
                    status: .invalidArgument)
            }
            requests.append(RequestRecord(outputTokens: tokens, latency: latency, success: true))
        }
        if badTimes > 0 {
            problems.append("\(badTimes) request record(s) whose start and end times do not match their latency")
        }

        // Our figures, from the records.
        let succeeded = requests.filter(\.success)
        let latencies = succeeded.map(\.latency).sorted()
        let tokens = succeeded.reduce(Int64(0)) { $0 + $1.outputTokens }
        var results = BenchmarkResults()
        results.totalRequests = Int64(requests.count)
        results.successfulRequests = Int64(succeeded.count)
        results.failedRequests = Int64(requests.count - succeeded.count)
        results.totalTokens = tokens
        results.duration = totalTime
        results.tps = Double(tokens) / totalTime
        if !latencies.isEmpty {
            results.avgLatency = latencies.reduce(0, +) / Double(latencies.count)
            results.p50Latency = quantile(latencies, 0.5)
            results.p95Latency = quantile(latencies, 0.95)
            results.p99Latency = quantile(latencies, 0.99)
        }
        results.concurrentCount = intervals.count == records.count ? Self.peak(intervals) : declaredConcurrency

        // The client's summary against its records.
        func differs(_ claimed: Double?, _ actual: Double, tolerance: Double) -> Bool {
            guard let claimed else { return true }
            return !(claimed.isFinite && abs(claimed - actual) <= tolerance * max(abs(actual), 1e-9))
        }
        if try root.optionalInt64("total_tests") != results.totalRequests {
            problems.append("total_tests is not the \(results.totalRequests) request records")
        }
        if try root.optionalInt64("successful_tests") != results.successfulRequests {
            problems.append("successful_tests is not the \(results.successfulRequests) successful records")
        }
        if !latencies.isEmpty, differs(try root.optionalDouble("avg_latency"), results.avgLatency, tolerance: 0.01) {
            problems.append("avg_latency is not the successful records' mean latency")
        }
        if differs(try dataset.optionalDouble("output_tps"), results.tps, tolerance: 0.01) {
            problems.append("datasets.\(datasetName).output_tps is not the records' output tokens over total_time")
        }
        let runStart = try root.double("start_time")
        let runEnd = try root.double("end_time")
        if differs(runEnd - runStart, totalTime, tolerance: 0.01) {
            problems.append("total_time is not end_time − start_time")
        }
        if let first = intervals.map(\.start).min(), let last = intervals.map(\.end).max() {
            let span = Double(last - first) / 1000
            if span > totalTime + 1 || Double(first) < runStart * 1000 - 1000 || Double(last) > runEnd * 1000 + 1000 {
                problems.append("request records fall outside the run's start_time and end_time")
            }
        }
        guard runStart.isFinite, runEnd.isFinite, abs(runStart) < 1e11, abs(runEnd) < 1e11 else {
            throw RankingError(
                code: "invalid_result", detail: "start_time and end_time must be Unix seconds.",
                status: .invalidArgument)
        }

        let spec = try Self.spec(root, machineID: machineID, version: version, concurrency: results.concurrentCount)
        return DeepStressModelResult(
            spec: spec, results: results, requests: requests, prompts: prompts, datasetName: datasetName,
            runStart: Int64(runStart * 1_000_000), runEnd: Int64(runEnd * 1_000_000), inconsistencies: problems)
    }

    /// What the session of a native client would have declared: model, framework, GPUs and name.
    private static func spec(_ root: JSONObject, machineID: String, version: String, concurrency: Int) throws
        -> SessionSpec
    {
        let model = try root.optionalObject("model_info")
        let frameworkInfo = try root.optionalObject("framework_info")
        let hardware = try root.optionalObject("hardware_info")
        let framework = Self.frameworkName(
            try model?.optionalString("framework") ?? frameworkInfo?.optionalString("framework") ?? "")
        let modelName =
            try model?.optionalString("model_name").flatMap { $0.isEmpty ? nil : $0 } ?? root.optionalString("model")
            ?? ""
        let params = try model?.optionalDouble("params") ?? Self.parameters(inName: modelName)
        var missing: [String] = []
        if framework.isEmpty { missing.append("the framework (choose it in the client's model dialog)") }
        if params == nil { missing.append("the model's parameter count (enter it in the client's model dialog)") }
        guard missing.isEmpty else {
            throw RankingError(
                code: "result_incomplete",
                detail: "A ranked result needs \(missing.joined(separator: " and ")).", status: .invalidArgument)
        }
        var configuration = try root.jsonText("framework_info")
        if configuration.utf8.count > 8192 {
            configuration = JSONValue.object(["framework": .string(framework), "truncated": .bool(true)]).canonicalText
        }
        var gpu = Self.gpu(try hardware?.optionalString("gpu") ?? "")
        let described = try root.jsonText("hardware_info")
        gpu.extraJSON = described.utf8.count <= 4096 ? described : ""
        var name = (try root.optionalString("nickname") ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        name = String(
            String.UnicodeScalarView(name.unicodeScalars.filter { $0.properties.generalCategory != .control }))
        if name == Self.unnamedDevice { name = "" }
        return SessionSpec(
            machineID: machineID, datasetVersion: version, datasetChecksum: String(repeating: "0", count: 64),
            framework: framework, modelName: modelName, modelParams: params ?? 0,
            frameworkConfigJSON: configuration, gpu: gpu, concurrentCount: max(1, concurrency),
            displayName: String(name.prefix(64)), quantization: try model?.optionalString("quantization") ?? "")
    }

    /// "vLLM" → "vllm", "LM Studio" → "lm-studio": our framework names are lowercase a–z, 0–9 and `._+-`.
    static func frameworkName(_ text: String) -> String {
        let words = text.lowercased().split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: "-")
        return String(
            String.UnicodeScalarView(
                words.unicodeScalars.filter { scalar in
                    scalar.isASCII
                        && (CharacterSet.lowercaseLetters.contains(scalar)
                            || CharacterSet.decimalDigits.contains(scalar)
                            || "._+-".unicodeScalars.contains(scalar))
                }
            ).prefix(64))
    }

    /// "qwen2.5-7b-instruct" → 7, "Qwen2.5-0.5B" → 0.5; nil when no word of the name is a size in billions.
    static func parameters(inName name: String) -> Double? {
        let words = name.lowercased().components(separatedBy: CharacterSet(charactersIn: "-_:/ @"))
        for word in words where word.hasSuffix("b") {
            if let value = Double(word.dropLast()), value.isFinite, value > 0, value <= 100_000 { return value }
        }
        return nil
    }

    /// The client's `hardware_info.gpu`: "<name> <GB>GB *<count>", several joined by " , " when they differ (a mixed
    /// set keeps the whole text as its name, which the catalog does not know, so an operator reviews it).
    static func gpu(_ text: String) -> GPUConfig {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.contains(" , ") {
            let parts = trimmed.components(separatedBy: " , ").map(gpu)
            return GPUConfig(name: String(trimmed.prefix(200)), count: min(1024, parts.map(\.count).reduce(0, +)))
        }
        var words = trimmed.split(separator: " ").map(String.init)
        var count = 1
        var memory = 0.0
        if let last = words.last, last.hasPrefix("*"), let n = Int(last.dropFirst()), (1...1024).contains(n) {
            count = n
            words.removeLast()
        }
        if let last = words.last, let size = HardwareCatalog.gigabytes(last.lowercased()) {
            memory = size
            words.removeLast()
        }
        let name = words.joined(separator: " ")
        return GPUConfig(name: name.isEmpty ? "unknown" : String(name.prefix(200)), count: count, memoryGB: memory)
    }

    /// The most intervals open at one moment (an interval ends before another that starts at its end).
    static func peak(_ intervals: [(start: Int64, end: Int64)]) -> Int {
        var events: [(at: Int64, change: Int)] = []
        for interval in intervals {
            events.append((interval.start, 1))
            events.append((max(interval.start, interval.end), -1))
        }
        events.sort { $0.at != $1.at ? $0.at < $1.at : $0.change < $1.change }
        var open = 0
        var most = 0
        for event in events {
            open += event.change
            most = max(most, open)
        }
        return max(1, most)
    }
}
