import NIOCore
import NIOPosix
import TestSupport
import Testing

@testable import ServiceKit

@Suite("Redis connection socket options", .enabled(if: TestEnvironment.hasRedis), .timeLimit(.minutes(1)))
struct RedisSocketOptionTests {
    /// TCP_NODELAY asked for at the socket level is SO_DEBUG (both are option 1), which needs CAP_NET_ADMIN: in a
    /// container every connection to Redis failed with "setsockopt: Permission denied", and outside one Nagle's
    /// algorithm stayed on. scripts/deploy-check found it; this keeps it found without a container.
    @Test("a connection turns Nagle off at the TCP level and asks for no privileged socket option")
    func noDelayAtTheTCPLevel() async throws {
        let url = try #require(TestEnvironment.redisURL, "TEST_REDIS_URL is not set (run scripts/test)")
        let connection = try await RedisConnection.connect(
            to: url, timeout: .seconds(2), group: MultiThreadedEventLoopGroup.singleton)
        let noDelay = try await connection.channel.getOption(ChannelOptions.tcpOption(.tcp_nodelay))
        let debug = try await connection.channel.getOption(ChannelOptions.socketOption(.init(rawValue: SO_DEBUG)))
        #expect(noDelay != 0)
        #expect(debug == 0)
        try await connection.channel.close()
    }
}
