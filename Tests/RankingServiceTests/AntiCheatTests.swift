import Foundation
import ServiceKit
import TestSupport
import Testing

@testable import RankingService

// MARK: the catalog and what a claim resolves to

@Suite("Hardware catalog")
struct HardwareCatalogTests {
    @Test("the shipped catalog parses, and every figure is positive")
    func shipped() throws {
        let catalog = try HardwareCatalog(json: Data(HardwareCatalogData.json.utf8))
        #expect(catalog.version == HardwareCatalog.shipped.version)
        #expect(catalog.gpus.count >= 60)
        #expect(HardwareCatalog.shipped.gpus.count == catalog.gpus.count)
    }

    @Test(
        "names as nvidia-smi, rocm-smi and DeepStressModel print them find their model and count",
        arguments: [
            ("NVIDIA GeForce RTX 4090 24.0GB *2", "nvidia-rtx-4090", 2),
            ("NVIDIA GeForce RTX 4090", "nvidia-rtx-4090", 1),
            ("rtx  4090", "nvidia-rtx-4090", 1),
            ("2x RTX 3090", "nvidia-rtx-3090", 2),
            ("NVIDIA A100-SXM4-40GB", "nvidia-a100-sxm-40gb", 1),
            ("NVIDIA A100-SXM4-80GB", "nvidia-a100-sxm-80gb", 1),
            ("NVIDIA A100-PCIE-40GB", "nvidia-a100-pcie-40gb", 1),
            ("NVIDIA A100 80GB PCIe", "nvidia-a100-pcie-80gb", 1),
            ("NVIDIA H100 80GB HBM3", "nvidia-h100-sxm", 1),
            ("NVIDIA H100 PCIe", "nvidia-h100-pcie", 1),
            ("Tesla T4", "nvidia-t4", 1),
            ("Tesla V100-SXM2-16GB", "nvidia-v100-16gb", 1),
            ("NVIDIA RTX 6000 Ada Generation", "nvidia-rtx-6000-ada", 1),
            ("AMD Instinct MI300X", "amd-mi300x", 1),
            ("AMD Radeon RX 7900 XTX", "amd-rx-7900-xtx", 1),
            ("Apple M2 Ultra", "apple-m2-ultra", 1),
            ("NVIDIA GeForce RTX 4070 Ti SUPER", "nvidia-rtx-4070-ti-super", 1),
        ])
    func identifies(name: String, id: String, count: Int) throws {
        let found = try #require(HardwareCatalog.shipped.identify(name: name, memoryGB: 0, count: 0))
        #expect(found.gpu.id == id)
        #expect(found.count == count)
    }

    @Test("a name the catalog does not know is unknown, not guessed")
    func unknown() {
        for name in ["Synthetic GPU", "NVIDIA GeForce RTX 9999 Ti", "RTX 4090 Laptop GPU", "", "GPU"] {
            #expect(HardwareCatalog.shipped.identify(name: name, memoryGB: 24, count: 1) == nil, "\(name)")
        }
    }

    @Test("an operator's catalog replaces the shipped one; a broken one is refused with the reason")
    func operatorCatalog() throws {
        let custom =
            #"{"version": "lab-1", "gpus": [{"id": "lab-x", "name": "Lab X", "memory_gb": 10, "bandwidth_gbps": 100, "fp16_tflops": 10, "aliases": ["lab x"]}]}"#
        let catalog = try HardwareCatalog(json: Data(custom.utf8))
        #expect(catalog.identify(name: "Lab X", memoryGB: 0, count: 1)?.gpu.id == "lab-x")
        for broken in [
            "{}", #"{"version": "", "gpus": []}"#,
            #"{"version": "v", "gpus": [{"id": "a", "name": "A", "memory_gb": 0, "bandwidth_gbps": 1, "fp16_tflops": 1, "aliases": []}]}"#,
        ] {
            #expect(throws: HardwareCatalog.CatalogError.self) { try HardwareCatalog(json: Data(broken.utf8)) }
        }
    }

    @Test("quantization is read from the declaration, the framework settings or the model's name")
    func quantization() {
        #expect(Quantization.resolve(declared: "FP16", frameworkConfigJSON: "", modelName: "x")?.bytesPerParameter == 2)
        #expect(
            Quantization.resolve(declared: "", frameworkConfigJSON: #"{"dtype": "bfloat16"}"#, modelName: "x")?.name
                == "bf16")
        #expect(
            Quantization.resolve(declared: "", frameworkConfigJSON: "", modelName: "llama3:8b-instruct-q4_K_M")?
                .bytesPerParameter == 0.5)
        #expect(
            Quantization.resolve(declared: "", frameworkConfigJSON: "", modelName: "Qwen2.5-7B-Instruct-AWQ")?.name
                == "int4")
        #expect(
            Quantization.resolve(declared: "", frameworkConfigJSON: "", modelName: "mistral-7b-q8_0.gguf")?
                .bytesPerParameter == 1)
        #expect(Quantization.resolve(declared: "", frameworkConfigJSON: "", modelName: "llama-3-8b") == nil)
        #expect(Quantization.parse("q4x") == nil)
    }

    @Test("mixtures of experts read their active parameters; unknown ones are marked")
    func mixtures() {
        #expect(ModelArchitecture.reading(modelName: "llama-3-8b") == .dense)
        #expect(ModelArchitecture.reading(modelName: "Qwen3-30B-A3B") == .mixture(activeBillions: 3))
        #expect(ModelArchitecture.reading(modelName: "mixtral-8x7b-instruct") == .mixture(activeBillions: 12.9))
        #expect(ModelArchitecture.reading(modelName: "deepseek-r1-distill-qwen-7b") == .dense)
        #expect(ModelArchitecture.reading(modelName: "acme-moe-40b") == .unknownMixture)
    }

    @Test("the envelope: bandwidth over bytes per token, times the streams, capped by compute")
    func envelope() throws {
        let gpu = try #require(HardwareCatalog.shipped.identify(name: "RTX 4090", memoryGB: 0, count: 2)).gpu
        let envelope = PhysicalEnvelope(gpu: gpu, count: 2, activeBillions: 7, bytesPerParameter: 2)
        #expect(abs(envelope.streamBound - 2016.0 / 14) < 1e-9)
        #expect(abs(envelope.computeBound - 660e12 / 14e9) < 1e-6)
        #expect(envelope.aggregateBound(concurrency: 4) == 4 * envelope.streamBound)
        #expect(envelope.aggregateBound(concurrency: 100_000) == envelope.computeBound)
        #expect(envelope.described.contains("2016 GB/s"))
    }
}

// MARK: rule set v2, rule by rule

/// A v2 submission that passes every rule: an RTX 4090 running an 8B model at Q4 with four streams.
func validV2Facts() -> SubmissionFacts {
    var facts = validFacts()
    facts.results = BenchmarkResults(
        tps: 101, avgLatency: 2, p50Latency: 1.9, p95Latency: 2.6, p99Latency: 3, concurrentCount: 4,
        totalRequests: 240, successfulRequests: 238, failedRequests: 2, totalTokens: 12_120, duration: 120)
    for index in facts.series.indices { facts.series[index].test.latency = 2 }
    facts.sessionConcurrency = 4
    facts.hardware = HardwareClaim.resolve(
        spec: SessionSpec(
            machineID: "m", datasetVersion: "v", datasetChecksum: "", framework: "vllm", modelName: "llama-3-8b",
            modelParams: 8, frameworkConfigJSON: "", gpu: GPUConfig(name: "NVIDIA GeForce RTX 4090", count: 1),
            concurrentCount: 4, displayName: "", quantization: "q4_k_m"),
        catalog: .shipped)
    facts.expectedProof = "00ff"
    facts.givenProof = "00FF"
    return facts
}

@Suite("Validation rules v2")
struct ValidationV2Tests {
    @Test("the baseline v2 submission is accepted, and v1 still judges it by v1's rules only")
    func baseline() {
        #expect(ValidationRules.v2.validate(validV2Facts()) == .accepted)
        var noProof = validV2Facts()
        noProof.givenProof = ""
        #expect(ValidationRules.v1.validate(noProof) == .accepted)
    }

    static let cases: [RuleCase] = [
        RuleCase(name: "no proof", expected: "dataset_proof_missing") { $0.givenProof = "" },
        RuleCase(name: "a session without a challenge", expected: "dataset_proof_missing") { $0.expectedProof = nil },
        RuleCase(name: "a wrong proof", expected: "dataset_proof_invalid") { $0.givenProof = "00fe" },
        RuleCase(name: "no token count", expected: "value_out_of_range") { $0.results.totalTokens = 0 },
        RuleCase(name: "more concurrency than the session declared", expected: "value_out_of_range") {
            $0.results.concurrentCount = 64
        },
        RuleCase(name: "tps not what the tokens say", expected: "result_inconsistent") { $0.results.tps = 130 },
        RuleCase(name: "requests longer than the run", expected: "result_inconsistent") {
            $0.results.avgLatency = 200
            $0.results.p50Latency = 150
            $0.results.p95Latency = 210
            $0.results.p99Latency = 220
        },
        RuleCase(name: "more throughput than the streams make (Little's law)", expected: "result_inconsistent") {
            $0.results.concurrentCount = 1
            $0.sessionConcurrency = 1
        },
        RuleCase(name: "identical to a stored record", expected: "duplicate_result") { $0.duplicateOf = "r1" },
        RuleCase(name: "one stream faster than bandwidth allows", expected: "exceeds_physical_bound") {
            // 12,120 tokens in 24 requests of 0.2 s: 2,525 tokens/s per stream on a 252 tokens/s envelope.
            $0.results.totalRequests = 24
            $0.results.successfulRequests = 24
            $0.results.failedRequests = 0
            $0.results.avgLatency = 0.2
            $0.results.p50Latency = 0.2
            $0.results.p95Latency = 0.2
            $0.results.p99Latency = 0.2
        },
        RuleCase(name: "an unknown GPU", expected: "unknown_gpu") { $0.hardware?.gpu = nil },
        RuleCase(name: "an unknown mixture of experts", expected: "bound_unknown") {
            $0.hardware?.reading = .unknownMixture
        },
        RuleCase(name: "weights larger than the GPU's memory", expected: "exceeds_gpu_memory") {
            $0.hardware?.modelParams = 70
            $0.hardware?.quantization = Quantization.parse("fp16")
            $0.hardware?.reading = .mixture(activeBillions: 8)
        },
        RuleCase(name: "more memory than the GPU has", expected: "gpu_memory_mismatch") {
            $0.hardware?.claimedMemoryGB = 96
        },
        RuleCase(name: "overlapping runs of one device", expected: "overlapping_runs") { $0.overlappingRuns = 1 },
        RuleCase(name: "near the bound with no peers", expected: "near_physical_bound") {
            // 50.9 tokens per request in 0.224 s: 227 tokens/s per stream, 90 % of the 252 an RTX 4090 reaches.
            $0.results.avgLatency = 0.224
            $0.results.p50Latency = 0.2
            $0.results.p95Latency = 0.26
            $0.results.p99Latency = 0.3
            for index in $0.series.indices { $0.series[index].test.latency = 0.224 }
            $0.peerTPS = []
        },
    ]

    @Test("each v2 rule catches its case", arguments: cases)
    func failing(_ rule: RuleCase) {
        var facts = validV2Facts()
        rule.change(&facts)
        let codes: [String] =
            switch ValidationRules.v2.validate(facts) {
            case .accepted: []
            case .rejected(let found), .heldForReview(let found): found.map(\.code)
            }
        #expect(codes.contains(rule.expected), "\(codes)")
    }

    @Test("per-request records must add up to the results, and none may beat the physics")
    func requests() {
        var facts = validV2Facts()
        let latencies = (0..<238).map { 1.6 + 0.8 * Double($0) / 237 }
        facts.requests =
            latencies.enumerated().map {
                RequestRecord(outputTokens: $0.offset < 220 ? 51 : 50, latency: $0.element, success: true)
            } + [
                RequestRecord(outputTokens: 0, latency: 5, success: false),
                .init(outputTokens: 0, latency: 5, success: false),
            ]
        facts.results.avgLatency = latencies.reduce(0, +) / 238
        facts.results.p50Latency = 2
        facts.results.p95Latency = 2.36
        facts.results.p99Latency = 2.39
        #expect(ValidationRules.v2.validate(facts) == .accepted)

        var short = facts
        short.requests.removeLast(10)
        #expect(codes(short).contains("requests_inconsistent"))
        var wrongTail = facts
        wrongTail.results.p99Latency = 9
        #expect(codes(wrongTail).contains("requests_inconsistent"))
        var impossible = facts
        impossible.requests[0] = RequestRecord(outputTokens: 51, latency: 0.01, success: true)
        #expect(codes(impossible).contains("exceeds_physical_bound"))
    }

    @Test("speculative decoding turns an exceeded bound into a review, not a rejection")
    func speculative() {
        var facts = validV2Facts()
        facts.results.totalRequests = 24
        facts.results.successfulRequests = 24
        facts.results.failedRequests = 0
        facts.results.avgLatency = 0.2
        facts.results.p50Latency = 0.2
        facts.results.p95Latency = 0.2
        facts.results.p99Latency = 0.2
        for index in facts.series.indices { facts.series[index].test.latency = 0.2 }
        facts.hardware?.speculative = true
        guard case .heldForReview(let reasons) = ValidationRules.v2.validate(facts) else {
            Issue.record("expected a hold")
            return
        }
        #expect(reasons.map(\.code).contains("exceeds_physical_bound"))
    }

    func codes(_ facts: SubmissionFacts) -> [String] {
        switch ValidationRules.v2.validate(facts) {
        case .accepted: []
        case .rejected(let found), .heldForReview(let found): found.map(\.code)
        }
    }
}
