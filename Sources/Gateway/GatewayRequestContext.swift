public import Hummingbird

/// Per-request state shared by the gateway's middleware and routes.
public struct GatewayRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The request id: the client's `X-Request-ID` if sane, else generated. Echoed in the response and problems.
    public var requestID: String

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        requestID = ""
    }

    public init(source: some RequestContextSource) {
        coreContext = .init(source: source)
        requestID = ""
    }
}
