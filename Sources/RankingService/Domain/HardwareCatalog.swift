import Foundation

/// One GPU model with the figures that bound what it can do (vendors' published numbers).
struct GPUModel: Sendable, Equatable, Codable {
    var id: String
    var name: String
    var memoryGB: Double
    /// Memory bandwidth, GB/s (10⁹ bytes per second).
    var bandwidthGBps: Double
    /// Dense FP16/BF16 tensor throughput, TFLOPS.
    var fp16TFLOPS: Double
    var aliases: [String]

    enum CodingKeys: String, CodingKey {
        case id, name, aliases
        case memoryGB = "memory_gb"
        case bandwidthGBps = "bandwidth_gbps"
        case fp16TFLOPS = "fp16_tflops"
    }
}

/// The versioned hardware catalog (``HardwareCatalogData``, or an operator's file) and how a client's GPU name is
/// matched to it.
struct HardwareCatalog: Sendable {
    let version: String
    let gpus: [GPUModel]
    private let byAlias: [String: [GPUModel]]

    struct Document: Codable {
        var version: String
        var gpus: [GPUModel]
    }

    init(json: Data) throws(CatalogError) {
        let document: Document
        do {
            document = try JSONDecoder().decode(Document.self, from: json)
        } catch {
            throw CatalogError(detail: "the hardware catalog is not valid JSON of the documented shape: \(error)")
        }
        guard !document.version.isEmpty else { throw CatalogError(detail: "the hardware catalog has no version") }
        var byAlias: [String: [GPUModel]] = [:]
        var ids = Set<String>()
        for gpu in document.gpus {
            guard ids.insert(gpu.id).inserted else { throw CatalogError(detail: "GPU id \(gpu.id) appears twice") }
            guard [gpu.memoryGB, gpu.bandwidthGBps, gpu.fp16TFLOPS].allSatisfy({ $0.isFinite && $0 > 0 }) else {
                throw CatalogError(detail: "GPU \(gpu.id) needs memory, bandwidth and throughput above 0")
            }
            for alias in Set(gpu.aliases + [gpu.name, gpu.id]) {
                byAlias[Self.normalize(alias).key, default: []].append(gpu)
            }
        }
        version = document.version
        gpus = document.gpus
        self.byAlias = byAlias
    }

    struct CatalogError: Error, CustomStringConvertible {
        var detail: String
        var description: String { detail }
    }

    /// The catalog compiled into the server.
    static let shipped: HardwareCatalog = {
        do {
            return try HardwareCatalog(json: Data(HardwareCatalogData.json.utf8))
        } catch {
            // A test parses the shipped catalog, so this is never reached in a released build; an empty catalog
            // holds every result for review instead of ranking it unchecked.
            return HardwareCatalog(empty: "invalid")
        }
    }()

    private init(empty version: String) {
        self.version = version
        gpus = []
        byAlias = [:]
    }

    /// The model a client's GPU description names, and how many of it: the name as nvidia-smi, rocm-smi or a client
    /// like DeepStressModel prints it ("NVIDIA GeForce RTX 4090 24.0GB *2"), with the memory and count the client
    /// reported separately as hints. Nil when the catalog does not know the name.
    func identify(name: String, memoryGB: Double, count: Int) -> (gpu: GPUModel, count: Int)? {
        let parsed = Self.normalize(name)
        guard let candidates = byAlias[parsed.key], !candidates.isEmpty else { return nil }
        let memory = parsed.memoryGB ?? (memoryGB > 0 ? memoryGB : nil)
        let chosen: GPUModel
        if candidates.count > 1, let memory,
            let match = candidates.filter({ abs($0.memoryGB - memory) <= max(2, 0.1 * $0.memoryGB) })
                .max(by: { $0.bandwidthGBps < $1.bandwidthGBps })
        {
            chosen = match
        } else {
            // Several models under one name and nothing to tell them apart: the most capable, so the bound stays an
            // upper bound.
            chosen = candidates.max(by: { $0.bandwidthGBps < $1.bandwidthGBps }) ?? candidates[0]
        }
        return (chosen, max(1, parsed.count ?? (count > 0 ? count : 1)))
    }

    /// Words that name a vendor or a product line but not the model.
    static let noise: Set<String> = [
        "nvidia", "geforce", "tesla", "quadro", "amd", "radeon", "instinct", "apple", "intel", "graphics", "gpu",
        "(r)", "(tm)", "®", "™", "corporation", "inc", "chip",
    ]

    /// A GPU name reduced to the words that identify the model, plus the memory size and count it mentions:
    /// "NVIDIA A100-SXM4-80GB" → ("a100 sxm4", 80, nil); "2x RTX 4090" → ("rtx 4090", nil, 2);
    /// "NVIDIA GeForce RTX 4090 24.0GB *2" → ("rtx 4090", 24, 2).
    static func normalize(_ name: String) -> (key: String, memoryGB: Double?, count: Int?) {
        var text = name.lowercased()
        for symbol in ["(r)", "(tm)", "®", "™"] { text = text.replacingOccurrences(of: symbol, with: " ") }
        let separators = CharacterSet(charactersIn: "-_,/()[]").union(.whitespacesAndNewlines)
        var words = text.components(separatedBy: separators).filter { !$0.isEmpty }
        var memory: Double?
        var count: Int?
        var kept: [String] = []
        var index = 0
        while index < words.count {
            let word = words[index]
            // "24gb", "24.0gb", "24 gb", "80g"
            if let size = Self.gigabytes(word) {
                memory = size
            } else if let size = Double(word), index + 1 < words.count, ["gb", "g", "gib"].contains(words[index + 1]) {
                memory = size
                index += 1
            } else if let multiple = Self.multiplier(word) {
                count = multiple
            } else if ["x", "*", "×"].contains(word), index + 1 < words.count, let n = Int(words[index + 1]),
                (1...1024).contains(n)
            {
                count = n
                index += 1
            } else if let n = Int(word), (1...1024).contains(n), index + 1 < words.count,
                ["x", "*", "×"].contains(words[index + 1])
            {
                count = n
                index += 1
            } else if !noise.contains(word) {
                kept.append(word)
            }
            index += 1
        }
        words = kept
        return (words.joined(separator: " "), memory, count)
    }

    /// "24gb", "24.0gb", "80g", "48gib" → the number.
    static func gigabytes(_ word: String) -> Double? {
        for suffix in ["gib", "gb", "g"] where word.hasSuffix(suffix) {
            if let value = Double(word.dropLast(suffix.count)), value > 0, value < 100_000 { return value }
        }
        return nil
    }

    /// "*2", "x2", "2x", "×2" → 2.
    static func multiplier(_ word: String) -> Int? {
        for mark in ["*", "x", "×"] {
            if word.hasPrefix(mark), let n = Int(word.dropFirst(mark.count)), (1...1024).contains(n) { return n }
            if word.hasSuffix(mark), let n = Int(word.dropLast(mark.count)), (1...1024).contains(n) { return n }
        }
        return nil
    }
}

/// A model's weight precision: bytes each parameter takes when the weights are read.
struct Quantization: Sendable, Equatable {
    /// Canonical name, e.g. "fp16", "q4".
    var name: String
    var bytesPerParameter: Double

    /// The precision a name, a framework setting or a model file suffix means; nil when it says nothing known.
    /// Bytes are the format's lower end (e.g. Q4_K_M is ~4.8 bits, counted as 4), so the bound stays an upper bound.
    static func parse(_ text: String) -> Quantization? {
        let word = text.lowercased().trimmingCharacters(in: .whitespacesAndNewlines)
        guard !word.isEmpty else { return nil }
        let exact: [String: (String, Double)] = [
            "fp32": ("fp32", 4), "float32": ("fp32", 4), "f32": ("fp32", 4),
            "fp16": ("fp16", 2), "float16": ("fp16", 2), "f16": ("fp16", 2), "half": ("fp16", 2),
            "bf16": ("bf16", 2), "bfloat16": ("bf16", 2),
            "fp8": ("fp8", 1), "float8": ("fp8", 1), "e4m3": ("fp8", 1), "fp8_e4m3": ("fp8", 1), "int8": ("int8", 1),
            "w8a8": ("int8", 1), "8bit": ("int8", 1), "8-bit": ("int8", 1), "bnb8": ("int8", 1),
            "int4": ("int4", 0.5), "awq": ("int4", 0.5), "gptq": ("int4", 0.5), "nf4": ("int4", 0.5),
            "fp4": ("fp4", 0.5), "nvfp4": ("fp4", 0.5), "mxfp4": ("fp4", 0.5), "4bit": ("int4", 0.5),
            "4-bit": ("int4", 0.5), "bnb4": ("int4", 0.5), "w4a16": ("int4", 0.5),
        ]
        if let (name, bytes) = exact[word] { return Quantization(name: name, bytesPerParameter: bytes) }
        // GGUF: q8_0, q6_k, q5_k_m, q4_0, q4_k_m, q3_k_s, q2_k, iq4_xs, iq2_xxs, iq1_s …
        let gguf: [(String, String, Double)] = [
            ("iq1", "iq1", 0.1875), ("iq2", "iq2", 0.25), ("iq3", "iq3", 0.375), ("iq4", "iq4", 0.5),
            ("q8", "q8", 1), ("q6", "q6", 0.75), ("q5", "q5", 0.625), ("q4", "q4", 0.5), ("q3", "q3", 0.375),
            ("q2", "q2", 0.25),
        ]
        for (prefix, name, bytes) in gguf where word.hasPrefix(prefix) {
            let rest = word.dropFirst(prefix.count)
            if rest.isEmpty || rest.first == "_" { return Quantization(name: name, bytesPerParameter: bytes) }
        }
        return nil
    }

    /// From the session's declared quantization, else the framework settings ("quantization", "quant", "dtype"),
    /// else a token of the model's name ("llama3:8b-instruct-q4_K_M", "Qwen2.5-7B-Instruct-AWQ").
    static func resolve(declared: String, frameworkConfigJSON: String, modelName: String) -> Quantization? {
        if let found = parse(declared) { return found }
        if let data = frameworkConfigJSON.data(using: .utf8),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        {
            for key in ["quantization", "quant", "dtype", "torch_dtype", "kv_dtype_weights"] {
                if let value = object[key] as? String, let found = parse(value) { return found }
            }
        }
        let tokens = modelName.lowercased().components(separatedBy: CharacterSet(charactersIn: "-:./ @"))
        for token in tokens.reversed() { if let found = parse(token) { return found } }
        return nil
    }

    /// What an unknown precision is assumed to be: judged impossible only beyond the smallest format in use
    /// (1.5 bits per parameter), near the bound from the most common one (4 bits).
    static let smallest = Quantization(name: "unknown", bytesPerParameter: 0.1875)
    static let common = Quantization(name: "unknown", bytesPerParameter: 0.5)
}

/// How many parameters a model reads per generated token: all of them for a dense model, the active experts' for a
/// mixture of experts.
enum ModelArchitecture {
    /// Active parameters (billions) of mixture-of-experts models the name identifies; nil for a dense model.
    /// `.unknown` when the name says mixture of experts but not how many parameters are active.
    enum Reading: Sendable, Equatable {
        case dense
        case mixture(activeBillions: Double)
        case unknownMixture
    }

    static func reading(modelName: String) -> Reading {
        let name = modelName.lowercased()
        let tokens = name.components(separatedBy: CharacterSet(charactersIn: "-_:./ @"))
        // "qwen3-30b-a3b", "qwen2-57b-a14b": the active size is in the name.
        for token in tokens where token.hasPrefix("a") && token.hasSuffix("b") {
            if let active = Double(token.dropFirst().dropLast()), active > 0 { return .mixture(activeBillions: active) }
        }
        if name.contains("distill") { return .dense }  // e.g. deepseek-r1-distill-qwen-7b
        let known: [(String, Double)] = [
            ("mixtral-8x22b", 39), ("mixtral 8x22b", 39), ("mixtral-8x7b", 12.9), ("mixtral 8x7b", 12.9),
            ("deepseek-v3", 37), ("deepseek-r1", 37), ("deepseek-v2.5", 21), ("deepseek-v2-lite", 2.4),
            ("deepseek-v2", 21), ("gpt-oss-120b", 5.1), ("gpt-oss-20b", 3.6), ("dbrx", 36), ("llama-4", 17),
            ("llama4", 17), ("grok-1", 86), ("kimi-k2", 32), ("glm-4.5-air", 12), ("glm-4.5", 32),
        ]
        for (pattern, active) in known where name.contains(pattern) { return .mixture(activeBillions: active) }
        let markers = ["moe", "mixtral", "arctic", "jamba", "olmoe", "phi-3.5-moe", "grok", "deepseek-v", "qwen3-235b"]
        if markers.contains(where: name.contains)
            || tokens.contains(where: { token in
                // "8x7b"
                let parts = token.split(separator: "x")
                return parts.count == 2 && Int(parts[0]) != nil && parts[1].hasSuffix("b")
            })
        {
            return .unknownMixture
        }
        return .dense
    }
}

/// What the client claims about its hardware and model, resolved against the catalog.
struct HardwareClaim: Sendable, Equatable {
    /// The catalog's model and how many of it; nil when the catalog does not know the GPU.
    var gpu: GPUModel?
    var gpuCount: Int
    var gpuName: String
    var catalogVersion: String
    /// Memory per GPU the client reported (0: not reported).
    var claimedMemoryGB: Double
    var modelParams: Double
    var reading: ModelArchitecture.Reading
    /// Nil when neither the session nor the model name says.
    var quantization: Quantization?
    /// The framework settings mention speculative decoding (more than one token per weight read).
    var speculative: Bool

    static func resolve(spec: SessionSpec, catalog: HardwareCatalog) -> HardwareClaim {
        let identified = catalog.identify(name: spec.gpu.name, memoryGB: spec.gpu.memoryGB, count: spec.gpu.count)
        let config = spec.frameworkConfigJSON.lowercased()
        return HardwareClaim(
            gpu: identified?.gpu, gpuCount: identified?.count ?? max(1, spec.gpu.count), gpuName: spec.gpu.name,
            catalogVersion: catalog.version,
            claimedMemoryGB: HardwareCatalog.normalize(spec.gpu.name).memoryGB ?? spec.gpu.memoryGB,
            modelParams: spec.modelParams, reading: ModelArchitecture.reading(modelName: spec.modelName),
            quantization: Quantization.resolve(
                declared: spec.quantization, frameworkConfigJSON: spec.frameworkConfigJSON, modelName: spec.modelName),
            speculative: config.contains("speculative") || config.contains("draft_model")
                || config.contains("num_speculative_tokens"))
    }
}

/// What the claimed hardware can physically do for the claimed model (docs/VALIDATION.md, "Physical bounds").
///
/// Generating one token reads every active weight once, so one stream is bounded by memory bandwidth over the bytes
/// of the active weights; a batch of `concurrency` streams shares that read, so together they make at most
/// `concurrency` times as many tokens per read — and never more than the compute allows, two FLOPs per active
/// parameter per token. Several GPUs add their bandwidth and compute (tensor parallel, the best case). KV-cache
/// reads, kernel efficiency and scheduling only lower what is reachable, so these are upper bounds.
struct PhysicalEnvelope: Sendable, Equatable {
    var gpu: GPUModel
    var count: Int
    var activeBillions: Double
    var bytesPerParameter: Double

    /// Tokens per second one stream can reach.
    var streamBound: Double {
        Double(count) * gpu.bandwidthGBps * 1e9 / (activeBillions * 1e9 * bytesPerParameter)
    }

    /// Tokens per second the compute allows, whatever the batch.
    var computeBound: Double { Double(count) * gpu.fp16TFLOPS * 1e12 / (2 * activeBillions * 1e9) }

    /// Tokens per second `concurrency` streams together can reach.
    func aggregateBound(concurrency: Int) -> Double {
        min(Double(max(1, concurrency)) * streamBound, computeBound)
    }

    /// "2× NVIDIA GeForce RTX 4090 (2016 GB/s) reading 7B parameters at 2 bytes (14.0 GB per token)".
    var described: String {
        let bandwidth = Double(count) * gpu.bandwidthGBps
        let gigabytes = activeBillions * bytesPerParameter
        return
            "\(count)× \(gpu.name) (\(Int(bandwidth.rounded())) GB/s, \(Int((Double(count) * gpu.fp16TFLOPS).rounded())) TFLOPS) reading \(trimmed(activeBillions))B parameters at \(trimmed(bytesPerParameter)) bytes (\(String(format: "%.1f", gigabytes)) GB per token)"
    }

    private func trimmed(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(format: "%.2f", value)
    }
}
