public import GRPCCore
public import GRPCInProcessTransport
public import GRPCNIOTransportHTTP2
public import ServiceLifecycle

/// A gRPC client for one service, over whichever transport the topology chose.
///
/// Callers wrap it in the generated client once (`switch channel { case .inProcess(let c): X.Client(wrapping: c) … }`)
/// and keep the generated `ClientProtocol`, so in-process and remote topologies run the same code.
public enum ServiceChannel: Sendable {
    case inProcess(GRPCClient<InProcessTransport.Client>)
    case http2(GRPCClient<HTTP2ClientTransport.Posix>)
}

/// Builds gRPC servers and clients from the process configuration.
public enum GRPCTransports {
    public static func serverSecurity(_ tls: GRPCTLSConfiguration?) -> HTTP2ServerTransport.Posix.TransportSecurity {
        guard let tls else { return .plaintext }
        let chain: [TLSConfig.CertificateSource] = [.file(path: tls.certificatePath, format: .pem)]
        let key: TLSConfig.PrivateKeySource = .file(path: tls.keyPath, format: .pem)
        guard let ca = tls.caPath else { return .tls(certificateChain: chain, privateKey: key) }
        return .mTLS(certificateChain: chain, privateKey: key) { config in
            config.trustRoots = .certificates([.file(path: ca, format: .pem)])
            config.clientCertificateVerification = .noHostnameVerification
        }
    }

    public static func clientSecurity(_ tls: GRPCTLSConfiguration?) -> HTTP2ClientTransport.Posix.TransportSecurity {
        guard let tls else { return .plaintext }
        let chain: [TLSConfig.CertificateSource] = [.file(path: tls.certificatePath, format: .pem)]
        let key: TLSConfig.PrivateKeySource = .file(path: tls.keyPath, format: .pem)
        return .mTLS(certificateChain: chain, privateKey: key) { config in
            if let ca = tls.caPath { config.trustRoots = .certificates([.file(path: ca, format: .pem)]) }
            config.serverCertificateVerification = .noHostnameVerification
        }
    }

    /// The resolver target: IP literals stay IP targets, because a `.dns` target would send the IP as the TLS
    /// server name (SNI), which TLS forbids and NIOSSL rejects. Names are looked up again every few seconds
    /// (``RefreshingDNSTarget``), so a service that comes back at a new address is found.
    static func target(_ address: HostPort) -> any ResolvableTarget {
        if address.isIPv6 { return .ipv6(address: address.host, port: address.port) }
        if address.isIPLiteral { return .ipv4(address: address.host, port: address.port) }
        return RefreshingDNSTarget(host: address.host, port: address.port)
    }

    /// grpc-swift's resolvers plus ``RefreshingDNSResolverFactory``.
    static var resolvers: NameResolverRegistry {
        var registry = NameResolverRegistry.defaults
        registry.registerFactory(RefreshingDNSResolverFactory())
        return registry
    }

    /// An HTTP/2 server for `services` on `address` (port 0: the OS picks; read it from `listeningAddress`).
    /// Interceptors run in order: errors passed on from other calls lose those calls' transport headers
    /// (``ForwardedErrorServerInterceptor``), tracing and metrics (so refused calls count too), the service token
    /// (``ServiceTokenServerInterceptor``), then the call's context, then what the caller passes (the operator check).
    public static func makeHTTP2Server(
        address: HostPort,
        tls: GRPCTLSConfiguration?,
        serviceToken: ServiceToken?,
        services: [any RegistrableRPCService],
        interceptors: [any ServerInterceptor] = []
    ) -> GRPCServer<HTTP2ServerTransport.Posix> {
        GRPCServer(
            transport: HTTP2ServerTransport.Posix(
                address: address.isIPv6
                    ? .ipv6(host: address.host, port: address.port) : .ipv4(host: address.host, port: address.port),
                transportSecurity: serverSecurity(tls),
                config: .defaults { $0.rpc.maxRequestPayloadSize = 8 * 1024 * 1024 }
            ),
            services: services,
            interceptors: [
                ForwardedErrorServerInterceptor(), RPCTracingServerInterceptor(), RPCMetricsServerInterceptor(),
            ]
                + (serviceToken.map { [ServiceTokenServerInterceptor(token: $0)] } ?? [])
                + [CallContextServerInterceptor()] + interceptors
        )
    }

    /// A client to another process; it sends `serviceToken` on every call when there is one.
    public static func makeHTTP2Client(address: HostPort, tls: GRPCTLSConfiguration?, serviceToken: ServiceToken?)
        throws
        -> GRPCClient<HTTP2ClientTransport.Posix>
    {
        GRPCClient(
            transport: try HTTP2ClientTransport.Posix(
                target: target(address),
                transportSecurity: clientSecurity(tls),
                config: .defaults { $0.http2.maxFrameSize = 1 << 20 },
                resolverRegistry: resolvers
            ),
            interceptors: [
                RPCTracingClientInterceptor(), RPCMetricsClientInterceptor(), CallContextClientInterceptor(),
            ]
                + (serviceToken.map { [ServiceTokenClientInterceptor(token: $0)] } ?? [])
        )
    }
}

/// Runs a gRPC server as a lifecycle `Service`: graceful shutdown stops accepting and lets in-flight calls finish.
public struct GRPCServerService<Transport: ServerTransport>: Service {
    public let server: GRPCServer<Transport>

    public init(_ server: GRPCServer<Transport>) {
        self.server = server
    }

    public func run() async throws {
        try await withGracefulShutdownHandler {
            try await server.serve()
        } onGracefulShutdown: {
            server.beginGracefulShutdown()
        }
    }
}

/// Runs a gRPC client's connections as a lifecycle `Service`.
public struct GRPCClientService<Transport: ClientTransport>: Service {
    public let client: GRPCClient<Transport>

    public init(_ client: GRPCClient<Transport>) {
        self.client = client
    }

    public func run() async throws {
        try await withGracefulShutdownHandler {
            try await client.runConnections()
        } onGracefulShutdown: {
            client.beginGracefulShutdown()
        }
    }
}
