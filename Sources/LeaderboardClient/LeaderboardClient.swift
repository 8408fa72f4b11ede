import Crypto
public import Foundation

#if canImport(FoundationNetworking)
    public import FoundationNetworking
#endif

/// The leaderboard's public REST API for benchmark clients: device registration and activation, signed benchmark
/// sessions, dataset downloads, boards, reactions, comments and notifications (WebSocket streams are in
/// `LeaderboardClient+WebSocket.swift`). Calls that need a device sign with ``credentials``.
public struct LeaderboardClient: Sendable {
    public let http: LeaderboardHTTP
    public var credentials: DeviceCredentials?

    public init(baseURL: URL, credentials: DeviceCredentials? = nil, session: URLSession = .shared) {
        http = LeaderboardHTTP(baseURL: baseURL, session: session)
        self.credentials = credentials
    }

    // MARK: devices

    /// `POST /api/v1/devices/register`: a new device waiting for email verification.
    /// Solves a proof-of-work challenge and registers the hardware (`POST /api/v1/devices/register`).
    public func register(
        hardwareHash: String, gpuHash: String, hardwareInfo: [String: String] = [:], gpuInfo: [String: String] = [:]
    )
        async throws -> Registration
    {
        let challenge: Challenge = try await call("GET", "/api/v1/devices/challenge", signed: false)
        return try await call(
            "POST", "/api/v1/devices/register",
            body: [
                "hardware_hash": hardwareHash, "gpu_hash": gpuHash, "hardware_info": hardwareInfo, "gpu_info": gpuInfo,
                "challenge_id": challenge.challengeID, "pow_solution": try ProofOfWork.solve(challenge),
            ], signed: false)
    }

    /// Solves a proof-of-work challenge and asks for the verification email (`POST /api/v1/devices/verify`); the
    /// device is verified once the emailed link is opened.
    public func requestVerification(registrationCode: String, email: String) async throws -> Verification {
        let challenge: Challenge = try await call("GET", "/api/v1/devices/challenge", signed: false)
        return try await call(
            "POST", "/api/v1/devices/verify",
            body: [
                "registration_code": registrationCode, "email": email, "challenge_id": challenge.challengeID,
                "pow_solution": try ProofOfWork.solve(challenge),
            ], signed: false)
    }

    /// `POST /api/v1/devices/activate`: the verified device's credentials (the secret is shown once).
    public func activate(machineID: String, registrationCode: String) async throws -> DeviceCredentials {
        let secret: DeviceSecret = try await call(
            "POST", "/api/v1/devices/activate",
            body: ["machine_id": machineID, "registration_code": registrationCode], signed: false)
        return DeviceCredentials(machineID: secret.machineId, secret: secret.secret)
    }

    /// `GET /api/v1/devices/status` (signed).
    public func deviceStatus() async throws -> DeviceStatus {
        try await call("GET", "/api/v1/devices/status")
    }

    // MARK: datasets

    /// `GET /api/v1/datasets/latest`, or one version.
    public func dataset(_ version: String? = nil) async throws -> DatasetInfo {
        try await call("GET", "/api/v1/datasets/" + (version.map(Self.escape) ?? "latest"), signed: false)
    }

    /// Downloads, verifies and decrypts a version to `path` (resuming an interrupted download).
    public func download(
        version: String? = nil, to path: String, parallelism: Int = 4,
        progress: @escaping @Sendable (DatasetDownloader.Progress) -> Void = { _ in }
    ) async throws -> DatasetDownloader.Result {
        var downloader = DatasetDownloader(http: http, credentials: try requireCredentials())
        downloader.parallelism = parallelism
        return try await downloader.download(version: version, to: path, progress: progress)
    }

    // MARK: sessions

    /// `POST /api/v1/benchmarks/start` (signed).
    public func startSession(_ start: SessionStart) async throws -> Session {
        try await call("POST", "/api/v1/benchmarks/start", body: start.json)
    }

    /// `POST /api/v1/benchmarks/{session}/metrics` (signed): one sample; returns how many the session holds.
    @discardableResult
    public func report(session: String, sample: MetricSample) async throws -> Int {
        let reply: SampleCount = try await call(
            "POST", "/api/v1/benchmarks/\(Self.escape(session))/metrics", body: sample.json)
        return reply.metricSamples
    }

    /// `GET /api/v1/benchmarks/{session}/status` (signed).
    public func session(_ id: String) async throws -> Session {
        try await call("GET", "/api/v1/benchmarks/\(Self.escape(id))/status")
    }

    /// `POST /api/v1/benchmarks/{session}/submit` (signed). A retry with the same key replays the first answer. A
    /// rejected submission throws ``LeaderboardClientError`` with code `submission_rejected` and its reasons.
    public func submit(
        session: String, results: BenchmarkResults, metrics: [MetricSample] = [], datasetProof: String? = nil,
        requests: [RequestRecord] = [], idempotencyKey: String = UUID().uuidString
    ) async throws -> SubmissionOutcome {
        var body: [String: Any] = ["results": results.json, "metrics": metrics.map(\.json)]
        if let datasetProof { body["dataset_proof"] = datasetProof }
        if !requests.isEmpty { body["requests"] = requests.map(\.json) }
        return try await submit(session: session, body: body, idempotencyKey: idempotencyKey)
    }

    /// A submit of a body as DeepStressModel writes it (`results`, `metrics`).
    public func submit(session: String, body: [String: Any], idempotencyKey: String = UUID().uuidString)
        async throws -> SubmissionOutcome
    {
        try await call(
            "POST", "/api/v1/benchmarks/\(Self.escape(session))/submit", body: body,
            headers: ["Idempotency-Key": idempotencyKey])
    }

    /// `POST /api/v1/devices/client-keys` (signed): a DeepStressModel API key for this device; the key is in
    /// `apiKey`, this once.
    public func createClientKey(name: String? = nil) async throws -> ClientKey {
        var body: [String: Any] = [:]
        if let name { body["name"] = name }
        return try await call("POST", "/api/v1/devices/client-keys", body: body)
    }

    /// `GET /api/v1/devices/client-keys` (signed).
    public func clientKeys(includeRevoked: Bool = false) async throws -> [ClientKey] {
        let list: ClientKeyList = try await call(
            "GET", "/api/v1/devices/client-keys" + (includeRevoked ? "?include_revoked=true" : ""))
        return list.keys
    }

    /// `DELETE /api/v1/devices/client-keys/{id}` (signed).
    public func revokeClientKey(_ id: String) async throws -> ClientKey {
        try await call("DELETE", "/api/v1/devices/client-keys/\(Self.escape(id))")
    }

    /// `GET /api/v1/devices/records` (signed): the device's own records, newest first, whatever their state.
    public func myRecords(limit: Int? = nil, cursor: String? = nil) async throws -> OwnRecordPage {
        var items: [URLQueryItem] = []
        if let limit { items.append(URLQueryItem(name: "limit", value: String(limit))) }
        if let cursor { items.append(URLQueryItem(name: "cursor", value: cursor)) }
        return try await call("GET", "/api/v1/devices/records" + Self.queryString(items))
    }

    // MARK: boards

    /// `GET /api/v1/benchmarks` or `/api/v1/benchmarks/frameworks/{framework}`.
    public func board(framework: String? = nil, datasetVersion: String? = nil, limit: Int? = nil, cursor: String? = nil)
        async throws -> BoardPage
    {
        var query: [URLQueryItem] = []
        if let datasetVersion { query.append(URLQueryItem(name: "dataset_version", value: datasetVersion)) }
        if let limit { query.append(URLQueryItem(name: "limit", value: String(limit))) }
        if let cursor { query.append(URLQueryItem(name: "cursor", value: cursor)) }
        let path = "/api/v1/benchmarks" + (framework.map { "/frameworks/" + Self.escape($0) } ?? "")
        return try await call("GET", path + Self.queryString(query), signed: false)
    }

    /// `GET /api/v1/benchmarks/{id}`.
    public func record(_ id: String) async throws -> BoardRecord {
        try await call("GET", "/api/v1/benchmarks/\(Self.escape(id))", signed: false)
    }

    // MARK: reactions, comments, notifications

    /// `POST /api/v1/benchmarks/{id}/like|dislike` (signed).
    public func react(to recordID: String, like: Bool) async throws -> ReactionCounts {
        try await call("POST", "/api/v1/benchmarks/\(Self.escape(recordID))/\(like ? "like" : "dislike")")
    }

    /// `DELETE /api/v1/benchmarks/{id}/reaction` (signed).
    public func removeReaction(from recordID: String) async throws -> ReactionCounts {
        try await call("DELETE", "/api/v1/benchmarks/\(Self.escape(recordID))/reaction")
    }

    /// `POST /api/v1/benchmarks/{id}/comments`: signed when the client has credentials, else anonymous.
    public func comment(on recordID: String, content: String, authorName: String? = nil) async throws -> Comment {
        var body: [String: Any] = ["content": content]
        if let authorName { body["author_name"] = authorName }
        return try await call(
            "POST", "/api/v1/benchmarks/\(Self.escape(recordID))/comments", body: body, signed: credentials != nil)
    }

    /// `GET /api/v1/benchmarks/{id}/comments`, oldest first.
    public func comments(on recordID: String, cursor: String? = nil) async throws -> CommentPage {
        let query = Self.queryString(cursor.map { [URLQueryItem(name: "cursor", value: $0)] } ?? [])
        return try await call("GET", "/api/v1/benchmarks/\(Self.escape(recordID))/comments" + query, signed: false)
    }

    /// `GET /api/v1/notifications` (signed): those after sequence `since`.
    public func notifications(since: Int = 0, unreadOnly: Bool = false) async throws -> NotificationPage {
        try await call("GET", "/api/v1/notifications?since=\(since)" + (unreadOnly ? "&unread_only=true" : ""))
    }

    /// `POST /api/v1/notifications/read` (signed): returns how many were marked.
    @discardableResult
    public func markNotificationsRead(upTo sequence: Int) async throws -> Int {
        let reply: Marked = try await call("POST", "/api/v1/notifications/read", body: ["up_to_sequence": sequence])
        return reply.marked
    }

    // MARK: plumbing

    func requireCredentials() throws -> DeviceCredentials {
        guard let credentials else {
            throw LeaderboardClientError.local("missing_credentials", "This call needs an activated device.")
        }
        return credentials
    }

    func call<Value: Decodable>(
        _ method: String, _ path: String, body: [String: Any]? = nil, headers: [String: String] = [:],
        signed: Bool = true
    ) async throws -> Value {
        let data = try body.map { try JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]) }
        let (reply, _) = try await http.send(
            method, path, body: data, headers: headers, signedBy: signed ? try requireCredentials() : nil)
        do {
            return try Self.decoder.decode(Value.self, from: reply)
        } catch {
            throw LeaderboardClientError.local(
                "bad_response", "The answer to \(method) \(path) was not the expected JSON: \(error)")
        }
    }

    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }()

    /// One path segment, percent-encoded.
    static func escape(_ segment: String) -> String {
        segment.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~")))
            ?? segment
    }

    static func queryString(_ items: [URLQueryItem]) -> String {
        guard !items.isEmpty else { return "" }
        var components = URLComponents()
        components.queryItems = items
        return "?" + (components.percentEncodedQuery ?? "")
    }
}

/// The proof of work `/api/v1/devices/challenge` asks for (docs/AUTH.md): a base-36 counter whose SHA-256 over the
/// challenge bytes and the counter has at least `difficulty_bits` leading zero bits.
public enum ProofOfWork {
    public static func solve(_ challenge: Challenge) throws -> String {
        guard challenge.algorithm == "sha256-leading-zero-bits", let bytes = base64URLDecoded(challenge.challenge),
            (0...40).contains(challenge.difficultyBits)
        else {
            throw LeaderboardClientError.local("unsupported_challenge", "This client cannot solve the challenge.")
        }
        var counter = 0
        while true {
            let candidate = String(counter, radix: 36)
            if leadingZeroBits(SHA256.hash(data: bytes + Array(candidate.utf8))) >= challenge.difficultyBits {
                return candidate
            }
            counter += 1
        }
    }

    static func leadingZeroBits(_ digest: SHA256.Digest) -> Int {
        var bits = 0
        for byte in digest {
            if byte == 0 {
                bits += 8
                continue
            }
            return bits + byte.leadingZeroBitCount
        }
        return bits
    }

    static func base64URLDecoded(_ text: String) -> [UInt8]? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        return Data(base64Encoded: base64).map(Array.init)
    }
}
