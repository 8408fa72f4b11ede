public import Crypto
public import GRPCCore
public import UntrustedInput

/// The internal trust boundary (docs/SECURITY.md): who may call a service over gRPC, and who may make operator calls.
///
/// - Every call between processes carries a service identity: a client certificate (mTLS, enforced by the transport)
///   and/or the per-deployment service token in ``serviceTokenKey``, checked by ``ServiceTokenServerInterceptor``.
///   Calls inside one process (the in-process transport) need none.
/// - Operator RPCs (API keys, dataset uploads, review decisions, moderation, rebuilds) also carry an operator API key
///   in ``authorizationKey`` (`Bearer lbk_…`), whatever the transport: the gateway forwards the key its admin route
///   was called with, the admin CLI sends its own. ``OperatorServerInterceptor`` verifies it.
public enum InternalTrust {
    /// Metadata key of the service token.
    public static let serviceTokenKey = "x-leaderboard-service-token"
    /// Metadata key of an operator's API key (`Bearer <key>`).
    public static let authorizationKey = "authorization"
    /// Services every caller may use without a token: health checks (load balancers and Kubernetes probes).
    public static let openServices: Set<String> = ["grpc.health.v1.Health"]
}

/// A failure at the internal boundary, with a stable code like every service error.
public struct BoundaryError: CodedServiceError, Sendable {
    public let code: String
    public let detail: String
    public let status: RPCError.Code

    public static let serviceTokenMissing = BoundaryError(
        code: "service_identity_required", detail: "Internal calls need the deployment's service token.",
        status: .unauthenticated)
    public static let serviceTokenWrong = BoundaryError(
        code: "service_identity_invalid", detail: "The service token is not this deployment's.",
        status: .unauthenticated)
    public static let operatorKeyMissing = BoundaryError(
        code: "operator_key_required", detail: "This operation needs an operator API key (Authorization: Bearer …).",
        status: .unauthenticated)

    public static func insufficientPermission(_ needed: OperatorPermission) -> BoundaryError {
        BoundaryError(
            code: "insufficient_permission", detail: "This operation needs an API key with the \(needed) permission.",
            status: .permissionDenied)
    }
}

/// Input that did not parse is the caller's mistake: INVALID_ARGUMENT with the parser's code.
extension InputError: CodedServiceError {
    public var status: RPCError.Code { .invalidArgument }
}

// MARK: - service token

/// A deployment's shared service token (at least 32 characters). Compared by digest, in constant time.
public struct ServiceToken: Sendable, Hashable {
    public let value: String

    public init?(_ value: String) {
        guard value.utf8.count >= 32, value.utf8.count <= 512, value.utf8.allSatisfy({ (0x21...0x7e).contains($0) })
        else { return nil }
        self.value = value
    }

    /// Whether `presented` is this token: SHA-256 of both compared without an early exit, so timing tells nothing.
    public func matches(_ presented: String) -> Bool {
        let expected = Array(SHA256.hash(data: Array(value.utf8)))
        let given = Array(SHA256.hash(data: Array(presented.utf8)))
        var difference: UInt8 = 0
        for index in expected.indices { difference |= expected[index] ^ given[index] }
        return difference == 0
    }
}

/// Sends the service token on every call of a client to another process.
public struct ServiceTokenClientInterceptor: ClientInterceptor {
    public let token: ServiceToken

    public init(token: ServiceToken) { self.token = token }

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingClientRequest<Input>,
        context: ClientContext,
        next: (StreamingClientRequest<Input>, ClientContext) async throws -> StreamingClientResponse<Output>
    ) async throws -> StreamingClientResponse<Output> {
        var request = request
        request.metadata.replaceOrAddString(token.value, forKey: InternalTrust.serviceTokenKey)
        return try await next(request, context)
    }
}

/// Refuses calls from other processes that lack the deployment's service token (health checks excepted).
public struct ServiceTokenServerInterceptor: ServerInterceptor {
    public let token: ServiceToken

    public init(token: ServiceToken) { self.token = token }

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        if InternalTrust.openServices.contains(context.descriptor.service.fullyQualifiedService) {
            return try await next(request, context)
        }
        guard let presented = request.metadata[stringValues: InternalTrust.serviceTokenKey].first(where: { _ in true })
        else { throw BoundaryError.serviceTokenMissing }
        guard token.matches(presented) else { throw BoundaryError.serviceTokenWrong }
        return try await next(request, context)
    }
}

// MARK: - operators

/// What an operator API key may do. `admin` implies `write`, which implies `read`.
public enum OperatorPermission: String, Sendable, Hashable, CaseIterable, Comparable, CustomStringConvertible {
    case read
    case write
    case admin

    var rank: Int {
        switch self {
        case .read: 0
        case .write: 1
        case .admin: 2
        }
    }

    public static func < (lhs: OperatorPermission, rhs: OperatorPermission) -> Bool { lhs.rank < rhs.rank }

    public var description: String { rawValue }
}

/// A verified operator API key.
public struct OperatorIdentity: Sendable, Equatable {
    public let keyID: String
    public let permissions: Set<OperatorPermission>

    public init(keyID: String, permissions: Set<OperatorPermission>) {
        self.keyID = keyID
        self.permissions = permissions
    }

    /// Whether the key grants `needed` (directly or through a higher permission).
    public func grants(_ needed: OperatorPermission) -> Bool { permissions.contains { $0 >= needed } }
}

/// The operator behind the call being served, and the key to forward on calls made for it.
public enum OperatorContext {
    /// Set by ``OperatorServerInterceptor`` for the handler of a call that carried a valid key.
    @TaskLocal public static var current: OperatorIdentity?
    /// Set by the gateway while it serves an admin request: ``CallContextClientInterceptor`` sends it on every call.
    @TaskLocal public static var forwardedKey: String?
}

/// Checks an operator API key (AuthService is the authority: `AuthenticateApiKey`).
public protocol OperatorKeyVerifier: Sendable {
    /// The key's identity; throws (UNAUTHENTICATED: invalid, revoked, expired) when it is not a live key.
    func verify(key: String) async throws -> OperatorIdentity
}

/// Verifies the operator key a call carries, refuses operator methods without one (or with too little
/// permission), and runs the handler with ``OperatorContext/current`` set, so methods that act differently for an
/// operator (deleting anyone's comment) can ask.
public struct OperatorServerInterceptor: ServerInterceptor {
    public let verifier: any OperatorKeyVerifier
    /// The operator methods and the permission each needs.
    public let required: [MethodDescriptor: OperatorPermission]

    public init(verifier: any OperatorKeyVerifier, required: [MethodDescriptor: OperatorPermission]) {
        self.verifier = verifier
        self.required = required
    }

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let needed = required[context.descriptor]
        let header = request.metadata[stringValues: InternalTrust.authorizationKey].first(where: { _ in true })
        guard let key = header.flatMap(Self.bearerKey) else {
            if needed != nil { throw BoundaryError.operatorKeyMissing }
            return try await next(request, context)
        }
        // The verification is a call of its own (to AuthService): it must not forward a key, or it would be
        // verified in turn.
        let identity = try await OperatorContext.$forwardedKey.withValue(nil) { try await verifier.verify(key: key) }
        if let needed, !identity.grants(needed) { throw BoundaryError.insufficientPermission(needed) }
        var response = try await OperatorContext.$current.withValue(identity) { try await next(request, context) }
        if case .success(var contents) = response.accepted {
            let producer = contents.producer
            contents.producer = { writer in
                try await OperatorContext.$current.withValue(identity) { try await producer(writer) }
            }
            response.accepted = .success(contents)
        }
        return response
    }

    /// The key of `Bearer <key>` (the scheme in any case).
    static func bearerKey(_ header: String) -> String? {
        guard header.utf8.count > 7, header.prefix(7).lowercased() == "bearer " else { return nil }
        let key = header.dropFirst(7).drop { $0 == " " }
        return key.isEmpty ? nil : String(key)
    }
}
