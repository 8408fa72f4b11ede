import Crypto
public import Foundation

#if canImport(FoundationNetworking)
    public import FoundationNetworking
#endif

/// A device's identity and secret: what signs requests (docs/SIGNING.md, version 2).
public struct DeviceCredentials: Sendable {
    public let machineID: String
    public let secret: String

    public init(machineID: String, secret: String) {
        self.machineID = machineID
        self.secret = secret
    }

    /// The signature headers for a request, version 2: method, path, query, time, nonce and body hash.
    public func signatureHeaders(
        method: String, url: URL, body: Data = Data(), time: Date = Date(), nonce: String = UUID().uuidString
    ) -> [String: String] {
        let requestTime = String(Int(time.timeIntervalSince1970))
        let components = URLComponents(url: url, resolvingAgainstBaseURL: false)
        let path = components?.percentEncodedPath ?? url.path
        let query = components?.percentEncodedQuery ?? ""
        let message = [
            method.uppercased(), path.isEmpty ? "/" : path, query, requestTime, nonce,
            hex(SHA256.hash(data: body)),
        ].joined(separator: "\n")
        let signature = hex(
            HMAC<SHA256>.authenticationCode(for: Array(message.utf8), using: SymmetricKey(data: Array(secret.utf8))))
        return [
            "X-Device-ID": machineID, "X-Request-Time": requestTime, "X-Nonce": nonce, "X-Signature": signature,
            "X-Signature-Version": "2",
        ]
    }
}

/// A failed call to the leaderboard: the problem+json `code` and `detail` when the server sent one, and each
/// individual reason (e.g. every failed validation rule of a rejected submission) as `code: detail`.
public struct LeaderboardClientError: Error, CustomStringConvertible, Sendable {
    public let status: Int
    public let code: String
    public let detail: String
    public var reasons: [String] = []

    public var description: String {
        (status == 0 ? "\(code): \(detail)" : "\(code) (HTTP \(status)): \(detail)")
            + reasons.map { "\n  - \($0)" }.joined()
    }

    static func from(status: Int, body: Data) -> LeaderboardClientError {
        let object = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any]
        var error = LeaderboardClientError(
            status: status, code: object?["code"] as? String ?? "http_\(status)",
            detail: object?["detail"] as? String ?? HTTPURLResponse.localizedString(forStatusCode: status))
        error.reasons = (object?["reasons"] as? [[String: Any]] ?? []).map {
            "\($0["code"] as? String ?? "?"): \($0["detail"] as? String ?? "")"
        }
        return error
    }

    public static func local(_ code: String, _ detail: String) -> LeaderboardClientError {
        LeaderboardClientError(status: 0, code: code, detail: detail)
    }
}

/// The public REST API over URLSession.
public struct LeaderboardHTTP: Sendable {
    public let baseURL: URL
    let session: URLSession

    public init(baseURL: URL, session: URLSession = .shared) {
        self.baseURL = baseURL
        self.session = session
    }

    /// The base URL plus `path`; an error, not a trap, when the result is no URL (e.g. an id with a space in it).
    public func url(_ path: String) throws -> URL {
        let text = baseURL.absoluteString.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + path
        guard let url = URL(string: text) else {
            throw LeaderboardClientError.local("invalid_url", "\(text) is not a valid URL.")
        }
        return url
    }

    /// Sends a request; non-2xx answers become ``LeaderboardClientError``.
    public func send(
        _ method: String, _ path: String, body: Data? = nil, headers: [String: String] = [:],
        signedBy credentials: DeviceCredentials? = nil
    ) async throws -> (Data, HTTPURLResponse) {
        let url = try url(path)
        var request = URLRequest(url: url)
        request.httpMethod = method
        request.httpBody = body
        if body != nil { request.setValue("application/json", forHTTPHeaderField: "Content-Type") }
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        if let credentials {
            for (name, value) in credentials.signatureHeaders(method: method, url: url, body: body ?? Data()) {
                request.setValue(value, forHTTPHeaderField: name)
            }
        }
        let (data, response) = try await session.data(for: request)
        guard let http = response as? HTTPURLResponse else {
            throw LeaderboardClientError.local("bad_response", "The server's answer was not HTTP.")
        }
        guard (200..<300).contains(http.statusCode) else {
            throw LeaderboardClientError.from(status: http.statusCode, body: data)
        }
        return (data, http)
    }

    public func json(
        _ method: String, _ path: String, body: Data? = nil, signedBy credentials: DeviceCredentials? = nil
    ) async throws -> [String: Any] {
        let (data, _) = try await send(method, path, body: body, signedBy: credentials)
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw LeaderboardClientError.local("bad_response", "The server's answer was not a JSON object.")
        }
        return object
    }
}
